"""HTTP API for disputes under /v1."""

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Conflict,
    DuplicateExternalReference,
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
    after_response,
    etag_for,
    not_modified,
    not_modified_response,
    sends,
)
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text
from mediation.core.principal import Permission, Principal
from mediation.core.ratelimit import caller_network
from mediation.core.schemas import WriteModel
from mediation.disputes import lifecycle
from mediation.disputes.attention import Attention
from mediation.disputes.enums import DECLINE_ADVICE_MEANINGS, DECLINE_ADVICE_NAMES, Category, Channel
from mediation.disputes.identity import REGION_CODE_PATTERN, normalise_region_code
from mediation.disputes.lifecycle import STATUS_LABELS, Action, Status
from mediation.disputes.lookup import (
    API_LOOKUP,
    REISSUE,
    WAITED,
    WRONG_CODE,
    HandoffView,
    Lookup,
    handoff_of,
    handoff_step,
)
from mediation.disputes.models import Dispute
from mediation.disputes.paperwork import decline_of
from mediation.disputes.schemas import (
    ACTION_PAYLOADS,
    CaseLinkIn,
    CaseLinkOut,
    CaseUnlinkIn,
    CaseUnlinkOut,
    ConsentIn,
    DisputeCorrectionIn,
    DisputeCreate,
    DisputeCreated,
    DisputeOut,
    DisputePage,
    IsoDateTime,
    LinkKind,
    MediatorChoiceIn,
    PartySearchIn,
    QueryCodeReissued,
    QueryCodeReissueIn,
    RelatedCaseOut,
    StatusLookupHandoff,
    StatusLookupIn,
    StatusLookupOut,
    TimelineEntryOut,
    UnlinkedCase,
)
from mediation.disputes.service import DisputeService, ListFilters, RelatedCase
from mediation.disputes.views import Viewer
from mediation.documents.service import DocumentService
from mediation.documents.storage import LocalBlobStore
from mediation.handoffs.answers import KIND_LABELS
from mediation.identity.auth import authenticate, client_address, identity_of, permission, require

MAX_PAGE_SIZE = 100

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", description="The case's current ETag (required; 428 without it, 412 when stale)."
    ),
]
# A creating request (a sitting, an agreement's draft, a link) is made safe to retry by its
# Idempotency-Key, so it need not name the case's version; one that does is held to it.
OptionalIfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Optional: the case's ETag the request was made against; when given and stale, 412 and "
        "nothing is made (428 for `*`, which names no version).",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        # Printable characters, as str.isprintable() has them in the Latin-1 range a header carries.
        pattern=r"^[^\x00-\x1f\x7f-\xa0\xad]+$",
        description="Retry safety: a repeated key replays the first response; another body with it is 422.",
    ),
]


Reader = Annotated[Principal, permission(Permission.cases_read)]
Writer = Annotated[Principal, permission(Permission.cases_write)]
Supervisor = Annotated[Principal, permission(Permission.supervise)]


async def service(request: Request) -> DisputeService:
    settings = request.app.state.settings
    session = session_of(request)
    documents = DocumentService(session, LocalBlobStore(settings.documents_dir), settings)
    return DisputeService(session, request.app.state.clock, settings, identity_of(request).cipher, documents)


async def viewer(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Viewer:
    """How this caller sees cases; unmasked reads are listed on the request for the audit trail."""
    view = Viewer(principal, identity_of(request).cipher, request.app.state.clock.now())
    request.state.pii_reads = view.pii_reads
    return view


Service = Annotated[DisputeService, Depends(service)]
View = Annotated[Viewer, Depends(viewer)]


async def _page(
    svc: DisputeService,
    view: Viewer,
    filters: ListFilters,
    principal: Principal,
    limit: int,
    cursor: str | None,
) -> DisputePage:
    """One page of the cases the caller can see, as this caller sees them."""
    rows, next_cursor = await svc.search(filters, principal, limit, cursor)
    return DisputePage(items=[view.dispute(d) for d in rows], next_cursor=next_cursor)


def related_out(related: RelatedCase) -> RelatedCaseOut:
    other = related.dispute
    return RelatedCaseOut(
        id=other.id,
        case_number=other.case_number,
        status=other.status,
        status_label=STATUS_LABELS[Status(other.status)].get(),
        category=Category(other.category),
        channel=Channel(other.channel),
        created_at=other.created_at,
        matched_on=related.matched_on,
        linked=related.linked,
    )


def dispute_response(model: BaseModel, version: int, status_code: int = 200, **headers: str) -> Response:
    # Serialised by pydantic straight to JSON bytes (compact, UTF-8, like JSONResponse's), with no
    # dict built in between and no second walk by the json module.
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status_code,
        headers={"ETag": etag_for(version), **headers},
        media_type="application/json",
    )


# ---- intake and reads ---------------------------------------------------------------------------


