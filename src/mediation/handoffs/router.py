"""HTTP API for handoffs under /v1: what courts and arbitration commissions pull and answer.

A court's system lists the confirmation requests addressed to it, reads one request's dossier,
acknowledges acceptance with its own case number (or not), extends once, and posts the ruling.
Commissions and courts receiving referrals do the same and post the outcome. Every change needs
the handoff's ETag in If-Match and may carry an Idempotency-Key, so a retried request is safe.
"""

import hashlib
import json
import re
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mediation.agreements.router import agreement_out, session_out
from mediation.agreements.schemas import SessionOut
from mediation.bodies.models import Body as Organisation
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
    problem_responses,
)
from mediation.core.http import (
    BY_CREDENTIAL,
    entity_tags,
    etag_for,
    header_ref,
    not_modified,
    not_modified_response,
    sends,
)
from mediation.core.i18n import current_language
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_value
from mediation.core.principal import Permission, Principal
from mediation.disputes.models import Dispute, TimelineEntry
from mediation.disputes.router import IdempotencyKey, View, service
from mediation.disputes.service import DisputeService
from mediation.disputes.views import Viewer
from mediation.documents.router import manifest_out
from mediation.handoffs.ledger import KIND_LABELS, materials_overdue, overdue_step, warning_text
from mediation.handoffs.materials import particulars
from mediation.handoffs.models import Handoff
from mediation.handoffs.schemas import (
    AcceptanceIn,
    CompetentCourt,
    DecisionIn,
    DossierOut,
    HandoffExtensionIn,
    HandoffKind,
    HandoffOut,
    HandoffPage,
    HandoffStatus,
    HandoffWarning,
    MaterialCheck,
    MaterialsRequestIn,
    MaterialsRequestOut,
    MaterialsSuppliedIn,
    OutcomeIn,
    PartyParticulars,
    WithdrawalIn,
)
from mediation.handoffs.service import FREE_TEXT_KEYS, HandoffService
from mediation.identity.auth import permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["handoffs"])

Reader = Annotated[Principal, permission(Permission.cases_read)]
Writer = Annotated[Principal, permission(Permission.cases_write)]
HandoffIfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The handoff\'s current ETag, as its answers carry it (`"<version>"`) or as its dossier '
        'does (`"h<version>-c<case version>-<digest>"`, compared by its handoff part); 428 without it, '
        "412 when stale.",
    ),
]
CHANGES = problem_responses(
    NotFound,
    Forbidden,
    Conflict,
    InvalidTransition,
    GuardFailed,
    StaleVersion,
    PreconditionRequired,
    IdempotencyKeyMismatch,
    IdempotencyInProgress,
)


async def handoffs(svc: Annotated[DisputeService, Depends(service)]) -> HandoffService:
    return HandoffService(svc)


Handoffs = Annotated[HandoffService, Depends(handoffs)]


def handoff_out(
    handoff: Handoff,
    case_number: str,
    target_name: str,
    svc: HandoffService,
    view: Viewer,
) -> HandoffOut:
    """One handoff, its free text shown as the case's own (Viewer.text): masked without
    `pii:read`, and a read of the case's personal data recorded when a number is shown."""

    def text(value: Any) -> Any:
        return view.shown(handoff.dispute_id, redact_value(value), lambda: value) if value else value

    return HandoffOut(
        id=handoff.id,
        dispute_id=handoff.dispute_id,
        case_number=case_number,
        kind=handoff.kind,
        kind_label=KIND_LABELS[handoff.kind].get(),
        target_id=handoff.target_id,
        target_name=target_name,
        status=handoff.status,
        basis=handoff.basis,
        applicant_party_ids=[uuid.UUID(i) for i in handoff.applicant_party_ids],
        claims=text(handoff.claims),
        arbitration_agreement=text(handoff.arbitration_agreement),
        warnings=[
            HandoffWarning(
                code=w.get("code", ""),
                message=warning_text(w).get(),
                article=w.get("article"),
                runs_until=w.get("runs_until"),
                requested_on=w.get("requested_on"),
                party_id=w.get("party_id"),
            )
            for w in handoff.warnings
        ],
        requested_on=handoff.requested_on,
        accept_due_on=handoff.accept_due_on,
        accepted_on=handoff.accepted_on,
        target_case_number=handoff.target_case_number,
        decide_due_on=handoff.decide_due_on,
        provisional=handoff.provisional,
        extended_days=handoff.extended_days,
        extension_reason=text(handoff.extension_reason),
        decided_on=handoff.decided_on,
        decision=text(handoff.decision),
        enforcement_deadline=handoff.enforcement_deadline,
        overdue=overdue_step(handoff, svc.clock.today()),
        materials_requests=[materials_request_out(r, handoff, svc, text) for r in handoff.materials_requests],
        version=handoff.version,
        created_at=handoff.created_at,
        updated_at=handoff.updated_at,
    )


