"""HTTP API for supervision orders (督办) and case owners (包案) under /v1."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from mediation.agreements.router import CHANGES, IfMatch
from mediation.core.db import UnitOfWorkRoute
from mediation.core.errors import (
    NotFound,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import sends
from mediation.core.idempotency import run_idempotent
from mediation.disputes.router import (
    IdempotencyKey,
    Reader,
    Supervisor,
    View,
    Writer,
    dispute_response,
    service,
)
from mediation.disputes.schemas import DisputeOut
from mediation.disputes.service import DisputeService
from mediation.disputes.views import Viewer
from mediation.supervision.models import SupervisionOrder
from mediation.supervision.schemas import OrderIn, OrderOut, OrderPage, OrderResponseIn, OwnerIn
from mediation.supervision.service import SupervisionService

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["supervision"])


async def supervision(svc: Annotated[DisputeService, Depends(service)]) -> SupervisionService:
    return SupervisionService(svc)


Supervision = Annotated[SupervisionService, Depends(supervision)]


def order_out(order: SupervisionOrder, case_number: str, view: Viewer) -> OrderOut:
    """The order as `view`'s caller may read it: the instruction and the answer are free text a
    supervisor or a mediator may have put a party's number in, masked as the case's own text is."""
    fields = OrderOut.model_fields.keys() - {"case_number"}
    values = {f: getattr(order, f) for f in fields}
    values["instruction"] = view.text(order.dispute_id, order.instruction)
    values["response"] = view.text(order.dispute_id, order.response)
    return OrderOut.model_validate({**values, "case_number": case_number})


@router.post(
    "/disputes/{dispute_id}/supervision-orders",
    status_code=201,
    response_model=OrderOut,
    summary="督办 Issue a supervision order on a case",
    description=(
        "A supervisor's instruction to the body handling the case (or another one named: an active "
        "mediation body whose jurisdiction covers the case's region, else 422), with the last day to "
        "respond (by default the configured working days). Needs the case's ETag; lands on the "
        "timeline. Unanswered past its last day, the scheduler escalates it once and flags the case. "
        "A case whose follow-up ended (declined, withdrawn, handed on to arbitration or litigation, closed, "
        "archived) is not supervised (409 `case_finished`); the open orders on a case lapse with the "
        "transition that ends it (status `lapsed`)."
    ),
    responses=CHANGES | sends(201, "ETag"),
)
async def issue_order(
    request: Request,
    dispute_id: uuid.UUID,
    data: OrderIn,
    principal: Supervisor,
    svc: Supervision,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        order, dispute = await svc.issue(dispute_id, data, principal, if_match)
        return dispute_response(order_out(order, dispute.case_number, view), order.version, 201)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/supervision-orders",
    response_model=OrderPage,
    summary="督办事项 Supervision orders",
    description="A body sees the orders addressed to it; center staff see the orders on the cases of their region.",
    responses=problem_responses(ValidationFailed),
)
async def list_orders(
    principal: Reader,
    svc: Supervision,
    view: View,
    dispute_id: uuid.UUID | None = None,
    status: Literal["issued", "responded", "escalated", "lapsed"] | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderPage:
    rows, next_cursor = await svc.search(
        principal, dispute_id=dispute_id, status=status, cursor=cursor, limit=limit
    )
    return OrderPage(items=[order_out(o, n, view) for o, n in rows], next_cursor=next_cursor)


@router.get(
    "/supervision-orders/{order_id}",
    response_model=OrderOut,
    summary="一项督办 One supervision order",
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def get_order(order_id: uuid.UUID, principal: Reader, svc: Supervision, view: View) -> Response:
    order, case_number = await svc.get(order_id, principal)
    return dispute_response(order_out(order, case_number, view), order.version)


@router.post(
    "/supervision-orders/{order_id}/response",
    response_model=OrderOut,
    summary="督办答复 The body answers a supervision order",
    description=(
        "Only the body addressed. Needs the order's ETag. An escalated order can still be answered; one "
        "lapsed with its case cannot (409 `order_lapsed`, with its `lapse_reason` and `lapsed_at`)."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def respond_order(
    request: Request,
    order_id: uuid.UUID,
    data: OrderResponseIn,
    principal: Writer,
    svc: Supervision,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        order = await svc.respond(order_id, data, principal, if_match)
        _, case_number = await svc.get(order.id, principal)
        return dispute_response(order_out(order, case_number, view), order.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.put(
    "/disputes/{dispute_id}/owner",
    response_model=DisputeOut,
    summary="包案 Set or clear the case owner",
    description=(
        "Name the official who owns a hard case until it is resolved (包案领导), or send `null` to clear it. "
        "Needs the case's ETag; lands on the timeline."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def set_owner(
    request: Request,
    dispute_id: uuid.UUID,
    principal: Supervisor,
    svc: Supervision,
    view: View,
    data: Annotated[OwnerIn | None, Body()] = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        dispute = await svc.set_owner(dispute_id, data, principal, if_match)
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)
