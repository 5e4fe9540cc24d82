"""HTTP API of the body registry: bodies, courts and commissions, their mediators and conflicts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy import select

from mediation.bodies.models import Body, BodyJurisdiction, BodyKind, MediatorConflict
from mediation.bodies.schemas import (
    BodyCreate,
    BodyOut,
    BodyPatch,
    ConflictIn,
    ConflictOut,
    MediatorIn,
    MediatorOut,
    MediatorPatch,
)
from mediation.bodies.service import BodyService
from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    NotFound,
    PreconditionRequired,
    StaleVersion,
    problem_responses,
)
from mediation.core.http import etag_for, sends
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text
from mediation.core.principal import Permission, Principal
from mediation.disputes.enums import Tier
from mediation.disputes.identity import REGION_CODE_PATTERN, normalise_region_code, region_prefix
from mediation.disputes.router import IdempotencyKey
from mediation.identity.auth import authenticate, identity_of, permission
from mediation.triage.engine import region_prefixes

# The directory of bodies, courts and commissions is reference data every signed-in caller needs
# (to pick an assignee or a court); it holds no case and no personal data.
router = APIRouter(
    prefix="/v1", route_class=UnitOfWorkRoute, tags=["bodies"], dependencies=[Depends(authenticate)]
)

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The object's current ETag (required; 428 without it)."),
]
Caller = Annotated[Principal, Depends(authenticate)]
Registrar = Annotated[Principal, permission(Permission.registry_manage)]


async def registry(request: Request) -> BodyService:
    return BodyService(session_of(request))


Registry = Annotated[BodyService, Depends(registry)]


def _with_etag(model: BodyOut | MediatorOut, version: int, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(model), status_code=status, headers={"ETag": etag_for(version)})


@router.get(
    "/bodies",
    response_model=list[BodyOut],
    summary="调解组织、法院与仲裁委员会 Bodies",
    responses=problem_responses(),
)
async def list_bodies(
    request: Request,
    svc: Registry,
    kind: BodyKind | None = None,
    tier: Tier | None = None,
    region: Annotated[
        str | None,
        Query(pattern=REGION_CODE_PATTERN, description="Bodies located in this region or inside it."),
        AfterValidator(normalise_region_code),
    ] = None,
    covers: Annotated[
        str | None,
        Query(pattern=REGION_CODE_PATTERN, description="Bodies whose jurisdiction covers this region code."),
        AfterValidator(normalise_region_code),
    ] = None,
    active: bool | None = None,
) -> list[BodyOut]:
    stmt = select(Body).order_by(Body.region_code, Body.name)
    if kind:
        stmt = stmt.where(Body.kind == kind)
    if tier:
        stmt = stmt.where(Body.tier == tier)
    if region:
        stmt = stmt.where(Body.region_code.startswith(region_prefix(region)))
    if covers:
        covering = BodyJurisdiction.region_prefix.in_(region_prefixes(covers))
        stmt = stmt.where(Body.id.in_(select(BodyJurisdiction.body_id).where(covering)))
    if active is not None:
        stmt = stmt.where(Body.active.is_(active))
    rows = await session_of(request).scalars(stmt)
    return await svc.out(list(rows.all()))


@router.post(
    "/bodies",
    status_code=201,
    response_model=BodyOut,
    summary="登记调解组织 Register a body",
    responses=problem_responses(Forbidden, IdempotencyKeyMismatch, IdempotencyInProgress)
    | sends(201, "ETag", "Location"),
)
async def create_body(
    request: Request,
    data: BodyCreate,
    principal: Registrar,
    svc: Registry,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        body = await svc.create(data, request.app.state.clock.now())
        (out,) = await svc.out([body])
        response = _with_etag(out, body.version, 201)
        response.headers["Location"] = f"/v1/bodies/{body.id}"
        return response

    # A registrar's retry after a lost answer gets the same body, not a second one of that name.
    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/bodies/{body_id}",
    response_model=BodyOut,
    summary="Body",
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def get_body(body_id: uuid.UUID, svc: Registry) -> Response:
    body = await svc.get(body_id)
    (out,) = await svc.out([body])
    return _with_etag(out, body.version)


@router.patch(
    "/bodies/{body_id}",
    response_model=BodyOut,
    summary="修改调解组织 Update a body",
    description=(
        "The registry administrator changes anything, including working status (active: false "
        "suspends the body, with a reason: its staff and API keys stop at once, and the webhook "
        "deliveries still pending for it are cancelled, to be redelivered once it is resumed) and "
        "jurisdiction. A body's own administrator changes its profile only: categories, capacity, "
        "address, contact_phone, description. Fields left out are unchanged; name, tier, region_code, "
        "categories, capacity and active are never null. Suspending the body of every administrator "
        "able to sign in is refused (409 `last_admin`)."
    ),
    responses=problem_responses(NotFound, Forbidden, StaleVersion, PreconditionRequired, Conflict)
    | sends(200, "ETag"),
)
async def update_body(
    request: Request,
    body_id: uuid.UUID,
    data: BodyPatch,
    principal: Caller,
    svc: Registry,
    if_match: IfMatch = None,
) -> Response:
    body = await svc.update(body_id, data, principal, if_match, request.app.state.clock.now())
    (out,) = await svc.out([body])
    return _with_etag(out, body.version)


@router.get(
    "/bodies/{body_id}/mediators",
    response_model=list[MediatorOut],
    summary="调解员名册 The body's mediators",
    description="For the center, the registry administrator and the body itself.",
    responses=problem_responses(NotFound),
)
async def list_mediators(body_id: uuid.UUID, principal: Caller, svc: Registry) -> list[MediatorOut]:
    return [MediatorOut.model_validate(m) for m in await svc.mediators(body_id, principal)]


@router.post(
    "/bodies/{body_id}/mediators",
    status_code=201,
    response_model=MediatorOut,
    summary="登记调解员 Add a mediator",
    responses=problem_responses(NotFound, Forbidden, IdempotencyKeyMismatch, IdempotencyInProgress)
    | sends(201, "ETag"),
)
async def add_mediator(
    request: Request,
    body_id: uuid.UUID,
    data: MediatorIn,
    principal: Caller,
    svc: Registry,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        mediator = await svc.add_mediator(body_id, data, principal, request.app.state.clock.now())
        return _with_etag(MediatorOut.model_validate(mediator), mediator.version, 201)

    # A retry after a lost answer gets the mediator added, not a second one on the roster.
    return await run_idempotent(request, principal, idempotency_key, work)


@router.patch(
    "/bodies/{body_id}/mediators/{mediator_id}",
    response_model=MediatorOut,
    summary="修改调解员 Update a mediator",
    responses=problem_responses(NotFound, StaleVersion, PreconditionRequired) | sends(200, "ETag"),
)
async def update_mediator(
    request: Request,
    body_id: uuid.UUID,
    mediator_id: uuid.UUID,
    data: MediatorPatch,
    principal: Caller,
    svc: Registry,
    if_match: IfMatch = None,
) -> Response:
    mediator = await svc.update_mediator(
        body_id, mediator_id, data, principal, if_match, request.app.state.clock.now()
    )
    return _with_etag(MediatorOut.model_validate(mediator), mediator.version)


@router.get(
    "/bodies/{body_id}/mediators/{mediator_id}/conflicts",
    response_model=list[ConflictOut],
    summary="调解员申报的利害关系 A mediator's declared conflicts",
    description="The relation is the body's own note: ID and phone numbers in it are masked for roles "
    "without pii:read.",
    responses=problem_responses(NotFound),
)
async def list_conflicts(
    body_id: uuid.UUID, mediator_id: uuid.UUID, principal: Caller, svc: Registry
) -> list[ConflictOut]:
    return [conflict_out(c, principal) for c in await svc.conflicts(body_id, mediator_id, principal)]


def conflict_out(conflict: MediatorConflict, principal: Principal) -> ConflictOut:
    """A declared conflict as this caller may read it: the relation is free text the body typed
    and may hold the person's ID or phone number, masked for roles without pii:read as every
    free text is (个人信息保护法 Art. 51: least-privilege access)."""
    out = ConflictOut.model_validate(conflict)
    if not principal.can(Permission.pii_read):
        out.relation = redact_text(out.relation)
    return out


@router.post(
    "/bodies/{body_id}/mediators/{mediator_id}/conflicts",
    status_code=201,
    response_model=ConflictOut,
    summary="申报利害关系 Declare a conflict of interest",
    description=(
        "The body records that its mediator is related to a person (by ID number; stored only as "
        "a keyed hash and a masked copy) or has an interest in one case. From then on the mediator "
        "cannot be named for a case with that person as a party (特邀调解规定 Art. 16)."
    ),
    responses=problem_responses(NotFound, IdempotencyKeyMismatch, IdempotencyInProgress),
)
async def declare_conflict(
    request: Request,
    body_id: uuid.UUID,
    mediator_id: uuid.UUID,
    data: ConflictIn,
    principal: Caller,
    svc: Registry,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        conflict = await svc.declare_conflict(
            body_id, mediator_id, data, principal, identity_of(request).cipher, request.app.state.clock.now()
        )
        out = conflict_out(conflict, principal)
        return JSONResponse(jsonable_encoder(out), status_code=201)

    # A retry after a lost answer gets the conflict declared, not the same one twice.
    return await run_idempotent(request, principal, idempotency_key, work)