@router.post(
    "/disputes",
    status_code=201,
    response_model=DisputeCreated,
    summary="登记纠纷 Register a dispute (intake)",
    responses=problem_responses(DuplicateExternalReference, IdempotencyKeyMismatch, IdempotencyInProgress)
    | sends(201, "ETag", "Location"),
    tags=["disputes"],
)
async def register_dispute(
    request: Request,
    data: DisputeCreate,
    principal: Writer,
    view: View,
    svc: Service,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if principal.role not in lifecycle.CENTER:
        raise Forbidden(Text("只有中心窗口可以登记纠纷", "Only the center registers disputes"))

    async def work() -> Response:
        earlier: list[RelatedCase] = []
        dispute, query_code = await svc.register(data, principal, related=earlier)
        related = [related_out(r) for r in earlier]
        body = DisputeCreated(
            **view.dispute(dispute).model_dump(), query_code=query_code, related_cases=related
        )
        return dispute_response(body, dispute.version, 201, Location=f"/v1/disputes/{dispute.id}")

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/disputes",
    response_model=DisputePage,
    summary="案件列表 List disputes",
    responses=problem_responses(),
    tags=["disputes"],
)
async def list_disputes(
    principal: Reader,
    view: View,
    svc: Service,
    status: Annotated[list[Status] | None, Query(description="One or more states.")] = None,
    category: Category | None = None,
    body_id: uuid.UUID | None = None,
    region: Annotated[
        str | None,
        Query(pattern=REGION_CODE_PATTERN, description="Region and everything inside it."),
        AfterValidator(normalise_region_code),
    ] = None,
    channel: Channel | None = None,
    attention: Annotated[
        Attention | None,
        Query(description="Cases flagged for a supervisor, e.g. triage_exhausted."),
    ] = None,
    clock_level: Annotated[
        Literal["normal", "at_risk", "overdue"] | None,
        Query(
            description="Cases whose most urgent running deadline is at this level (at_risk: yellow, overdue: red)."
        ),
    ] = None,
    created_from: IsoDateTime | None = None,
    created_to: IsoDateTime | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Text in description, case number or party names, or a case's whole "
            "`external_reference` (as written at intake). A caller without pii:read "
            "(who sees ID and phone numbers masked) searches the description only with text holding no digit.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DisputePage:
    filters = ListFilters(
        status=[s.value for s in status] if status else None,
        category=category,
        body_id=body_id,
        region=region,
        channel=channel,
        attention=attention,
        clock_level=clock_level,
        created_from=created_from,
        created_to=created_to,
        text=q,
    )
    return await _page(svc, view, filters, principal, limit, cursor)


@router.post(
    "/disputes/search-by-party",
    response_model=DisputePage,
    summary="按当事人证件或电话查找案件 Find cases by a party's ID or phone number",
    description=(
        "Matches the keyed hash index, never the stored ciphertext; the number travels in the body, "
        "not the URL, so it stays out of access logs. Needs pii:read; every search is audited."
    ),
    responses=problem_responses(Forbidden),
    tags=["disputes"],
)
async def search_by_party(
    data: PartySearchIn,
    principal: Annotated[Principal, permission(Permission.pii_read)],
    view: View,
    svc: Service,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DisputePage:
    require(principal, Permission.cases_read)
    kind, value = ("id_number", data.id_number) if data.id_number else ("phone", data.phone)
    assert value is not None  # the schema requires one of them
    filters = ListFilters(party_index=svc.party_index(kind, value))
    return await _page(svc, view, filters, principal, limit, cursor)


@router.get(
    "/bodies/{body_id}/cases",
    response_model=DisputePage,
    summary="调解组织收件箱 A body's cases",
    description=(
        "The cases assigned to a body, newest first, with status filters: the inbox a body's own "
        "system polls. A body sees only its own inbox (another body's answers 404); a center's "
        "staff see the cases of their region assigned to it."
    ),
    responses=problem_responses(NotFound),
    tags=["bodies"],
)
async def body_inbox(
    body_id: uuid.UUID,
    principal: Reader,
    view: View,
    svc: Service,
    status: Annotated[list[Status] | None, Query(description="One or more states.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DisputePage:
    if principal.role in lifecycle.BODY and principal.organisation_id != body_id:
        raise NotFound(Text("调解组织不存在", "No such body"))
    filters = ListFilters(body_id=body_id, status=[s.value for s in status] if status else None)
    return await _page(svc, view, filters, principal, limit, cursor)


@router.get(
    "/disputes/{dispute_id}/related",
    response_model=DisputePage,
    summary="同一当事人的其他案件 Other cases of the same parties",
    description="Cases the caller can see where a party has the same ID or phone number (repeat disputes), "
    "or with the same respondent organisation. Agents (代理人) act for parties and match nothing: a "
    "lawyer in two cases does not relate them.",
    responses=problem_responses(NotFound),
    tags=["disputes"],
)
async def related_disputes(
    dispute_id: uuid.UUID,
    principal: Reader,
    view: View,
    svc: Service,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DisputePage:
    await svc.get(dispute_id, principal)
    return await _page(svc, view, ListFilters(related_to=dispute_id), principal, limit, cursor)


@router.put(
    "/disputes/{dispute_id}/mediator",
    response_model=DisputeOut,
    summary="指定调解员 Name the case's mediator",
    description=(
        "The body handling the case names or changes its mediator. A mediator who declared a "
        "conflict with a party of the case (or with the case itself) is refused "
        "(特邀调解规定 Art. 16). Needs the case's ETag. A retry under the same Idempotency-Key answers "
        "what the first request answered (`Idempotent-Replayed: true`), not 412."
    ),
    responses=problem_responses(
        NotFound,
        InvalidTransition,
        GuardFailed,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
    tags=["disputes"],
)
async def choose_mediator(
    request: Request,
    dispute_id: uuid.UUID,
    data: MediatorChoiceIn,
    principal: Writer,
    view: View,
    svc: Service,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        dispute = await svc.choose_mediator(dispute_id, data, principal, if_match)
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/corrections",
    response_model=DisputeOut,
    summary="更正登记信息 Correct the case's registration",
    description=(
        "Corrects or completes what was registered (个人信息保护法 Art. 46): the facts, a party's name, "
        "document, phone, address or domicile, each checked as at intake, and adds parties found later. "
        "A field left out stays; a party's document type and number, phone, address or domicile given "
        "as null is cleared (a wrong detail whose right value is not known); a name or the facts given "
        "as null is refused (422 `null_not_allowed`); a document number is corrected, cleared or given "
        "for an added party, and a phone cleared, only by a caller who reads them in full (`pii:read`; else 403 "
        "`pii_read_required`, answered before the number given is compared with the one on record; a "
        "phone given by a caller who reads it masked is stored as given). Corrected facts are "
        "read for risk words as at intake: a word no risk alert of the case has named yet flags the case "
        "and raises (or joins) its risk alert, `details.source` `correction`, in the same transaction; "
        "a case still at the center then takes the tier for risk cases (`tier` in the event names the "
        "move). "
        "`reason` is required and lands on the timeline; the timeline entry, the `dispute.corrected` "
        "event and the audit record name the fields and parties changed or cleared, never the values. Refused once "
        "the case is closed, archived or declined (409 `case_closed`) or with a court or commission "
        "(409 `case_handed_off`); once an agreement is signed or in effect the names and document "
        "numbers of the parties it names stay (409 `party_on_agreement`) and no party is added (409 "
        "`parties_fixed`). The center corrects a case at the center, the body a case it holds, a "
        "supervisor any. A correction that changes nothing is 422 `nothing_to_correct`."
    ),
    responses=problem_responses(
        NotFound,
        InvalidTransition,
        Conflict,
        Forbidden,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
    tags=["disputes"],
)
async def correct_dispute(
    request: Request,
    dispute_id: uuid.UUID,
    data: DisputeCorrectionIn,
    principal: Writer,
    view: View,
    svc: Service,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        dispute, corrected = await svc.correct(dispute_id, data, principal, if_match)
        # The audit record names what changed, as the timeline does; the values stay out of it.
        request.state.audit_details = {"corrected": corrected}
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/links",
    status_code=201,
    response_model=CaseLinkOut,
    summary="关联案件 Link two cases",
    description=(
        "Links the case to another the caller can see: the same dispute arriving by window, hotline "
        "and grid report (same_dispute), or disputes that belong together (related). Both timelines "
        "record it and both cases' versions move on. Linking an already linked pair is 409. `If-Match` "
        "is not required (an Idempotency-Key makes a retry safe); when given, it is checked against this "
        "case's current ETag (412 when stale, before anything is linked)."
    ),
    responses=problem_responses(
        NotFound,
        Conflict,
        Forbidden,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    ),
    tags=["disputes"],
)
async def link_disputes(
    request: Request,
    dispute_id: uuid.UUID,
    data: CaseLinkIn,
    principal: Writer,
    view: View,
    svc: Service,
    if_match: OptionalIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> JSONResponse:
        link, other = await svc.link(dispute_id, data, principal, if_match)
        return JSONResponse(jsonable_encoder(view.link(link, other)), status_code=201)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/disputes/{dispute_id}/links",
    response_model=list[CaseLinkOut],
    summary="已关联的案件 Linked cases",
    responses=problem_responses(NotFound),
    tags=["disputes"],
)
async def list_links(dispute_id: uuid.UUID, principal: Reader, view: View, svc: Service) -> list[CaseLinkOut]:
    return [view.link(link, other) for link, other in await svc.links(dispute_id, principal)]


@router.post(
    "/disputes/{dispute_id}/links/{other_id}/removal",
    response_model=CaseUnlinkOut,
    summary="解除关联 Unlink two cases linked by mistake",
    description=(
        "Removes the link between the case and the case `other_id`, with the reason (not the same "
        "dispute after all, the wrong case picked), as a document is withdrawn or a sitting called "
        "off: a POST naming what it removes, the reason in its body. By the center's staff, who link "
        "cases (403 otherwise). The link itself is gone, so the two cases may be linked again later; "
        "both timelines keep it and now its removal (`unlink`, with the reason, the other case's "
        "number and the kind the link had), each case gets one `case_unlinked` event, and both "
        "versions move on by one. The answer gives both cases' new versions; its `ETag` is the "
        "path's case's. A pair not linked is 404 `link_not_found`, whatever `If-Match` says: a "
        "removal sent again after a lost answer learns the link is gone (an `Idempotency-Key` "
        "replays the first answer instead). A case is never linked to itself (422 `self_link` at "
        "`other_id`). `If-Match` is not required, as when linking; when given, it is checked against "
        "this case's current ETag (412 when stale, and nothing is removed)."
    ),
    responses=problem_responses(
        NotFound,
        Forbidden,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
    tags=["disputes"],
)
async def unlink_disputes(
    request: Request,
    dispute_id: uuid.UUID,
    other_id: uuid.UUID,
    data: CaseUnlinkIn,
    principal: Writer,
    svc: Service,
    if_match: OptionalIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        link, dispute, other = await svc.unlink(dispute_id, other_id, data, principal, if_match)
        body = CaseUnlinkOut(
            dispute=UnlinkedCase(id=dispute.id, case_number=dispute.case_number, version=dispute.version),
            other=UnlinkedCase(id=other.id, case_number=other.case_number, version=other.version),
            kind=LinkKind(link.kind),
            unlinked_at=dispute.updated_at,
        )
        return dispute_response(body, dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    # Only a UUID is a case id here, so GET /v1/disputes/search-by-party is a method that path does
    # not serve (405, Allow: POST), not a case id that fails validation.
    "/disputes/{dispute_id:uuid}",
    response_model=DisputeOut,
    summary="案件详情 Get one dispute",
    description=(
        "The case as this caller may read it, with its `ETag`, the case's version: the If-Match of "
        "every change to the case, and the validator of a conditional read. Every change to what "
        "this answer shows (the facts, parties, status, body and mediator, clock, agreement, handoff, "
        "outcome, owner, attention) moves the version on, as do the changes it does not show (the "
        "timeline, sittings, documents, links), the scheduler's corrections too, which write no timeline "
        "entry (README, Conditional reads). Sent as If-None-Match, a current ETag is answered 304 "
        "without a body (weak comparison, a list of tags or `*` taken; a malformed field is ignored), "
        "and records no `pii.read`: nothing is shown. What is shown depends on the credential (the "
        "numbers in full to a role holding `pii:read`; `Vary: Authorization, X-API-Key`): a copy is "
        "revalidated with the credential it was read with. `clock.remaining_seconds` is counted when "
        "the answer is made: a copy kept through 304s counts it from `clock.due_at`."
    ),
    responses=problem_responses(NotFound) | sends(200, "ETag") | not_modified_response(),
    tags=["disputes"],
)
async def get_dispute(
    request: Request, dispute_id: uuid.UUID, principal: Reader, view: View, svc: Service
) -> Response:
    dispute = await svc.get(dispute_id, principal)
    # The version validates the case as the credential reads it (Vary): what the answer shows
    # changes with it (DisputeService.record_work, record_correction and every action move it),
    # save the seconds left on its clock, counted at each answer from the due time it shows.
    if (unchanged := not_modified(request, etag_for(dispute.version), {"Vary": BY_CREDENTIAL})) is not None:
        return unchanged
    return dispute_response(view.dispute(dispute), dispute.version, Vary=BY_CREDENTIAL)


@router.get(
    "/disputes/{dispute_id}/timeline",
    response_model=list[TimelineEntryOut],
    summary="案件时间线 Timeline",
    responses=problem_responses(NotFound),
    tags=["disputes"],
)
async def get_timeline(
    dispute_id: uuid.UUID, principal: Reader, view: View, svc: Service
) -> list[TimelineEntryOut]:
    entries = await svc.timeline(dispute_id, principal)
    withheld = await svc.reasons_withheld(entries, principal)
    return [view.timeline_entry(e, withheld=e.seq in withheld) for e in entries]


class AvailableAction(BaseModel):
    action: str
    label: str
    to: str
    roles: list[str]
    allowed_for_caller: bool = Field(
        description="The caller's role may trigger it and no guard blocks it now."
    )
    blocked_by: list[dict[str, Any]] = Field(description="Guards that already refuse, whatever the payload.")
    requires: list[dict[str, Any]] = Field(
        description="The conditions the action checks on this case (`name`, `description`, `article`): "
        "those of another category of dispute (a labour dispute's arbitration first) are left out; "
        "`GET /v1/lifecycle` lists every transition's conditions."
    )
    when: dict[str, Any] | None = Field(
        default=None,
        description="For an action whose answer decides where the case goes (a court's `not_accept`): "
        "the answers this row is taken for (`name`, `description`, `article`); the action's row with "
        "`when` null takes the rest.",
    )
    href: str


@router.get(
    "/disputes/{dispute_id}/actions",
    response_model=list[AvailableAction],
    summary="当前可执行的操作 Actions available now",
    responses=problem_responses(NotFound) | sends(200, "ETag"),
    tags=["lifecycle"],
)
async def list_actions(dispute_id: uuid.UUID, principal: Reader, svc: Service) -> Response:
    dispute = await svc.get(dispute_id, principal)
    actions = [AvailableAction(**a) for a in await svc.available_actions(dispute, principal)]
    return JSONResponse(jsonable_encoder(actions), headers={"ETag": etag_for(dispute.version)})


@router.post(
    "/disputes/{dispute_id}/parties/{party_id}/consent",
    response_model=DisputeOut,
    summary="记录当事人是否同意调解 Record a party's consent or refusal",
    description=(
        "人民调解法 Art. 17: mediation does not proceed when a party clearly refuses. Once an agreement version "
        "has taken effect it binds the parties (Art. 29-31): a refusal is no longer recorded (409 "
        "`agreement_in_effect`); `agree` records the agreement. Needs the case's ETag. A retry under the "
        "same Idempotency-Key answers what the first request answered (`Idempotent-Replayed: true`), not "
        "412: a party's decision is recorded once, and the caller learns that it was."
    ),
    responses=problem_responses(
        NotFound,
        InvalidTransition,
        Conflict,
        Forbidden,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
    tags=["disputes"],
)
async def record_consent(
    request: Request,
    dispute_id: uuid.UUID,
    party_id: uuid.UUID,
    data: ConsentIn,
    principal: Writer,
    view: View,
    svc: Service,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        dispute = await svc.record_consent(dispute_id, party_id, data, principal, if_match)
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/disputes/{dispute_id}/query-code",
    name=REISSUE,
    response_model=QueryCodeReissued,
    summary="重新生成查询码 Give the party a new query code",
    description=(
        "For a party who lost the intake receipt with the query code, or whose code someone else may "
        "know (`cause` lost or disclosed; `note`: who asked and how the window checked it). A new code "
        "of the same kind as intake's replaces the old one, which stops working at once at "
        "/v1/status-lookup; the new code is answered in this response only (it is kept as its hash, "
        "as intake keeps it) and never shown again. The case's version moves on; one timeline entry "
        "(`reissue_query_code`, with the cause and the note), one `query_code_reissued` event (the "
        "cause) and the audit record say it was given, never the code. The center's window staff "
        "(clerks and supervisors, who register cases and hand out the first code) give it, for a case "
        "in any state: a declined, closed or archived case is still looked up. A body, a court, a "
        "commission and other roles are refused (403: the code is the center's to give, at its "
        "window); a case the caller does not see is 404. Needs the case's ETag (428 without it). "
        "No Idempotency-Key is honoured: a stored answer to replay would keep the code. A retry of a "
        "request that went through is refused as stale (412) and gives no code: give a new one "
        "against the current ETag instead."
    ),
    responses=problem_responses(NotFound, Forbidden, StaleVersion, PreconditionRequired) | sends(200, "ETag"),
    tags=["disputes"],
)
async def reissue_query_code(
    request: Request,
    dispute_id: uuid.UUID,
    principal: Writer,
    svc: Service,
    data: Annotated[QueryCodeReissueIn | None, Body()] = None,
    if_match: IfMatch = None,
) -> Response:
    given = data or QueryCodeReissueIn()
    dispute, code = await svc.reissue_query_code(dispute_id, given, principal, if_match)
    # The cause only: the code is in the response, nowhere else.
    request.state.audit_details = {"query_code_reissue": {"cause": given.cause.value}}
    body = QueryCodeReissued(
        dispute_id=dispute.id, case_number=dispute.case_number, query_code=code, version=dispute.version
    )
    return dispute_response(body, dispute.version)


@router.post(
    "/status-lookup",
    name=API_LOOKUP,
    response_model=StatusLookupOut,
    summary="当事人查询案件进度 Party status lookup",
    description=(
        "Case number and the query code from the intake receipt. Answers no personal data. Limited "
        "per client address (wrong answers only) and per case: after `lookup_max_failures` wrong "
        "codes within `lookup_failure_window_hours`, a further code for the case is examined only "
        "once a wait has passed since the last wrong one (1 s, doubling with each further wrong code, "
        "up to `lookup_max_wait_seconds`); one given before is refused unexamined, right or wrong, "
        "and lengthens no wait. The center is alerted (kind `query_code`), and the alert stays open "
        "until a new code is given, which, as a right code does, starts the count again. A number "
        "that names no case, a wrong code and a code refused during a wait answer alike (the same "
        "404, no Retry-After)."
    ),
    responses=problem_responses(NotFound),
    tags=["public"],
)
async def status_lookup(request: Request, data: StatusLookupIn, svc: Service) -> StatusLookupOut:
    # What was typed may be an ID or mobile number, not a case number: masked as the logs mask it
    # (audit records are kept for years and never altered; 个人信息保护法 Art. 6, 51).
    request.state.audit_details = {"case_number": redact_text(data.case_number)}
    found = await looked_up(request, svc, data)
    if found.dispute is None:
        raise NotFound(WRONG_CODE)
    dispute = found.dispute
    status = Status(dispute.status)
    today = svc.clock.today()
    handoff = await handoff_of(svc.session, dispute)
    return StatusLookupOut(
        case_number=dispute.case_number,
        status=status.value,
        status_label=STATUS_LABELS[status].get(),
        next_step=next_step(dispute, today, svc.settings.confirmation_window_days, handoff).get(),
        handoff=lookup_handoff_out(handoff),
        updated_at=dispute.updated_at,
    )


async def looked_up(request: Request, svc: DisputeService, data: StatusLookupIn) -> Lookup:
    """The lookup, for the API and the page alike. Anonymous: the limit per address (an IPv6 one by
    its /64) bounds what one guesser asks; a right code gives its turn back, so that a party checking
    often is not kept out. A refusal for a case that exists is recorded against it: a wrong code
    among the count that brings on the case's waits (`DisputeService.lookup_status`), a code refused
    unexamined during one under an action of its own (`WAITED`), which the count does not read.
    Either, once the waits have begun, asks the center for a new code, in a transaction of its own
    once the answer is sent: the refusals that ask and those that do not answer in the same time."""
    limiter, bucket = (
        identity_of(request).anonymous_limiter,
        f"lookup:{caller_network(client_address(request))}",
    )
    limiter.check(bucket)
    found = await svc.lookup_status(data.case_number, data.query_code)
    if found.dispute is not None:
        limiter.give_back(bucket)
        request.state.audit_object = ("dispute", found.dispute.id)
        return found
    if found.case_id is None:
        return found
    case_id, failures = found.case_id, found.failures
    request.state.audit_object = ("dispute", case_id)
    if found.waiting:
        route = getattr(request.scope.get("route"), "name", API_LOOKUP)
        request.state.audit_action = WAITED.get(route, WAITED[API_LOOKUP])
    if found.slowed:
        request.state.audit_details = {**request.state.audit_details, "lookup_slowed": True}
    if found.waiting or found.slowed:
        # Every refusal once the waits have begun asks, not only the wrong code that began them:
        # wrong codes given at the same moment each read the count before the others' refusals were
        # recorded, and may all pass it unseen. The alert is one per case while open (its key, taken
        # under the case's lock), so asking again changes nothing.
        app = request.app

        async def ask_for_new_code() -> None:
            await alert_guessed_lookup(app, case_id, failures)

        after_response(request).append(ask_for_new_code)
    return found


async def alert_guessed_lookup(app: Any, case_id: uuid.UUID, failures: int) -> None:
    """The alert that asks the center for a new query code (`AlertService.query_codes_guessed`)."""
    from mediation.alerts.service import AlertService  # it builds on the disputes service

    settings = app.state.settings
    async with app.state.db.writer() as session, session.begin():
        svc = DisputeService(session, app.state.clock, settings, app.state.identity.cipher)
        dispute = await session.get(Dispute, case_id, with_for_update=True)
        if dispute is not None:
            await AlertService(svc).query_codes_guessed(
                dispute, failures, settings.lookup_failure_window_hours
            )


def lookup_handoff_out(handoff: HandoffView | None) -> StatusLookupHandoff | None:
    if handoff is None:
        return None
    return StatusLookupHandoff(
        kind=handoff.kind,
        kind_label=KIND_LABELS[handoff.kind].get() if handoff.kind in KIND_LABELS else handoff.kind,
        target_name=handoff.target_name,
        status=handoff.status,
        target_case_number=handoff.target_case_number,
        due_on=handoff.due_on,
        provisional=handoff.provisional,
        ruling_number=handoff.ruling_number,
        ruled_on=handoff.ruled_on,
        enforcement_deadline=handoff.enforcement_deadline,
    )


def next_step(
    dispute: Dispute,
    today: date,
    confirmation_window_days: int,
    handoff: HandoffView | None = None,
    say_day: Callable[[date], str] = date.isoformat,
) -> Text:
    """What a party looking up the case is told to do next. An agreement in force may be taken to
    the court for confirmation only within the period after it took effect (民事诉讼法 Art. 205,
    its last day carried past holidays by Art. 85, as `request_confirmation` judges it): the party
    is told that last day, and once it has passed, what is left instead (人民调解法 Art. 32). A case
    with a court or commission (`handoff`): where, by when it decides, and what follows
    (`lookup.handoff_step`). `say_day`: how the day is written, ISO on a screen, `cn_date` on a
    printed receipt."""
    if handoff is not None and (told := handoff_step(dispute, handoff, today)) is not None:
        return told
    status = Status(dispute.status)
    end = lifecycle.confirmation_period(dispute, confirmation_window_days)
    if status == Status.agreement_signed and end is not None:
        # A last day in a year whose holidays are not published yet is counted on weekends and the
        # statutory holidays only:
        # the party is told it may move later, and, once past, that it may not have ended yet.
        day, year = say_day(end.last_day), end.last_day.year
        if today > end.last_day:
            if lifecycle.confirmation_uncertain(dispute, confirmation_window_days, today) is None:
                return CONFIRMATION_PERIOD_OVER  # ended, whatever holidays the schedule brings
            return CONFIRMATION_PERIOD_UNCERTAIN.format(d=day, y=year)
        if not end.calendar_known:
            return CONFIRMATION_OPEN_UNTIL_PROVISIONAL.format(d=day, y=year)
        return CONFIRMATION_OPEN_UNTIL.format(d=day)
    if status == Status.declined:
        # The route the party was told to take instead, in words; never the reason, which is text
        # a clerk typed about the parties and has no place on an anonymous lookup.
        _, advice = decline_of(dispute.outcome)
        if advice is not None:
            name, meaning = DECLINE_ADVICE_NAMES[advice], DECLINE_ADVICE_MEANINGS[advice]
            return Text(
                f"不予受理; 请按告知的途径办理: {name.zh}。{meaning.zh}",
                f"Declined; use the channel you were told of: {name.en}. {meaning.en}",
            )
    return NEXT_STEP[status]


CONFIRMATION_OPEN_UNTIL = Text(
    "协议已生效, 双方可共同申请司法确认, 最后一天为 {d}",
    "Agreement in force; you may jointly apply for judicial confirmation, by {d} at the latest",
)
CONFIRMATION_OPEN_UNTIL_PROVISIONAL = Text(
    "协议已生效, 双方可共同申请司法确认, 最后一天暂计为 {d} ({y} 年节假日安排公布后, 如遇节假日将顺延)",
    "Agreement in force; you may jointly apply for judicial confirmation, by {d} as counted now "
    "(a {y} public holiday, once published, may move it later)",
)
CONFIRMATION_PERIOD_UNCERTAIN = Text(
    "协议已生效; 申请司法确认的期限按周末及法定节假日推算已于 {d} 届满, 但 {y} 年节假日安排尚未公布, 期限可能顺延: "
    "请尽快与调解组织联系, 由法院审查是否在期限内",
    "Agreement in force; counted on weekends and the statutory holidays only, the period to apply for confirmation ended on "
    "{d}, but the {y} public holidays are not published yet and may extend it: contact the mediation "
    "body at once; the court judges whether a request is in time",
)
CONFIRMATION_PERIOD_OVER = Text(
    "协议已生效; 申请司法确认的期限已过, 一方不履行的可向人民法院起诉",
    "Agreement in force; the period to apply for confirmation has passed. If it is not performed, "
    "you may go to court",
)


NEXT_STEP: dict[Status, Text] = {
    Status.registered: Text("中心正在审查是否受理", "The center is deciding whether to accept"),
    Status.declined: Text("不予受理, 请按告知的途径办理", "Declined; use the channel you were told of"),
    Status.accepted: Text("中心正在选择调解组织", "The center is choosing a mediation body"),
    Status.assigned: Text("等待调解组织签收", "Waiting for the mediation body to sign for it"),
    Status.mediating: Text("调解组织将联系您安排调解", "The mediation body will contact you"),
    Status.agreement_signed: Text(
        "协议已生效, 可在三十日内共同申请司法确认",
        "Agreement in force; you may jointly apply for confirmation within 30 days",
    ),
    Status.performed: Text("协议已履行, 等待结案", "Agreement performed; closing soon"),
    Status.confirmation_pending: Text("等待法院审查", "The court is reviewing the application"),
    Status.confirmed: Text("法院已裁定协议有效, 可申请强制执行", "Confirmed by the court; enforceable"),
    Status.confirmation_rejected: Text("可重新调解或向法院起诉", "You may re-mediate or go to court"),
    Status.mediation_failed: Text(
        "可申请仲裁、行政处理或向法院起诉", "You may go to arbitration, an administrative body or court"
    ),
    Status.withdrawn: Text("申请已撤回", "The application was withdrawn"),
    Status.referred_arbitration: Text("已移送仲裁委员会", "Sent to the arbitration commission"),
    Status.referred_litigation: Text("已移送人民法院", "Sent to the court"),
    Status.closed: Text("已结案, 可能有回访", "Closed; you may get a follow-up call"),
    Status.archived: Text("已归档", "Archived"),
}


# ---- lifecycle actions: one route per action, each with its own payload schema -------------------


def _describe_action(action: Action) -> str:
    lines = []
    for t in lifecycle.TRANSITIONS:
        if t.action != action:
            continue
        lines.append(
            f"**{t.label.zh} / {t.label.en}**: {', '.join(s.value for s in t.sources)} → {t.target.value}. "
            f"Roles: {', '.join(sorted(r.value for r in t.roles))}."
        )
        if t.when is not None:
            lines.append(f"- 仅限 / only: {t.when.description.zh} ({t.when.article})")
        lines += [f"- {g.description.zh} ({g.article or 'center rule'})" for g in t.guards]
        if t.notes:
            lines.append(f"- {t.notes.zh}")
    return "\n".join(lines)


def _action_endpoint(action: Action, schema: type[WriteModel]) -> Any:
    optional = all(not f.is_required() for f in schema.model_fields.values())

    if optional:

        async def endpoint(
            request: Request,
            dispute_id: uuid.UUID,
            principal: Writer,
            view: View,
            svc: Service,
            payload: Annotated[schema | None, Body()] = None,  # type: ignore[valid-type]
            if_match: IfMatch = None,
            idempotency_key: IdempotencyKey = None,
        ) -> Response:
            return await _run_action(
                request,
                svc,
                view,
                dispute_id,
                action,
                payload or schema(),
                principal,
                if_match,
                idempotency_key,
            )

    else:

        async def endpoint(  # type: ignore[misc]
            request: Request,
            dispute_id: uuid.UUID,
            principal: Writer,
            view: View,
            svc: Service,
            payload: Annotated[schema, Body()],  # type: ignore[valid-type]
            if_match: IfMatch = None,
            idempotency_key: IdempotencyKey = None,
        ) -> Response:
            return await _run_action(
                request, svc, view, dispute_id, action, payload, principal, if_match, idempotency_key
            )

    endpoint.__name__ = f"dispute_action_{action.value}"
    return endpoint


async def _run_action(
    request: Request,
    svc: DisputeService,
    view: Viewer,
    dispute_id: uuid.UUID,
    action: Action,
    payload: BaseModel,
    principal: Principal,
    if_match: str | None,
    idempotency_key: str | None,
) -> Response:
    async def work() -> Response:
        dispute = await svc.act(dispute_id, action, payload, principal, if_match)
        if svc.unchanged:
            # Found made already, as sent: nothing written, no change to audit.
            request.state.changed_nothing = True
        return dispute_response(view.dispute(dispute), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


# What an action's route says beyond its transitions.
ACTION_NOTES = {
    Action.withdraw_confirmation: (
        "\n\nSent again as recorded (a retry whose answer was lost: the same reason and party as the "
        "parties' request waiting for the court's ruling, or the same withdrawal as the one that ended "
        "the request), it answers 200 with the case as it stands, whatever ETag it names, and writes "
        "nothing, as `POST /v1/handoffs/{id}/withdrawal` does; another request while one waits is 409 "
        "`withdrawal_already_requested`, with the day of the one waiting and the handoff's answer "
        "recorded, whatever ETag it names."
    ),
}
for _action in Action:
    _schema = ACTION_PAYLOADS[_action.value]
    _labels = list(dict.fromkeys(t.label for t in lifecycle.TRANSITIONS if t.action == _action))
    _label = Text(" / ".join(label.zh for label in _labels), " / ".join(label.en for label in _labels))
    router.add_api_route(
        f"/disputes/{{dispute_id}}/actions/{_action.value}",
        _action_endpoint(_action, _schema),
        methods=["POST"],
        response_model=DisputeOut,
        summary=f"{_label.zh} {_label.en}",
        description=_describe_action(_action) + ACTION_NOTES.get(_action, ""),
        operation_id=f"dispute_action_{_action.value}",
        responses=problem_responses(
            NotFound,
            InvalidTransition,
            GuardFailed,
            Forbidden,
            StaleVersion,
            PreconditionRequired,
            IdempotencyKeyMismatch,
            IdempotencyInProgress,
            # The parties' withdrawal request already waiting (HandoffService.withdrawal_sent_again).
            *([Conflict] if _action == Action.withdraw_confirmation else []),
        )
        | sends(200, "ETag"),
        tags=["lifecycle"],
    )


@router.get(
    "/lifecycle",
    summary="生命周期状态机 The lifecycle as data",
    tags=["lifecycle"],
    responses=problem_responses(),
)
async def get_lifecycle() -> dict[str, Any]:
    return {**lifecycle.describe(), "mermaid": lifecycle.mermaid()}