# The dossier's ETag: the handoff's version, its case's, and a digest of the rest it depends on.
_DOSSIER_TAG = re.compile(r'^(W/)?"h(\d+)-c\d+-[0-9a-f]{12}"$')


async def dossier_etag(svc: HandoffService, handoff: Handoff, principal: Principal, view: Viewer) -> str:
    """The validator of the dossier this caller reads (RFC 9110 §8.8.3), made before the dossier is:
    a conditional read that finds it current shows nothing and builds nothing.

    The dossier embeds the case, whose contents change with the case's version, not the handoff's
    (its timeline, sittings, documents, agreement, parties): the tag names both versions. What
    else the dossier depends on goes into the digest: who reads it (role, organisation, region:
    whether the case is still theirs to read, `withheld`, and which timeline reasons and documents
    are withheld from them), whether they read the numbers in full (`pii:read`), the language of
    its labels, the step overdue today, and the names of the target and of the body, which change
    with neither version. So one caller's copy never validates another's with other disclosures.

    Strong, so that a client sending it back as If-Match (as the handoff's steps take it, by its
    handoff part: `handoff_if_match`) is not refused as weak."""
    dispute = await svc.session.get(Dispute, handoff.dispute_id)
    assert dispute is not None  # a handoff's case is never deleted
    _, target_name = await svc.names(handoff)
    body = await svc.session.get(Organisation, dispute.body_id) if dispute.body_id else None
    rest = [
        principal.role.value,
        str(principal.organisation_id),
        principal.region,
        view.unmasked,
        current_language(),
        overdue_step(handoff, svc.clock.today()),
        # A request for materials turns overdue at midnight, before anything writes it down.
        materials_overdue(handoff, svc.clock.today()),
        target_name,
        body.name if body is not None else None,
    ]
    digest = hashlib.sha256(json.dumps(rest, ensure_ascii=False).encode()).hexdigest()[:12]
    return f'"h{handoff.version}-c{dispute.version}-{digest}"'


def handoff_if_match(if_match: str | None) -> str | None:
    """If-Match as the handoff's steps check it: a dossier's ETag names the handoff's version in its
    first part, and stands for the handoff's own ETag (`"h5-c12-…"` for `"5"`), weak or strong as
    it came. A step changes the handoff, and is held to the handoff's version, as before the
    dossier's ETag named its case too: the case moves for reasons the court has no part in (a clock
    reaching a level, a document added), and a court's answer is not refused for them. Anything
    else (another tag, `*`, a malformed field) is left as sent, for `check_if_match` to judge."""
    tags = entity_tags(if_match) if if_match is not None else None
    if not tags:
        return if_match
    return ", ".join(_DOSSIER_TAG.sub(r'\1"\2"', tag) for tag in tags)


