"""HTTP API for early-warning alerts (预警) under /v1."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from mediation.agreements.router import CHANGES, IfMatch
from mediation.alerts import detect, titles
from mediation.alerts.models import Alert
from mediation.alerts.schemas import AcknowledgeIn, AlertCaseOut, AlertOut, AlertPage, ResolveIn, RiskFlagIn
from mediation.alerts.service import AlertService
from mediation.core.db import UnitOfWorkRoute
from mediation.core.errors import (
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    InvalidTransition,
    NotFound,
    PreconditionRequired,
    StaleVersion,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import etag_for, sends
from mediation.core.i18n import current_language
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text, redact_value
from mediation.core.principal import Permission, Principal
from mediation.disputes.router import (
    IdempotencyKey,
    Reader,
    Supervisor,
    View,
    Writer,
    dispute_response,
    service,
)
from mediation.disputes.router import IfMatch as CaseIfMatch
from mediation.disputes.schemas import DisputeOut
from mediation.disputes.service import DisputeService

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["early warning"])


async def alerts(svc: Annotated[DisputeService, Depends(service)]) -> AlertService:
    return AlertService(svc)


Alerts = Annotated[AlertService, Depends(alerts)]


def alert_out(
    alert: Alert, principal: Principal, cases: list[AlertCaseOut] | None = None, *, masked: bool = False
) -> AlertOut:
    """The alert as `principal` may read it, its title in the request's language (the pages set
    Chinese): its title, what matched and the resolution are free text taken from cases (an address
    with a phone number, a respondent's name with an ID number), masked as the cases are for a
    reader without pii:read, or (`masked`) for a page that shows them masked."""
    fields = AlertOut.model_fields.keys() - {"cases", "title", "details"}
    out = {f: getattr(alert, f) for f in fields}
    out["title"] = titles.of(alert, current_language(), detect.load())
    out["details"] = {k: v for k, v in alert.details.items() if k != titles.TITLE_VALUES}
    if masked or not principal.can(Permission.pii_read):
        out["title"] = redact_text(out["title"])
        out["details"] = redact_value(out["details"])
        out["resolution"] = redact_text(alert.resolution) if alert.resolution is not None else None
        if cases is not None:
            cases = [c.model_copy(update={"matched": redact_value(c.matched)}) for c in cases]
    return AlertOut.model_validate({**out, "cases": cases})


async def _full(svc: AlertService, alert: Alert, principal: Principal) -> JSONResponse:
    cases = [
        AlertCaseOut(
            dispute_id=d.id,
            case_number=d.case_number,
            status=d.status,
            category=d.category,
            region_code=d.region_code,
            created_at=d.created_at,
            matched=a.matched,
        )
        for a, d in await svc.cases(alert, principal)
    ]
    body = jsonable_encoder(alert_out(alert, principal, cases))
    return JSONResponse(body, headers={"ETag": etag_for(alert.version)})


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="预警 Early-warning alerts",
    description=(
        "Risk words at intake or in session minutes (immediate), clusters of disputes against one "
        "respondent, at one place or of one category in one town (possible group disputes), and "
        "repeated disputes between the same parties. Newest first; visible to whoever sees one of the cases."
    ),
    responses=problem_responses(ValidationFailed),
)
async def list_alerts(
    principal: Reader,
    svc: Alerts,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    kind: Literal["risk", "cluster", "repeat", "query_code"] | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> AlertPage:
    rows, next_cursor = await svc.search(principal, status=status, kind=kind, cursor=cursor, limit=limit)
    return AlertPage(items=[alert_out(a, principal) for a in rows], next_cursor=next_cursor)


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertOut,
    summary="一条预警 One alert, with its cases",
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def get_alert(alert_id: uuid.UUID, principal: Reader, svc: Alerts) -> Response:
    return await _full(svc, await svc.get(alert_id, principal), principal)


@router.get(
    "/disputes/{dispute_id}/alerts",
    response_model=list[AlertOut],
    summary="案件预警 The alerts a case is part of",
    responses=problem_responses(NotFound),
)
async def case_alerts(dispute_id: uuid.UUID, principal: Reader, svc: Alerts) -> list[AlertOut]:
    return [alert_out(a, principal) for a in await svc.of_case(dispute_id, principal)]


@router.post(
    "/disputes/{dispute_id}/risk-flags",
    response_model=DisputeOut,
    summary="报告风险 Flag the case at risk",
    description=(
        "Staff on the case flag a danger they saw that no risk word in the facts or minutes names "
        "(人民调解法 Art. 25: a dispute that may turn into a criminal or public-security case is "
        "reported to the police at once): `danger` (violence, self_harm, gathering, criminal), "
        "`observation` (what was seen, required; on the timeline, masked like other notes without "
        "pii:read) and the report made, if any (`reported_to` police or another department, "
        "`reported_at`, the department's name, required for another department, and the "
        "reference number). It does what risk words do: the case is marked at risk (`is_risk`) and "
        "waits for a supervisor (`attention` risk), its open risk alert is raised or joined "
        "(`details.source` staff, `flagged_by`, `report`; `alert_raised` on the timeline and in the "
        "feed when the case joins an alert), and a case still at the center (registered, accepted) "
        "takes the tier for risk cases (`tier` in the event names the move). The flag itself is one "
        "timeline entry (`flag_risk`), one `risk_flagged` event and the audit record. The body "
        "holding the case (its mediators and administrator) and the center's clerks and supervisors "
        "flag it; a court, a commission and other roles are refused (403), a case the caller does "
        "not see is 404, a declined or archived case is 409 `case_closed`. Needs the case's ETag."
    ),
    responses=problem_responses(
        NotFound,
        Forbidden,
        InvalidTransition,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
)
async def flag_risk(
    request: Request,
    dispute_id: uuid.UUID,
    data: RiskFlagIn,
    principal: Writer,
    view: View,
    svc: Alerts,
    if_match: CaseIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        dispute, alert, flagged = await svc.flag(dispute_id, data, principal, if_match)
        # Codes and times only: what was seen and the report's department and number stay with the case.
        request.state.audit_details = {"risk_flag": {**flagged, "alert_id": str(alert.id)}}
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/alerts/{alert_id}/acknowledgement",
    response_model=AlertOut,
    summary="签收预警 Acknowledge an alert",
    description="A supervisor takes the alert in hand. Needs the alert's ETag; lands on each case's timeline.",
    responses=CHANGES | sends(200, "ETag"),
)
async def acknowledge_alert(
    request: Request,
    alert_id: uuid.UUID,
    data: AcknowledgeIn,
    principal: Supervisor,
    svc: Alerts,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        alert = await svc.acknowledge(alert_id, data.note, principal, if_match)
        return await _full(svc, alert, principal)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/alerts/{alert_id}/resolution",
    response_model=AlertOut,
    summary="处置预警 Resolve an alert",
    description=(
        "Records what was done. A resolved cluster no longer collects cases: a later wave raises a new "
        "alert. Needs the alert's ETag; lands on each case's timeline."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def resolve_alert(
    request: Request,
    alert_id: uuid.UUID,
    data: ResolveIn,
    principal: Supervisor,
    svc: Alerts,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        alert = await svc.resolve(alert_id, data.resolution, principal, if_match)
        return await _full(svc, alert, principal)

    return await run_idempotent(request, principal, idempotency_key, work)
