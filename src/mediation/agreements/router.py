"""HTTP API for sessions, agreements, signatures, performance and follow-ups under /v1."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from mediation.agreements import rules
from mediation.agreements.models import Agreement, FollowUp, MediationSession, Obligation
from mediation.agreements.render import agreement_html
from mediation.agreements.schemas import (
    AgreementDraftIn,
    AgreementIn,
    AgreementOut,
    AwaitingOut,
    FollowUpOut,
    FollowUpPage,
    FollowUpResultIn,
    MissingOut,
    ObligationOut,
    PerformanceIn,
    SessionCancelIn,
    SessionIn,
    SessionOut,
    SessionRecordIn,
    SessionRescheduleIn,
    SignatureIn,
    SignatureOut,
    SittingPlan,
    VisitImpossibleIn,
    VisitIn,
)
from mediation.agreements.service import AgreementService
from mediation.agreements.visits import VisitService
from mediation.core.db import UnitOfWorkRoute
from mediation.core.errors import (
    Conflict,
    Forbidden,
    GuardFailed,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    InvalidTransition,
    NotFound,
    PreconditionRequired,
    StaleVersion,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import etag_for, header_ref, sends
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text, redact_value
from mediation.core.principal import Permission, Principal
from mediation.disputes.models import Dispute
from mediation.disputes.router import IdempotencyKey, OptionalIfMatch, View, service
from mediation.disputes.service import DisputeService
from mediation.disputes.views import Viewer
from mediation.identity.auth import permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["agreements"])

Reader = Annotated[Principal, permission(Permission.cases_read)]
Writer = Annotated[Principal, permission(Permission.cases_write)]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The resource's current ETag (428 without, 412 stale).")
]
WRITES = problem_responses(
    NotFound,
    Forbidden,
    Conflict,
    InvalidTransition,
    GuardFailed,
    ValidationFailed,
    IdempotencyKeyMismatch,
    IdempotencyInProgress,
)
# Changes that name the version they change (If-Match); and creations that may name the case's.
CHANGES = {**WRITES, **problem_responses(StaleVersion, PreconditionRequired)}
# Changes of a case made from one of its parts (an obligation, a follow-up): the case's version.
CaseIfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The case's current ETag (428 without, 412 stale).")
]


async def agreements(svc: Annotated[DisputeService, Depends(service)]) -> AgreementService:
    return AgreementService(svc)


Agreements = Annotated[AgreementService, Depends(agreements)]


def masks(principal: Principal) -> bool:
    """Whether this caller reads personal data masked: every role without `pii:read` reads the
    numbers typed into minutes and agreements masked, as in the case's own free text
    (个人信息保护法 Art. 51)."""
    return not principal.can(Permission.pii_read)


def _text(value: str, masked: bool) -> str:
    return redact_text(value) if masked else value


def session_out(row: MediationSession, masked: bool = False) -> SessionOut:
    out = SessionOut.model_validate(row, from_attributes=True)
    if not masked:
        return out
    return out.model_copy(
        update={
            "minutes": redact_text(out.minutes) if out.minutes else out.minutes,
            "place": redact_text(out.place) if out.place else out.place,
            "cancel_reason": redact_text(out.cancel_reason) if out.cancel_reason else out.cancel_reason,
            "attendees": redact_value(out.attendees),
            # Earlier places and the reasons for moving are free text as the place is.
            "reschedules": [
                r.model_copy(
                    update={
                        "from_": _plan_masked(r.from_),
                        "to": _plan_masked(r.to),
                        "reason": redact_text(r.reason),
                    }
                )
                for r in out.reschedules
            ],
        }
    )


def _plan_masked(plan: SittingPlan) -> SittingPlan:
    return plan.model_copy(update={"place": redact_text(plan.place)}) if plan.place else plan


def obligation_out(row: Obligation, masked: bool = False) -> ObligationOut:
    out = ObligationOut.model_validate(row, from_attributes=True)
    if not masked:
        return out
    return out.model_copy(
        update={
            name: redact_text(value)
            for name in ("description", "place", "manner", "performance_note")
            if isinstance(value := getattr(out, name), str)
        }
    )


def agreement_out(agreement: Agreement, dispute: Dispute, masked: bool = False) -> AgreementOut:
    return AgreementOut(
        id=agreement.id,
        dispute_id=agreement.dispute_id,
        number=agreement.number,
        form=agreement.form,
        status=agreement.status,
        facts=_text(agreement.facts, masked),
        disputed_matters=_text(agreement.disputed_matters, masked),
        responsibility=_text(agreement.responsibility, masked),
        terms=[_text(t, masked) for t in agreement.terms],
        obligations=[obligation_out(o, masked) for o in agreement.obligations],
        body_id=agreement.body_id,
        body_name=agreement.body_name,
        mediator_id=agreement.mediator_id,
        mediator_name=agreement.mediator_name,
        content_hash=agreement.content_hash,
        effective_on=agreement.effective_on,
        effective_at=agreement.effective_at,
        supersedes_id=agreement.supersedes_id,
        signatures=[SignatureOut.model_validate(s, from_attributes=True) for s in agreement.signatures],
        missing=[MissingOut(**r.as_dict()) for r in rules.missing_elements(agreement, dispute)]
        if agreement.status == "draft"
        else [],
        awaiting_signatures=[
            AwaitingOut(signer=s.kind, party_id=uuid.UUID(s.key) if s.kind == "party" else None, name=s.name)
            for s in rules.awaiting(agreement, dispute)
        ]
        if agreement.status == "draft"
        else [],
        created_at=agreement.created_at,
        updated_at=agreement.updated_at,
        version=agreement.version,
    )


def follow_up_out(task: FollowUp, case_number: str, masked: bool = False) -> FollowUpOut:
    """A follow-up task as this caller reads it: the reason (an obligation's description), the
    result and each try's notes are free text a mediator typed, masked as the case's timeline masks
    the same words (个人信息保护法 Art. 51)."""
    fields = FollowUpOut.model_fields.keys() - {"case_number"}
    out = FollowUpOut(case_number=case_number, **{name: getattr(task, name) for name in fields})
    if not masked:
        return out
    return out.model_copy(
        update={
            "reason": redact_text(out.reason),
            "result": redact_value(out.result),
            "attempts": redact_value(out.attempts),
        }
    )


# What a caller reads of what a mediator wrote (minutes, an agreement, an obligation, a follow-up's
# notes): masked without `pii:read`; as written with it, a read of the case's personal data recorded
# only when the text shows a number (个人信息保护法 Art. 55), as the case's own free text is.
def _session(view: Viewer, row: MediationSession) -> SessionOut:
    return view.shown(row.dispute_id, session_out(row, True), lambda: session_out(row, False))


def _agreement(view: Viewer, agreement: Agreement, dispute: Dispute) -> AgreementOut:
    return view.shown(
        dispute.id, agreement_out(agreement, dispute, True), lambda: agreement_out(agreement, dispute, False)
    )


def _obligation(view: Viewer, row: Obligation) -> ObligationOut:
    return view.shown(row.dispute_id, obligation_out(row, True), lambda: obligation_out(row, False))


def _follow_up(view: Viewer, task: FollowUp, case_number: str) -> FollowUpOut:
    return view.shown(
        task.dispute_id,
        follow_up_out(task, case_number, True),
        lambda: follow_up_out(task, case_number, False),
    )


def _json(model: object, version: int, status_code: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(model), status_code=status_code, headers={"ETag": etag_for(version)})


# ---- sessions ------------------------------------------------------------------------------------


@router.get(
    "/disputes/{dispute_id}/sessions",
    response_model=list[SessionOut],
    summary="调解记录 The case's mediation sessions",
    responses=problem_responses(NotFound),
)
async def list_sessions(
    dispute_id: uuid.UUID, principal: Reader, svc: Agreements, view: View
) -> list[SessionOut]:
    return [_session(view, s) for s in await svc.sessions(dispute_id, principal)]


@router.get(
    "/disputes/{dispute_id}/sessions/{session_id}",
    response_model=SessionOut,
    summary="一次调解 One mediation session",
    description=(
        "As the list shows it, with the session's ETag: the If-Match to record, cancel or "
        "reschedule it. A session of another case is 404, as is a case the caller cannot see."
    ),
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def get_session(
    dispute_id: uuid.UUID, session_id: uuid.UUID, principal: Reader, svc: Agreements, view: View
) -> Response:
    row = await svc.sitting(dispute_id, session_id, principal)
    return _json(_session(view, row), row.version)


@router.post(
    "/disputes/{dispute_id}/sessions",
    status_code=201,
    response_model=SessionOut,
    summary="安排调解 Schedule a session",
    description=(
        "Time, and a place or online. A sitting held already (on paper, say) is scheduled with its "
        "time and then recorded. No sitting falls on a day (in the center's time) before mediation "
        "at the body began: the day it signed for the case, or the day the case came back to "
        "mediation after a court did not confirm its agreement (422 `before_mediation` at "
        "`scheduled_at`). Lands on the case's timeline with the event `session_scheduled`: "
        "the case's version (its ETag) moves on. `If-Match` is not required (an Idempotency-Key makes "
        "a retry safe); when given, it is checked against the case's current ETag (412 when stale, "
        "before anything is scheduled)."
    ),
    responses=CHANGES | sends(201, "ETag"),
)
async def schedule_session(
    request: Request,
    dispute_id: uuid.UUID,
    data: SessionIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: OptionalIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        row = await svc.schedule(dispute_id, data, principal, if_match)
        return _json(_session(view, row), row.version, 201)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/sessions/{session_id}/cancel",
    response_model=SessionOut,
    summary="取消调解 Call off a session still to be held",
    description=(
        "With the reason (a party cannot come, the place is not available): the sitting becomes "
        "`cancelled` with `cancel_reason`, and the case's timeline says so. To hold it another "
        "day, move it instead (POST .../reschedule). A session held (409 `session_recorded`) or already cancelled "
        "(409 `session_cancelled`) is not. Needs the session's ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def cancel_session(
    request: Request,
    dispute_id: uuid.UUID,
    session_id: uuid.UUID,
    data: SessionCancelIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        row = await svc.cancel(dispute_id, session_id, data, principal, if_match)
        return _json(_session(view, row), row.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/sessions/{session_id}/reschedule",
    response_model=SessionOut,
    summary="调解改期 Move a session still to be held to another time",
    description=(
        "A new `scheduled_at`, with the reason (a party is ill, the room is taken); `place` and "
        "`online` stay as they are unless given, and where the session then stands is checked as "
        "a new one is (an in-person session needs a `place`: 422 at `place`). The session keeps its "
        "id, its version goes up, and `reschedules` keeps the earlier time and place; the case's "
        "timeline says so. The same time, place and online as now is refused (422 "
        "`session_unchanged` at `scheduled_at`), and so is a day before mediation at the body "
        "began, as when scheduling (422 `before_mediation` at `scheduled_at`). A session held (409 `session_recorded`) or "
        "cancelled (409 `session_cancelled`) is not moved. Needs the session's ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def reschedule_session(
    request: Request,
    dispute_id: uuid.UUID,
    session_id: uuid.UUID,
    data: SessionRescheduleIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        row = await svc.reschedule(dispute_id, session_id, data, principal, if_match)
        return _json(_session(view, row), row.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/sessions/{session_id}/record",
    response_model=SessionOut,
    summary="记录调解 Record a session's minutes and outcome",
    description=(
        "Attendees, minutes (调解笔录) and outcome. `party_refused` (人民调解法 Art. 17), "
        "`termination_demanded` (Art. 23) and `no_agreement` end mediation (the case moves to "
        "`mediation_failed` with that reason). `held_at` is neither in the future (422 `in_future`) "
        "nor on a day before mediation at the body began, as when scheduling (422 `before_mediation`). "
        "Needs the session's ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def record_session(
    request: Request,
    dispute_id: uuid.UUID,
    session_id: uuid.UUID,
    data: SessionRecordIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        row, _ = await svc.record(dispute_id, session_id, data, principal, if_match)
        return _json(_session(view, row), row.version)

    return await run_idempotent(request, principal, idempotency_key, work)


# ---- agreements ----------------------------------------------------------------------------------


@router.get(
    "/disputes/{dispute_id}/agreements",
    response_model=list[AgreementOut],
    summary="调解协议 The case's agreement versions",
    responses=problem_responses(NotFound),
)
async def list_agreements(
    dispute_id: uuid.UUID, principal: Reader, svc: Agreements, view: View
) -> list[AgreementOut]:
    dispute, rows = await svc.versions(dispute_id, principal)
    return [_agreement(view, a, dispute) for a in rows]


@router.post(
    "/disputes/{dispute_id}/agreements",
    status_code=201,
    response_model=AgreementOut,
    summary="起草调解协议 Draft an agreement (a new version)",
    description=(
        "Parties come from the case. A draft may be incomplete: `missing` lists what 人民调解法 Art. 29 "
        "still requires. A new version supersedes the previous draft, which keeps its signatures. "
        "`supersedes` names the newest version the client saw: another drafted since is refused (412). "
        "A version that has taken effect binds the parties (Art. 29, 31) and is not replaced (409 "
        "`agreement_effective`); it is set aside only by `remediate` after a court's refusal to confirm it. "
        "An oral agreement in effect (Art. 30) may be put in writing: it stays in effect until the written "
        "version takes effect, and a written draft abandoned before then leaves it in force. An obligation "
        "cannot fall due before the application, the case's acceptance or the start of mediation (422 "
        "`before_application`, `before_acceptance`, `before_mediation` on `obligations[i].due_on`). "
        "Lands on the case's timeline (`draft_agreement`) with the event `agreement_drafted`: the case's "
        "version (its ETag) moves on. `If-Match` is not required (an Idempotency-Key makes a retry "
        "safe); when given, it is checked against the case's current ETag (412 when stale, before "
        "anything is drafted)."
    ),
    responses=CHANGES | sends(201, "ETag"),
)
async def draft_agreement(
    request: Request,
    dispute_id: uuid.UUID,
    data: AgreementDraftIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: OptionalIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        dispute, agreement = await svc.draft(
            dispute_id, data, principal, supersedes=data.supersedes, if_match=if_match
        )
        return _json(_agreement(view, agreement, dispute), agreement.version, 201)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/disputes/{dispute_id}/agreements/{agreement_id}",
    response_model=AgreementOut,
    summary="一份协议 One agreement version",
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def get_agreement(
    dispute_id: uuid.UUID, agreement_id: uuid.UUID, principal: Reader, svc: Agreements, view: View
) -> Response:
    dispute, agreement = await svc.get(dispute_id, agreement_id, principal)
    return _json(_agreement(view, agreement, dispute), agreement.version)


@router.put(
    "/disputes/{dispute_id}/agreements/{agreement_id}",
    response_model=AgreementOut,
    summary="修改协议草稿 Edit a draft (before any signature)",
    description=(
        "Refused (409 `agreement_signed`) once anyone has signed: a change is a new version with its own "
        "signatures. A version superseded by a newer one is not edited (409 `agreement_superseded`). "
        "Needs the version's ETag. Lands on the case's timeline (`revise_agreement`) with the event "
        "`agreement_revised`: the case's version (its ETag) moves on. An edit that changes nothing "
        "(the same text, obligations, parties and mediator) is refused (409 `agreement_unchanged`) "
        "and records nothing. A retry under the same Idempotency-Key answers what the first request "
        "answered (`Idempotent-Replayed: true`), not 412."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def replace_agreement(
    request: Request,
    dispute_id: uuid.UUID,
    agreement_id: uuid.UUID,
    data: AgreementIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        dispute, agreement = await svc.replace(dispute_id, agreement_id, data, principal, if_match)
        return _json(_agreement(view, agreement, dispute), agreement.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/agreements/{agreement_id}/signatures",
    response_model=AgreementOut,
    summary="签署 Record a signature, fingerprint or seal",
    description=(
        "Refused while Art. 29's contents are incomplete. Who, when, how (in person, fingerprint, "
        "electronic with the hash of what was signed, seal). The last one makes the version effective; "
        "then `agree` records the agreement on the case. The mediator signs a written agreement in person or "
        "electronically; `recorded` is for an oral agreement only (422 `method_not_for_form`). A version drafted "
        "before the case's mediator changed is not signed (409 `mediator_changed`): draft a new one. "
        "A signature dated after an obligation's due day is refused (422 `before_effective`, field "
        "`obligations[i].due_on`, location `agreement`): the agreement takes effect on its last signature. "
        "A written version that takes effect supersedes the oral agreement it puts in writing. "
        "Needs the version's ETag in `If-Match`, the version the signer was shown (428 without): a signature "
        "is recorded only against that text (Art. 29), and a version edited or signed since is refused (412); "
        "read it again, show it, and sign it. Each signature lands on the case's timeline (`sign_agreement`) "
        "with the event `agreement_signature_recorded`, which says (`effective`) whether it made the version "
        "effective. The case's version (its ETag) moves on: read the case again before acting on it (`agree`)."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def sign_agreement(
    request: Request,
    dispute_id: uuid.UUID,
    agreement_id: uuid.UUID,
    data: SignatureIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        dispute, agreement = await svc.sign(dispute_id, agreement_id, data, principal, if_match)
        return _json(_agreement(view, agreement, dispute), agreement.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/disputes/{dispute_id}/agreements/{agreement_id}/document",
    response_class=Response,
    summary="打印协议书 The printable agreement (HTML, print stylesheet)",
    responses={
        200: {
            "content": {"text/html": {}},
            "description": "The page.",
            "headers": {"ETag": header_ref("ETag")},
        },
        **problem_responses(NotFound),
    },
)
async def agreement_document(
    dispute_id: uuid.UUID, agreement_id: uuid.UUID, principal: Reader, svc: Agreements, view: View
) -> HTMLResponse:
    dispute, agreement = await svc.get(dispute_id, agreement_id, principal)
    page = view.shown(
        dispute.id,
        agreement_html(agreement, dispute, masked=True),
        lambda: agreement_html(agreement, dispute, masked=False),
    )
    return HTMLResponse(
        page,
        headers={"ETag": etag_for(agreement.version), "X-Content-Type-Options": "nosniff"},
    )


# ---- performance and follow-ups ------------------------------------------------------------------


@router.post(
    "/disputes/{dispute_id}/obligations/{obligation_id}/performance",
    response_model=ObligationOut,
    summary="登记义务履行 Record an obligation as performed",
    description=(
        "When the last obligation is performed, the case moves to `performed` (人民调解法 Art. 31). "
        "The record lands on the case's timeline and moves the case's version on: it needs the case's "
        "ETag in `If-Match` (428 without, 412 stale), and answers with the case's new ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def perform_obligation(
    request: Request,
    dispute_id: uuid.UUID,
    obligation_id: uuid.UUID,
    data: PerformanceIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: CaseIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        obligation, dispute = await svc.perform(dispute_id, obligation_id, data, principal, if_match)
        return _json(_obligation(view, obligation), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/bodies/{body_id}/follow-ups",
    response_model=FollowUpPage,
    summary="回访督促任务 The body's follow-up inbox",
    description="Obligations past their due date, raised by the clock for the body to follow up (Art. 31).",
    responses=problem_responses(NotFound),
)
async def list_follow_ups(
    body_id: uuid.UUID,
    principal: Reader,
    svc: Agreements,
    view: View,
    status: Annotated[str | None, Query(pattern="^(open|done)$")] = "open",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> FollowUpPage:
    rows, next_cursor = await svc.follow_ups(body_id, principal, status, cursor, limit)
    return FollowUpPage(items=[_follow_up(view, f, n) for f, n in rows], next_cursor=next_cursor)


@router.post(
    "/follow-ups/{follow_up_id}/result",
    response_model=FollowUpOut,
    summary="记录回访结果 Record a follow-up's result",
    description=(
        "The result of following up an overdue obligation (人民调解法 Art. 31). A follow-up visit after "
        "closing (回访) is recorded with `/follow-ups/{id}/visit` or `/impossible`: its id is not found here. "
        "A follow-up already closed (the obligation performed, say) is refused (409). `contacted_on` cannot "
        "be after today (422 `in_future`) or before the agreement took effect (422 `before_effective`). "
        "The result lands on the case's timeline and moves the case's version on (and the case to "
        "`performed` when it records the last obligation performed): it needs the case's ETag in "
        "`If-Match` (428 without, 412 stale), and answers with the case's new ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def complete_follow_up(
    request: Request,
    follow_up_id: uuid.UUID,
    data: FollowUpResultIn,
    principal: Writer,
    svc: Agreements,
    view: View,
    if_match: CaseIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        task, dispute = await svc.complete(follow_up_id, data, principal, if_match)
        return _json(_follow_up(view, task, dispute.case_number), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


async def visits(svc: Annotated[DisputeService, Depends(service)]) -> VisitService:
    return VisitService(svc)


Visits = Annotated[VisitService, Depends(visits)]


@router.get(
    "/follow-ups",
    response_model=FollowUpPage,
    summary="回访任务 Follow-up tasks",
    description=(
        "A body sees its own tasks; center staff see every task on the cases of their region, including "
        "the visits of cases no body handled. Earliest due first."
    ),
    responses=problem_responses(ValidationFailed),
)
async def search_follow_ups(
    principal: Reader,
    svc: Visits,
    view: View,
    kind: Literal["performance", "visit"] | None = None,
    status: Literal["open", "done", "impossible"] | None = "open",
    dispute_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> FollowUpPage:
    rows, next_cursor = await svc.search(
        principal, kind=kind, status=status, dispute_id=dispute_id, cursor=cursor, limit=limit
    )
    return FollowUpPage(items=[_follow_up(view, f, n) for f, n in rows], next_cursor=next_cursor)


@router.post(
    "/follow-ups/{follow_up_id}/visit",
    response_model=FollowUpOut,
    summary="记录回访 Record a follow-up visit (or a try)",
    description=(
        "Reached: contact method, satisfaction 1-5, whether the agreement is being performed, notes; the task is "
        "done and the case may be archived. Not reached: the try is kept; after the configured number of tries "
        "the visit is recorded as impossible (parties unreachable). Lands on the case's timeline. `visited_on` "
        "cannot be after today (422 `in_future`), before the case was closed (422 `before_closing`) or before "
        "the agreement took effect (422 `before_effective`). Each try moves the case's version on: it "
        "needs the case's ETag in `If-Match` (428 without, 412 stale), and answers with the case's new ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def record_visit(
    request: Request,
    follow_up_id: uuid.UUID,
    data: VisitIn,
    principal: Writer,
    svc: Visits,
    view: View,
    if_match: CaseIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        task, dispute = await svc.visit(follow_up_id, data, principal, if_match)
        return _json(_follow_up(view, task, dispute.case_number), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/follow-ups/{follow_up_id}/impossible",
    response_model=FollowUpOut,
    summary="无法回访 Record that no visit is possible",
    description=(
        "With the reason (e.g. a party moved away, died). The case may then be archived. Lands on the "
        "case's timeline and moves its version on: it needs the case's ETag in `If-Match` (428 without, "
        "412 stale), and answers with the case's new ETag."
    ),
    responses=CHANGES | sends(200, "ETag"),
)
async def visit_impossible(
    request: Request,
    follow_up_id: uuid.UUID,
    data: VisitImpossibleIn,
    principal: Writer,
    svc: Visits,
    view: View,
    if_match: CaseIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        task, dispute = await svc.impossible(follow_up_id, data, principal, if_match)
        return _json(_follow_up(view, task, dispute.case_number), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)