def materials_request_out(
    request: dict[str, Any], handoff: Handoff, svc: HandoffService, text: Any
) -> MaterialsRequestOut:
    """One of the court's requests for more materials; its free text shown as the handoff's is."""
    due_on = date.fromisoformat(request["due_on"])
    supplied_on = date.fromisoformat(request["supplied_on"]) if request.get("supplied_on") else None
    is_open = request.get("status") == "open"
    return MaterialsRequestOut(
        id=uuid.UUID(request["id"]),
        number=request["number"],
        article=request["article"],
        items=[text(item) for item in request["items"]],
        codes=request["codes"],
        due_on=due_on,
        note=text(request.get("note")),
        requested_on=date.fromisoformat(request["requested_on"]),
        status=request["status"],
        overdue=is_open and materials_overdue(handoff, svc.clock.today()),
        supplied_on=supplied_on,
        supplied_late=supplied_on > due_on if supplied_on else None,
        document_ids=[uuid.UUID(i) for i in request.get("document_ids", [])],
        supplied_note=text(request.get("supplied_note")),
    )


async def _answer(svc: HandoffService, handoff: Handoff, view: Viewer) -> JSONResponse:
    """A step's answer: the handoff as it now stands, its text shown as the lists and the dossier
    show it (`view`): a number in it masked without `pii:read`; in full with it, and then a read of
    the case's personal data recorded (个人信息保护法 Art. 55), a replay under the same
    Idempotency-Key recorded again (core.idempotency)."""
    await svc.session.flush()
    await svc.session.refresh(handoff)
    case_number, target_name = await svc.names(handoff)
    out = handoff_out(handoff, case_number, target_name, svc, view=view)
    return JSONResponse(jsonable_encoder(out), headers={"ETag": etag_for(handoff.version)})


@router.get(
    "/handoffs",
    response_model=HandoffPage,
    summary="移交列表 Handoffs addressed to the caller (courts, commissions) or from its cases",
    description=(
        "Courts and commissions see exactly what is addressed to them; bodies what came from their cases; "
        "center staff their region's. A work queue, in the order the handoffs were made, oldest first, "
        "the same on every page: a walk resumed from a cursor finds the handoffs made since (a cursor "
        "of the former order, by request date and id, is 422 `invalid_cursor`: start again). Ordered "
        "by making, not by change: to follow what changes on handoffs already listed, follow the "
        "event feed (`GET /v1/events`). `overdue=true` lists those whose current step is late; "
        "`materials_overdue=true` those whose request for more materials passed its day unanswered. "
        "The text typed about each case (claims, arbitration agreement, reason for an extension, "
        "decision) shows ID and phone numbers masked to a caller without `pii:read`; shown in full, "
        "it is audited as a read of that case's personal data, as the dossier is."
    ),
    responses=problem_responses(),
)
async def list_handoffs(
    principal: Reader,
    view: View,
    svc: Handoffs,
    status: Annotated[list[HandoffStatus] | None, Query()] = None,
    kind: HandoffKind | None = None,
    overdue: bool | None = None,
    materials_overdue: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HandoffPage:
    rows, next_cursor = await svc.search(
        principal,
        status=list(status) if status else None,
        kind=kind,
        overdue=overdue,
        cursor=cursor,
        limit=limit,
        materials_overdue=materials_overdue,
    )
    # Each handoff's text as the case's own is shown (the dossier's too): a number in it masked
    # without `pii:read`, and shown, a read of that case's personal data (个人信息保护法 Art. 55).
    return HandoffPage(
        items=[handoff_out(h, n, t, svc, view=view) for h, n, t in rows], next_cursor=next_cursor
    )


@router.get(
    "/handoffs/{handoff_id}",
    response_model=DossierOut,
    summary="移交卷宗 One handoff with its full dossier",
    description=(
        "The request, the case with the parties' full identity (audited), the agreement, the mediation "
        "record (sessions, minutes, timeline), the frozen document manifest and the checklist of the "
        "materials of 民诉法解释 Art. 353-354. A court or commission reads the dossier while the case is "
        "addressed to it; once the case has left it (mediated again after a rejection, its confirmation "
        "request withdrawn, or handed elsewhere) it still reads its own handoff's record (`handoff`: "
        "status, answers, dates, and its ETag), with `withheld: case_left_target` and the case's "
        "contents null; the handoff stays on its list. "
        "A court that accepted a confirmation "
        "request reads it until it rules, a withdrawal the parties asked for included. A referral to "
        "arbitration or litigation comes without the mediation's minutes and free-text notes "
        "(`mediation_record_withheld`: what a party conceded in mediation may not be used against it, "
        "最高人民法院关于人民法院特邀调解的规定 Art. 22; the parties' consent to its use, the rule's "
        "exception, is not recorded here, so it is always left out). "
        'Its ETag (`"h<handoff version>-c<case version>-<digest>"`) changes with the handoff, with the '
        "case (every change to what the dossier shows of it moves the case's version) and with what "
        "the caller is shown (the digest: who reads, whether the numbers are shown, the language, the "
        "step overdue today, the names of the target and the body). Sent as If-None-Match, a current "
        "one is answered 304 without a body (weak comparison, a list of tags or `*` taken; a malformed "
        "field is ignored), and records no `pii.read`: nothing is shown. `Vary: Authorization, "
        "X-API-Key`. The handoff's steps take it as If-Match by its handoff part, as they take the "
        'handoff\'s own `"<version>"`: a change to the case alone does not make it stale. '
        "`case.clock.remaining_seconds` is counted when the answer is made: a copy kept through 304s "
        "counts it from `case.clock.due_at`."
    ),
    responses=problem_responses(NotFound, Forbidden)
    | {200: {"headers": {"ETag": header_ref("DossierETag")}}}
    | not_modified_response("DossierETag"),
)
async def get_handoff(
    request: Request, handoff_id: uuid.UUID, principal: Reader, view: View, svc: Handoffs
) -> Response:
    handoff = await svc.get(handoff_id, principal)
    # The handoff's record is the case's too (its claims, answers): audited as a read of the case,
    # contents withheld or not, and answered 304 or not.
    request.state.audit_object = ("dispute", handoff.dispute_id)
    etag = await dossier_etag(svc, handoff, principal, view)
    headers = {"ETag": etag, "Vary": BY_CREDENTIAL}
    if (unchanged := not_modified(request, etag, {"Vary": BY_CREDENTIAL})) is not None:
        return unchanged
    parts = await svc.dossier_parts(handoff, principal)
    dispute = parts["dispute"]
    case_number, target_name = await svc.names(handoff)
    record = handoff_out(handoff, case_number, target_name, svc, view=view)
    masked = not view.unmasked
    if parts["withheld"]:
        # The case has left the caller: its own handoff's record only, none of the case.
        out = DossierOut(
            handoff=record,
            withheld=parts["withheld"],
            case=None,
            particulars=None,
            agreement=None,
            sessions=None,
            timeline=None,
            mediation_record_withheld=None,
            manifest=None,
            late_documents=None,
            materials=None,
            filing_pack=None,
        )
        return JSONResponse(jsonable_encoder(out), headers=headers)
    # The dossier's timeline is the case's timeline: what a caller may not read there (another
    # body's reasons) it does not read here either.
    withheld = await svc.disputes.reasons_withheld(parts["timeline"], principal)
    case = view.dispute(dispute)
    sessions = [session_out(s, masked) for s in parts["sessions"]]
    entries: list[TimelineEntry] = parts["timeline"]
    record_withheld = parts["record_withheld"]
    noted: set[int] = set()
    if record_withheld:
        # A referral's dossier leaves out what was said in mediation (特邀调解规定 Art. 22): read
        # from copies without it, the text left out is neither shown nor counted as disclosed.
        noted = {e.seq for e in entries if _has_free_text(e.reason, e.payload)}
        entries = [_entry_without_free_text(e) if e.seq in noted else e for e in entries]
        case = case.model_copy(update={"outcome": _without_free_text(case.outcome)})
        sessions = [_sitting_without_record(s) for s in sessions]
    timeline = [view.timeline_entry(e, withheld=e.seq in withheld) for e in entries]
    out = DossierOut(
        handoff=record,
        withheld=None,
        case=case,
        particulars=[PartyParticulars(**p) for p in particulars(case.parties)],
        agreement=agreement_out(parts["agreement"], dispute, masked) if parts["agreement"] else None,
        sessions=sessions,
        timeline=[t.model_copy(update={"reason_withheld": True}) if t.seq in noted else t for t in timeline],
        mediation_record_withheld=record_withheld,
        manifest=manifest_out(dispute.id, parts["manifest"], view),
        late_documents=parts["late_documents"],
        materials=[MaterialCheck(**m) for m in parts["materials"]],
        filing_pack=redact_value(parts["filing_pack"]) if masked else parts["filing_pack"],
    )
    return JSONResponse(jsonable_encoder(out), headers=headers)


def _has_free_text(reason: str | None, payload: dict[str, Any] | None) -> bool:
    return bool(reason) or any((payload or {}).get(k) for k in FREE_TEXT_KEYS)


def _without_free_text(value: Any) -> Any:
    """The case's outcome (or a payload) with its free text left out, its codes and dates kept."""
    if isinstance(value, dict):
        return {k: None if k in FREE_TEXT_KEYS else _without_free_text(v) for k, v in value.items()}
    return value


def _entry_without_free_text(entry: TimelineEntry) -> TimelineEntry:
    """A copy of a timeline entry for a referral's dossier, its reason and the free text of its
    payload left out. Never added to the session: the timeline is append-only."""
    copy = {c.key: getattr(entry, c.key) for c in TimelineEntry.__table__.columns}
    return TimelineEntry(**{**copy, "reason": None, "payload": _without_free_text(entry.payload)})


def _sitting_without_record(sitting: SessionOut) -> SessionOut:
    """A sitting in a referral's dossier: when and where it was held, who attended and how it
    ended, without its minutes nor the free text of its calling off or moving."""
    return sitting.model_copy(
        update={
            "minutes": None,
            "cancel_reason": None,
            "reschedules": [r.model_copy(update={"reason": None}) for r in sitting.reschedules],
        }
    )


def _change_endpoint(operation: str, schema: type[BaseModel]) -> Any:
    """One POST per step of the target's work; each takes the handoff's ETag and may be retried."""

    async def endpoint(
        request: Request,
        handoff_id: uuid.UUID,
        data: Annotated[schema, Body()],  # type: ignore[valid-type]
        principal: Writer,
        view: View,
        svc: Handoffs,
        if_match: HandoffIfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def work() -> JSONResponse:
            step = getattr(svc, operation)
            handoff = await step(handoff_id, data, principal, handoff_if_match(if_match))
            if svc.unchanged:
                # The answer was recorded already, as sent: nothing written, no change to audit.
                request.state.changed_nothing = True
            return await _answer(svc, handoff, view)

        return await run_idempotent(request, principal, idempotency_key, work)

    endpoint.__name__ = operation
    return endpoint


STEPS: list[tuple[str, str, type[BaseModel], str, str]] = [
    (
        "/handoffs/{handoff_id}/acceptance",
        "acknowledge",
        AcceptanceIn,
        "答复是否受理 Acknowledge acceptance (with your case number) or not",
        (
            "Due within 3 days for a confirmation request (法释〔2011〕5号 Art. 4), 5 for arbitration, 7 for a "
            "suit. `not_accepted` ends the request. For confirmation, with reason `materials_missing` "
            "(counted as withdrawn, 民诉法解释 Art. 357) or `not_competent_court` (民事诉讼法 Art. 205) "
            "the case goes back to `agreement_signed`, where the parties may apply again within the 30 "
            "days; with any other reason to `confirmation_rejected` (re-mediate or sue). A referral not "
            "accepted, by a commission or by a court, returns the case to `mediation_failed`, from which "
            "the parties take it where the refusal points: a labour case to court (劳动争议调解仲裁法 "
            "Art. 29), another to the competent commission or court (民事诉讼法 Art. 127). Each kind of "
            "handoff takes its own reason codes (422 `reason_not_of_this_body` otherwise) and an "
            "optional `notice_number` of the notice or ruling not accepting it."
        ),
    ),
    (
        "/handoffs/{handoff_id}/extension",
        "extend",
        HandoffExtensionIn,
        "延长审查期限 Extend the decision period (once)",
        (
            "Confirmation: by at most 10 days (法释〔2011〕5号 Art. 5); labour arbitration 15; rural land 30. "
            "The days count from the period's current last day (moved off a rest day, 民事诉讼法 Art. 85). "
            "Only while the period runs: once it has run out, 409 `period_expired`. Extended once: the "
            "same days and reason sent again (a retry whose answer was lost) answer 200 with the handoff "
            "as it stands, whatever ETag they name, and write nothing; another extension is 409 "
            "`already_extended`, with the one recorded (`extended_days`, `extension_reason`)."
        ),
    ),
    (
        "/handoffs/{handoff_id}/decision",
        "decide",
        DecisionIn,
        "作出司法确认裁定 Post the confirmation ruling",
        (
            "`confirmed` (裁定调解协议有效: enforceable, enforcement within 2 years), `rejected` with the "
            "ground of 民诉法解释 Art. 358, or `withdrawn`: the ruling allowing the parties' withdrawal of the "
            "application, or treating it as withdrawn (民诉法解释 Art. 357), which returns the case to "
            "`agreement_signed` and answers a withdrawal request the body or center recorded "
            "(`warnings`: `withdrawal_requested`). Only after acceptance, each with the ruling's number and date."
        ),
    ),
    (
        "/handoffs/{handoff_id}/outcome",
        "conclude",
        OutcomeIn,
        "登记仲裁或诉讼结果 Post a referral's outcome",
        "Award, judgment, settlement, withdrawal or dismissal; closes the case.",
    ),
    (
        "/handoffs/{handoff_id}/withdrawal",
        "withdraw",
        WithdrawalIn,
        "撤回司法确认申请 Withdraw a confirmation request (or ask to)",
        (
            "Before the court accepts, the parties' withdrawal (recorded by the body or the center) takes "
            "the request back: the case returns to `agreement_signed`, and the court no longer reads it "
            "(the dossier answers its handoff's record only, `withheld: case_left_target`); the handoff stays on its list. Once the court has "
            "accepted (its case number registered), the withdrawal is the court's to allow by a ruling "
            "(民诉法解释 Art. 357): the body's or center's withdrawal is recorded as the parties' request "
            "(200, the handoff still `accepted`, with the warning `withdrawal_requested`, the timeline entry "
            "`request_withdrawal` and the event `handoff_withdrawal_requested`), the case stays "
            "`confirmation_pending` before the court, which reads it until it rules and closes it with "
            "`/decision` `withdrawn` (or here, with `ruling_number` and `ruled_on`); a second request "
            "while one waits is 409 `withdrawal_already_requested`, with the day of the one waiting. Sent "
            "again as recorded (a retry whose answer was lost: the same reason and party as the request "
            "waiting, or the same withdrawal as the one that ended the request), a withdrawal answers 200 "
            "with the handoff as it stands, whatever ETag it names, and writes nothing; another after the "
            "request was withdrawn is 409 `handoff_settled`. The court posts here, too, an application "
            "treated as withdrawn for missing materials (`materials_missing`; with its ruling once accepted). "
            "A referral accepted by a commission or court: the body's or center's withdrawal here is "
            "likewise a request, and the target posts the outcome `withdrawal`; before acceptance, 409 "
            "`wrong_kind`."
        ),
    ),
]
STEPS += [
    (
        "/handoffs/{handoff_id}/materials-request",
        "request_materials",
        MaterialsRequestIn,
        "要求限期补充材料 Ask for more materials by a set day",
        (
            "The court addressed asks the parties, through the mediation side, for materials by a day it "
            "sets: while the request is pending, those the application lacks (民诉法解释 Art. 354: 限期补交); "
            "once accepted, statements or proofs insufficient, incomplete or doubtful (Art. 356: 限期补充). "
            "`items` says what in the court's words, `codes` may name the dossier checklist's items "
            "(`materials[].code`), `due_on` is after today and at most 90 days ahead (422 `implausible`). "
            "Recorded on the handoff (`materials_requests`, `open`), on the case's timeline "
            "(`request_materials`) and as the event `handoff_materials_requested`; the court's own periods "
            "are left as they are. Judicial confirmation only (409 `wrong_kind`); not once the handoff is "
            "settled (409 `handoff_settled`); one open request at a time (409 "
            "`materials_already_requested`). The same request sent again is answered 200 as it stands, "
            "nothing written. Not supplied in time without good reason, the court may treat the "
            "application as withdrawn (Art. 357): `/decision` `withdrawn`, or before acceptance "
            "`/acceptance` `not_accepted` with `materials_missing`."
        ),
    ),
    (
        "/handoffs/{handoff_id}/materials-supplied",
        "supply_materials",
        MaterialsSuppliedIn,
        "补充材料 Supply the materials the court asked for",
        (
            "The body holding the case or the center answers the open request with documents of the case, "
            "uploaded first (`POST /v1/disputes/{id}/documents`): they are frozen into the handoff's dossier "
            "as the first ones were (its `manifest`, each marked `supplied_for` the request, no longer "
            "`late_documents`), the request is `supplied`, the case's timeline says `supply_materials` and "
            "the court is sent `handoff_materials_supplied`. A document of another case, or withdrawn, is "
            "422 (`document_ids[n]`: `not_of_this_case`, `withdrawn`); no open request, 409 "
            "`no_materials_request`. A request past its `due_on` still takes them (`supplied_late`): "
            "whether the delay had good reason is the court's to judge (民诉法解释 Art. 357). The same answer "
            "sent again is answered 200 as it stands, nothing written."
        ),
    ),
]
# Every step answers with the handoff as it stands, its text shown as the lists show it.
ANSWER_SHOWN = (
    " The answer is the handoff as it now stands: its text (claims, arbitration agreement, reason for "
    "an extension, decision, the materials requests' items and notes) shows ID and phone numbers "
    "masked to a caller without `pii:read`; shown in full, it is audited as a read of the case's "
    "personal data, as the lists and the dossier are."
)
for _path, _operation, _schema, _summary, _description in STEPS:
    router.add_api_route(
        _path,
        _change_endpoint(_operation, _schema),
        methods=["POST"],
        response_model=HandoffOut,
        summary=_summary,
        description=_description + ANSWER_SHOWN,
        responses=CHANGES | sends(200, "ETag"),
    )


@router.get(
    "/disputes/{dispute_id}/handoffs",
    response_model=list[HandoffOut],
    summary="案件的移交记录 A case's confirmation requests and referrals",
    description=(
        "Their text (claims, arbitration agreement, reason for an extension, decision) shows ID and "
        "phone numbers masked to a caller without `pii:read`; shown in full, it is audited as a read "
        "of the case's personal data."
    ),
    responses=problem_responses(NotFound),
)
async def case_handoffs(
    dispute_id: uuid.UUID, principal: Reader, view: View, svc: Handoffs
) -> list[HandoffOut]:
    rows = await svc.of_case(dispute_id, principal)
    return [handoff_out(h, n, t, svc, view=view) for h, n, t in rows]


@router.get(
    "/disputes/{dispute_id}/competent-courts",
    response_model=list[CompetentCourt],
    summary="有管辖权的法院 Courts competent to confirm the agreement, by basis",
    description=(
        "民事诉讼法 Art. 205: the inviting court for court-invited mediation; otherwise the basic court "
        "where a party lives, where the subject matter is, or where the mediation body is."
    ),
    responses=problem_responses(NotFound),
)
async def competent_courts(dispute_id: uuid.UUID, principal: Reader, svc: Handoffs) -> list[CompetentCourt]:
    dispute = await svc.disputes.get(dispute_id, principal)
    courts = await svc.ledger.competent_courts(dispute)
    return [
        CompetentCourt(basis=basis, court_id=court.id, name=court.name)
        for basis, found in courts.items()
        for court in found
    ]
