"""The work queue and the case page, with the lifecycle actions and the agreement.

Everything a page shows or does goes through the services the API uses: the list is
`DisputeService.search`, the buttons are `DisputeService.available_actions` (only those the caller
may take now), each action form is the action's payload schema and is applied by
`DisputeService.apply` with the case's version as If-Match. No rule lives here.
"""

from __future__ import annotations

import functools
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import select

from mediation.agreements.models import MediationSession
from mediation.agreements.render import agreement_page
from mediation.agreements.router import agreement_out, session_out
from mediation.agreements.schemas import (
    ENDING_OUTCOMES,
    MEDIATOR_SIGNING_METHODS,
    PARTY_SIGNING_METHODS,
    SIGNING_METHODS,
    AgreementDraftIn,
    AgreementIn,
    Attendee,
    ObligationIn,
    SessionCancelIn,
    SessionIn,
    SessionRecordIn,
    SessionRescheduleIn,
    SignatureIn,
)
from mediation.agreements.service import AgreementService
from mediation.alerts.router import alert_out
from mediation.alerts.schemas import AcknowledgeIn, ResolveIn, RiskFlagIn
from mediation.alerts.service import AlertService
from mediation.bodies.models import MEDIATING_KINDS, Body, BodyKind
from mediation.clocks.actions import ClockActions, keeps
from mediation.clocks.router import clock_out
from mediation.clocks.rules import UNIT_NAMES, ClockName, Unit
from mediation.clocks.schemas import ClockExtensionIn
from mediation.core.db import session_of
from mediation.core.errors import NotFound, ProblemError, StaleVersion, ValidationFailed
from mediation.core.http import etag_for
from mediation.core.i18n import Text, cn_date, current_language
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Permission, Principal
from mediation.core.schemas import DomainValueError, WriteModel
from mediation.disputes import lifecycle
from mediation.disputes.attention import FINISHED, Attention
from mediation.disputes.enums import (
    DECLINE_ADVICE_MEANINGS,
    DECLINE_ADVICE_NAMES,
    AgreementForm,
    Category,
    Channel,
    IdType,
    PartyRole,
)
from mediation.disputes.identity import normalise_id_number, normalise_phone
from mediation.disputes.lifecycle import Action, Status
from mediation.disputes.lookup import REISSUE
from mediation.disputes.models import TimelineEntry
from mediation.disputes.paperwork import (
    DECLINE_NOTICE_TITLE,
    DECLINED_LIMITATION,
    decline_notice_lines,
    decline_of,
)
from mediation.disputes.router import next_step, service
from mediation.disputes.schemas import (
    ACTION_PAYLOADS,
    CLEARABLE_PARTY_FIELDS,
    CaseLinkIn,
    CaseUnlinkIn,
    ConsentIn,
    DisputeCorrectionIn,
    MediatorChoiceIn,
    PartyCorrectionIn,
    PartyIn,
    QueryCodeReissueIn,
)
from mediation.disputes.service import DisputeService, ListFilters
from mediation.disputes.views import Viewer
from mediation.handoffs.ledger import materials_overdue, open_materials_request, overdue_step, warning_text
from mediation.handoffs.schemas import MaterialsSuppliedIn
from mediation.handoffs.service import HandoffService
from mediation.identity.auth import identity_of, require
from mediation.supervision.router import order_out
from mediation.supervision.schemas import OrderIn, OrderResponseIn, OwnerIn
from mediation.supervision.service import SupervisionService
from mediation.triage.router import triage_out
from mediation.web import documents as case_documents
from mediation.web.forms import (
    FormField,
    Option,
    describe,
    errors_of,
    form_data,
    local_times,
    name_fields,
    read_form,
    run_once,
    with_stray_on_top,
)
from mediation.web.intake import center_for, issuer, place_name, staff_name
from mediation.web.labels import ENUM_LABELS, FIELD_LABELS, enum_label
from mediation.web.rendering import WebRoute, render, secure_page, see_other, templates
from mediation.web.session import check_csrf, staff

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# The case page's form answering a court's request for more materials.
MATERIALS_FORM = "supply_materials"

Staff = Annotated[Principal, Depends(staff)]
Service = Annotated[DisputeService, Depends(service)]
PAGE_SIZE = 20
SEARCH_MAX = 100
E = TypeVar("E", bound=StrEnum)
QUEUE_BADGE_CAP = 99


def viewer_for(request: Request, principal: Principal, *, reveal: bool = True) -> Viewer:
    """The case as this caller reads it; `reveal` False shows it masked even to a caller holding
    `pii:read` (the case page until asked for the numbers), and then no disclosure is recorded."""
    view = Viewer(principal, identity_of(request).cipher, request.app.state.clock.now(), reveal=reveal)
    request.state.pii_reads = view.pii_reads
    return view


# The case page shows the parties' numbers masked until a member of staff who may read them asks
# for them (个人信息保护法 Art. 6, minimum necessary; Art. 51): `?show=numbers`, each such view
# audited as a disclosure. A form sent from a page showing them says so in a hidden `show`, so that a
# refusal brings the page back as it was sent.
SHOW_NUMBERS = "numbers"
# The 发出督办 form's body, named only on a case no body holds (`_order_form`).
ORDER_BODY = frozenset({"body_id"})
# 解除关联: one form per linked case, named by the other case's id (`failed_action`).
UNLINK_FORM = "unlink:"
UNLINK_FIELDS = [replace(f, label="解除理由") if f.name == "reason" else f for f in describe(CaseUnlinkIn)]


def shows_numbers(form: Any) -> bool:
    """Whether a form came from a case page showing the full numbers (its hidden `show`)."""
    return bool(form.get("show") == SHOW_NUMBERS)


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound(Text("案件不存在", "No such case")) from exc


# ---- the work queue -------------------------------------------------------------------------------

# Each tab is a saved search over ListFilters; which cases each caller sees is the service's scope.
CENTER_TABS = [
    ("today", "今日登记"),
    ("registered", "待受理"),
    ("accepted", "待分流"),
    ("assigned", "待签收"),
    ("at_risk", "临期"),
    ("overdue", "超期"),
    ("attention", "需关注"),
    ("all", "全部"),
]
BODY_TABS = [
    ("assigned", "待签收"),
    ("mediating", "调解中"),
    ("agreement_signed", "已达成协议"),
    ("at_risk", "临期"),
    ("overdue", "超期"),
    ("all", "全部"),
]


def tabs_for(principal: Principal) -> list[tuple[str, str]]:
    return CENTER_TABS if principal.role in lifecycle.CENTER else BODY_TABS


def filters_for(tab: str, request: Request) -> ListFilters:
    filters = ListFilters()
    if tab == "today":
        clock = request.app.state.clock
        start = datetime.combine(clock.today(), time.min, tzinfo=clock.zone)
        filters.created_from = start
        filters.created_to = start + timedelta(days=1)
    elif tab in ("at_risk", "overdue"):
        filters.clock_level = tab
    elif tab == "attention":
        filters.attention = None
    elif tab in {s.value for s in Status}:
        filters.status = [tab]
    return filters


@router.get("/queue", response_class=HTMLResponse)
async def queue(
    request: Request,
    principal: Staff,
    svc: Service,
    tab: str | None = None,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    scope: str | None = None,
) -> HTMLResponse:
    """The filter form sends its "全部" choices as empty values, and the pager carries them on: an
    empty or unknown choice is no filter. The search text is cut to what a search may hold.

    Text typed in the search box is looked for among all the caller's cases (the form sends
    `scope=all`): a resident back at the window registered on another day, and the landing tab is
    today's. A tab picked after the search (its link carries the text, not the scope) narrows it."""
    tabs = tabs_for(principal)
    known = {key for key, _ in tabs}
    tab = tab if tab in known else tabs[0][0]
    if scope == "all" and q and q.strip():
        tab = "all"
    status, category, channel = (
        _choice(Status, status),
        _choice(Category, category),
        _choice(Channel, channel),
    )
    q = q[:SEARCH_MAX] if q else None
    cursor = cursor if cursor and len(cursor) <= 500 else None
    statuses = {s.value for s in Status}
    if status is not None and tab in statuses and tab != status.value:
        # A status tab is a status filter: one chosen explicitly wins, and the tab highlighted
        # is the one that lists what is shown.
        tab = status.value if status.value in known else "all"
    filters = filters_for(tab, request)
    if status is not None:
        filters.status = [status.value]
    filters.category = category.value if category else None
    filters.channel = channel.value if channel else None
    filters.text = q.strip() if q and q.strip() else None
    number = party_number(filters.text) if filters.text else None
    if number is not None and principal.can(Permission.pii_read):
        # A party's ID or phone number is found by its keyed index, never the stored ciphertext, as
        # the API's search by party does; audited as that search is (个人信息保护法 Art. 51).
        filters.text, filters.party_index = None, svc.party_index(*number)
        request.state.audit_reads = [("search_by_party", None, None)]
        request.state.audit_details = {"via": "queue", "fields": [number[0]]}
    # The queue lists names, never a number: read masked, it discloses nothing and records nothing.
    view = viewer_for(request, principal, reveal=False)
    if tab == "attention":
        rows, next_cursor = await _attention(svc, principal, filters, cursor)
    else:
        rows, next_cursor = await svc.search(filters, principal, PAGE_SIZE, cursor or None)
    # The tabs' badges count each tab's cases, whatever is searched; a search says how many it found.
    matches = None
    if filters.text or filters.party_index:
        if tab == "attention":
            matches = str(len(rows))
        else:
            found = await svc.count(filters, principal, QUEUE_BADGE_CAP + 1)
            matches = f"{QUEUE_BADGE_CAP}+" if found > QUEUE_BADGE_CAP else str(found)
    counts = {}
    for key, _ in tabs:
        if key in ("all", "attention"):
            continue
        found = await svc.count(filters_for(key, request), principal, QUEUE_BADGE_CAP + 1)
        counts[key] = f"{QUEUE_BADGE_CAP}+" if found > QUEUE_BADGE_CAP else str(found)
    # A tab keeps the search and the filters; a status tab sets the status itself.
    kept = {"q": q or "", "category": filters.category or "", "channel": filters.channel or ""}
    links = {
        key: "/queue?"
        + urlencode({"tab": key, **kept, "status": "" if key in statuses or status is None else status.value})
        for key, _ in tabs
    }
    return render(
        request,
        "queue.html",
        {
            "tabs": tabs,
            "links": links,
            "tab": tab,
            "tab_name": dict(tabs)[tab],
            "counts": counts,
            "matches": matches,
            # The same search among all the caller's cases, offered when a tab narrowed it.
            "search_all": "/queue?"
            + urlencode({"tab": "all", **kept, "status": status.value if status else ""}),
            "cases": [view.dispute(d) for d in rows],
            "next_cursor": next_cursor,
            "first_page": cursor is not None,
            "query": {
                "status": status.value if status else "",
                "category": category.value if category else "",
                "channel": channel.value if channel else "",
                "q": q or "",
            },
            # A number typed by a caller who reads numbers masked is searched as text: say why
            # it finds nothing.
            "number_needs_pii": number is not None and not principal.can(Permission.pii_read),
        },
    )


# A case number (330681-2026-000056) is digits and hyphens too; it is searched as text.
_CASE_NUMBER = re.compile(r"^\d{6}-\d{4}-\d+$")
_MOBILE_OR_LANDLINE = re.compile(r"^(1[3-9]\d{9}|0\d{9,11})(-\d+)?$")


def party_number(text: str) -> tuple[str, str] | None:
    """("id_number" | "phone", normalised value) when the search text is a resident ID number or a
    phone number as a clerk types it (spaces, hyphens, +86); None for anything else."""
    if _CASE_NUMBER.match(text) or not re.fullmatch(r"[\d\sXx+()（）-]+", text):
        return None
    try:
        return "id_number", normalise_id_number(IdType.resident_id, text)
    except ValueError:
        pass
    try:
        phone = normalise_phone(text)
    except ValueError:
        return None
    return ("phone", phone) if _MOBILE_OR_LANDLINE.match(phone) else None


def _choice(kind: type[E], value: str | None) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


async def _attention(
    svc: DisputeService, principal: Principal, filters: ListFilters, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Cases a supervisor must look at: every attention reason the service flags."""
    out: list[Any] = []
    for reason in Attention:
        filters.attention = reason.value
        rows, _ = await svc.search(filters, principal, PAGE_SIZE, None)
        out += rows
    seen: dict[uuid.UUID, Any] = {d.id: d for d in out}
    ordered = sorted(seen.values(), key=lambda d: d.created_at, reverse=True)
    return ordered[:PAGE_SIZE], None


# ---- the case page --------------------------------------------------------------------------------


class CasePage:
    """Everything the case page shows, gathered from the services."""

    def __init__(
        self, request: Request, svc: DisputeService, principal: Principal, *, reveal: bool = False
    ) -> None:
        self.request = request
        self.svc = svc
        self.principal = principal
        self.session = svc.session
        # Masked unless the reader asked for the numbers (`SHOW_NUMBERS`).
        self.reveal = reveal

    async def context(
        self,
        dispute_id: uuid.UUID,
        *,
        failed_action: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        svc, principal = self.svc, self.principal
        dispute = await svc.get(dispute_id, principal)
        view = viewer_for(self.request, principal, reveal=self.reveal)
        # Whether this page shows the numbers masked: everything on it follows the parties' table.
        masked = not view.unmasked
        case = view.dispute(dispute)
        now = svc.clock.now()
        entries = await svc.timeline(dispute_id, principal)
        withheld = await svc.reasons_withheld(entries, principal)
        timeline = [view.timeline_entry(e, withheld=e.seq in withheld) for e in entries]
        can_link = principal.role in lifecycle.CENTER and principal.can(Permission.cases_write)
        case_clocks = await svc.clocks.of_case(dispute_id)
        clocks = [clock_out(c, now) for c in case_clocks]
        # The clocks this caller may extend now, with what is left of the rule's extension and
        # whether every party must agree (人民调解工作若干规定 Art. 33; 特邀调解规定 Art. 27).
        extensions = {
            c.name: {
                "left": left,
                "unit": UNIT_NAMES[Unit(c.unit)],
                "consent": svc.clocks.extension_needs_consent(c),
            }
            for c in case_clocks
            if (left := svc.clocks.extension_left(c)) > 0
            and keeps(dispute, ClockName(c.name), principal)
            and principal.can(Permission.cases_write)
        }
        available = await svc.available_actions(dispute, principal)
        allowed = [a for a in available if a["allowed_for_caller"]]
        # The caller's role could take these, but a guard refuses them now: shown as what is missing.
        pending = [a for a in available if principal.role.value in a["roles"] and not a["allowed_for_caller"]]
        agreements = AgreementService(svc)
        _, versions = await agreements.versions(dispute_id, principal)
        agreement_views = [agreement_out(a, dispute, masked) for a in versions]
        # A new version starts from the newest one, so the one missing item is added, not all of it
        # typed again; never from text masked for this reader, which would become the agreement.
        # Read masked, it starts from the newest only when masking hid nothing in it.
        newest = agreement_views[-1] if agreement_views else None
        if newest is not None and masked and newest != agreement_out(versions[-1], dispute, False):
            newest = None
        draft_defaults = _draft_from(newest) if newest is not None else {}
        rows = max(2, len(draft_defaults.get("obligations", [])))
        choices = await self._choices(dispute, [a["action"] for a in allowed], agreement_views)
        actions = []
        for a in allowed:
            schema = ACTION_PAYLOADS[a["action"]]
            actions.append(
                {
                    **a,
                    "fields": describe(schema, choices),
                    "key": secrets.token_urlsafe(18),
                }
            )
        triage = None
        # The recommendations stand beside the assign form, when the caller may assign.
        if any(a["action"] == Action.assign.value for a in allowed):
            rules = await svc.triage.rules()
            outcome = await svc.triage.evaluate(dispute, rules)
            triage = triage_out(dispute.id, dispute.version, outcome, rules.version, 5, current_language())
        alerts = [
            alert_out(a, principal, masked=masked)
            for a in await AlertService(svc).of_case(dispute_id, principal)
        ]
        orders, _ = await SupervisionService(svc).search(
            principal, dispute_id=dispute_id, status=None, cursor=None, limit=50
        )
        handoffs = await HandoffService(svc).of_case(dispute_id, principal)
        can_draft = agreements.may_work_on(dispute, principal)
        # A version in effect binds the parties (人民调解法 Art. 29, 31): no new one is drafted over
        # it, so the page offers no form the service would refuse; it says why instead. An oral one
        # may still be put in writing (Art. 28): it stays in effect, not the newest, while the
        # written draft waits for its signatures, and the form stays offered for that draft.
        effective = [v for v in versions if v.status == "effective"]
        in_force = effective[-1] if effective else None
        in_effect = in_force.number if in_force is not None and in_force.form != AgreementForm.oral else None
        oral_in_effect = (
            in_force.number if in_force is not None and in_force.form == AgreementForm.oral else None
        )
        if draft_defaults and oral_in_effect:
            # An oral agreement in effect is put in writing (Art. 28): the new version is written,
            # never another oral one, which could not replace it.
            draft_defaults["form"] = AgreementForm.written.value
        # 调解会: as the API lists them to this caller (free text masked without pii:read); the
        # forms that schedule and record them go to whom the service lets hold them, while it would.
        sittings = [session_out(s, masked) for s in await agreements.sessions(dispute_id, principal)]
        # 指定调解员: offered to the body holding the case while it mediates, the choices those the
        # service would take (its active mediators but for any who declared a conflict with the
        # case or a party, 特邀调解规定 Art. 16), the one already named left out.
        can_choose_mediator = svc.may_choose_mediator(dispute, principal)
        # 督办 on a case waiting at the center (no body yet) goes to a body the supervisor names:
        # offered those the service would take (SupervisionService.addressable_bodies), and none is
        # named for a case a body holds, whose order goes to that body.
        order_fields, order_addressable = await _order_form(SupervisionService(svc), dispute, principal)
        mediators = await svc.eligible_mediators(dispute) if can_choose_mediator else []
        return {
            "case": case,
            "decline": declined(case),
            "timeline": list(reversed(timeline)),
            "clocks": clocks,
            "actions": actions,
            "pending": pending,
            "triage": triage,
            "alerts": alerts,
            # As the API shows them: numbers in the instruction and the answer masked without pii:read.
            "orders": [order_out(o, n, view) for o, n in orders],
            # Whom each order is addressed to now: it follows the case from body to body.
            "order_bodies": await self._body_names({o.body_id for o, _ in orders if o.body_id}),
            "can_supervise": principal.can(Permission.supervise),
            "can_choose_mediator": can_choose_mediator,
            "mediator_fields": describe(
                MediatorChoiceIn,
                {
                    "mediator_id": [
                        Option(str(m.id), f"{m.name} {m.title or ''}".strip())
                        for m in mediators
                        if m.id != dispute.mediator_id
                    ]
                },
            ),
            # 包案领导: named, changed or cleared by a supervisor (the API's `supervise`), in any state
            # the case is in, as the API takes it.
            "owner_fields": OWNER_FIELDS,
            # 报告风险 (人民调解法 Art. 25), offered to whom the service lets flag the case now.
            "can_flag_risk": AlertService(svc).may_flag(dispute, principal),
            "can_record_consent": svc.may_record_consent(dispute, principal),
            "linked_cases": [(link, _brief(other)) for link, other in await svc.links(dispute_id, principal)],
            # The cases sharing a party (the same ID or phone number, the same respondent unit) the
            # center links as one dispute reported twice or as related ones.
            "related_cases": [
                (r, _brief(r.dispute))
                for r in (await svc.related(dispute, principal, 10) if can_link else [])
                if not r.linked
            ],
            "can_link": can_link,
            "unlink_fields": UNLINK_FIELDS,
            "clock_extensions": extensions,
            "extension_fields": describe(
                ClockExtensionIn,
                {
                    "consenting_party_ids": [
                        Option(str(p.id), f"{ENUM_LABELS['role'].get(p.role, p.role)} {p.name}")
                        for p in case.parties
                        if p.role in ("applicant", "respondent")
                    ]
                },
            ),
            "consent_fields": describe(ConsentIn),
            "risk_flag_fields": describe(RiskFlagIn),
            # 重新生成查询码, offered to the center's window, who gave the first one at registration.
            "can_reissue_query_code": svc.may_reissue_query_code(principal),
            "query_code_fields": describe(QueryCodeReissueIn),
            # A case whose follow-up ended is not supervised (attention.FINISHED).
            "finished_states": FINISHED,
            "order_fields": order_fields,
            "order_addressable": order_addressable,
            "response_fields": describe(OrderResponseIn),
            "handoffs": [
                (
                    h,
                    name,
                    [warning_text(w).zh for w in h.warnings],
                    overdue_step(h, svc.clock.today()),
                    _materials_asked(h, view, svc.clock.today()),
                )
                for h, _, name in handoffs
            ],
            # 补充材料: offered to the mediation side that may change the case while a court's request
            # waits, the choices the case's documents as this caller is shown them.
            "materials_fields": await _materials_fields(svc, dispute, principal, view)
            if any(open_materials_request(h) for h, _, _ in handoffs)
            else None,
            "agreements": agreement_views,
            "can_draft": can_draft,
            "in_effect": in_effect,
            "oral_in_effect": oral_in_effect,
            # Every row a form may come back with (a refused draft keeps its rows); the page shows
            # `obligation_rows`, or as many as the refused form had.
            "agreement_fields": agreement_fields(
                [Option(str(p.id), p.name) for p in case.parties], MAX_OBLIGATION_ROWS
            )
            if can_draft
            else [],
            "obligation_rows": rows,
            "draft_defaults": draft_defaults,
            # The newest version holds a number this page shows masked: not filled in from it.
            "draft_needs_numbers": newest is None and bool(agreement_views),
            # Each signer is offered exactly the methods the service takes from them: a party, those
            # of its kind (a unit seals, a natural person fingerprints); the mediator, those of the
            # agreement's form (a written one is signed, an oral one may be recorded).
            "signing_methods": SIGNING_METHODS,
            "party_signing_methods": PARTY_SIGNING_METHODS,
            "mediator_signing_methods": MEDIATOR_SIGNING_METHODS,
            "party_kinds": {str(p.id): p.kind for p in case.parties},
            "etag": etag_for(dispute.version),
            "failed_action": failed_action,
            "errors": errors or {},
            "values": values or {},
            "message": message,
            "new_key": secrets.token_urlsafe(18),
            "body_name": await self._body_name(dispute.body_id),
            # 特邀调解: the court that delegated the case, beside the channel it came by.
            "inviting_court_name": await self._body_name(dispute.inviting_court_id),
            "place": await place_name(self.request, dispute.region_code),
            # 更正登记信息 (个人信息保护法 Art. 46), offered to whom the service lets correct it now.
            "can_correct": (can_correct := svc.may_correct(dispute, principal)),
            "can_add_parties": can_correct and await svc.may_add_parties(dispute),
            # A party added by a caller who reads numbers masked brings no document number (the
            # service refuses it, 个人信息保护法 Art. 51): staff who read them complete it.
            "reads_masked": not principal.can(Permission.pii_read),
            # Shown masked to staff who may read the numbers: the page offers to show them; shown,
            # to mask them again, and every form on it says it came from a page showing them.
            "can_show_numbers": masked and principal.can(Permission.pii_read),
            "numbers_shown": not masked,
            "correction_fields": choosing_parties(correction_fields(len(case.parties)), case.parties),
            "correction_values": correction_prefill(case),
            "correction_shown": correction_shown(case),
            "corrected_party_fields": CORRECTED_PARTY_FIELDS,
            "party_names": {str(p.id): p.name for p in case.parties},
            "sittings": sittings,
            "can_hold_sittings": can_draft and principal.can(Permission.cases_write),
            "sitting_fields": describe(SessionIn),
            "sitting_cancel_fields": describe(SessionCancelIn),
            "sitting_reschedule_fields": sitting_reschedule_fields(),
            "sitting_record_fields": sitting_record_fields([Option(str(p.id), p.name) for p in case.parties]),
            "attendee_fields": [attendee_fields(len(case.parties) + i) for i in range(OTHER_ATTENDEE_ROWS)],
            "sitting_attendees": [
                {"party_id": str(p.id), "name": p.name, "capacity": enum_label("role", p.role)}
                for p in case.parties
            ],
            "ending_outcomes": [enum_label("outcome", o) for o in ENDING_OUTCOMES],
            # 案件材料: the documents as the API lists them to this caller, their forms (web/documents.py).
            **await case_documents.section(self.request, svc, principal, dispute, view),
        }

    async def _body_name(self, body_id: uuid.UUID | None) -> str | None:
        if body_id is None:
            return None
        body = await self.session.get(Body, body_id)
        return body.name if body else None

    async def _body_names(self, body_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not body_ids:
            return {}
        rows = await self.session.execute(select(Body.id, Body.name).where(Body.id.in_(body_ids)))
        return {body_id: name for body_id, name in rows.all()}

    async def _bodies(self, *kinds: BodyKind) -> list[Body]:
        rows = await self.session.scalars(
            select(Body).where(Body.kind.in_(kinds), Body.active.is_(True)).order_by(Body.tier, Body.name)
        )
        return list(rows.all())

    async def _choices(
        self, dispute: Any, actions: list[str], agreements: list[Any]
    ) -> dict[str, list[Option]]:
        """The options of the id fields in the forms of the actions on offer."""
        choices: dict[str, list[Option]] = {
            "party_id": [Option(str(p.id), p.name) for p in dispute.parties],
            "applicant_party_ids": [Option(str(p.id), p.name) for p in dispute.parties],
            "agreement_id": [
                Option(str(a.id), f"第{a.number}版 ({ENUM_LABELS['form'].get(a.form, a.form)})")
                for a in agreements
                if a.status == "effective"
            ],
        }
        if "assign" in actions:
            rules = await self.svc.triage.rules()
            outcome = await self.svc.triage.evaluate(dispute, rules)
            recommended = [
                Option(str(c.body.id), f"推荐{c.rank}: {c.body.name}") for c in outcome.candidates[:10]
            ]
            ids = {o.value for o in recommended}
            others = [
                Option(str(b.id), f"其他(须说明理由): {b.name}")
                for b in await self._bodies(*MEDIATING_KINDS)
                if str(b.id) not in ids
            ]
            choices["body_id"] = recommended + others
        if "sign_for" in actions and dispute.body_id is not None:
            # Those the sign-for would take: no one who declared a relation with the case.
            choices["mediator_id"] = [
                Option(str(m.id), f"{m.name} {m.title or ''}".strip())
                for m in await self.svc.eligible_mediators(dispute)
            ]
        if "request_confirmation" in actions:
            courts = await HandoffService(self.svc).ledger.competent_courts(dispute)
            seen: dict[str, Option] = {}
            for basis, found in courts.items():
                for court in found:
                    seen.setdefault(
                        str(court.id),
                        Option(str(court.id), f"{court.name} ({ENUM_LABELS['basis'].get(basis, basis)})"),
                    )
            choices["court_id"] = list(seen.values())
        elif "refer_litigation" in actions:
            choices["court_id"] = [Option(str(b.id), b.name) for b in await self._bodies(BodyKind.court)]
        if "refer_arbitration" in actions:
            commissions = await self._bodies(
                BodyKind.labour_arbitration_commission,
                BodyKind.commercial_arbitration_commission,
                BodyKind.rural_land_arbitration_commission,
            )
            choices["commission_id"] = [Option(str(b.id), b.name) for b in commissions]
        return choices


async def _order_form(
    supervision: SupervisionService, dispute: Any, principal: Principal
) -> tuple[list[FormField], bool]:
    """The 发出督办 form's fields, and whether any body may be addressed: on a case no body holds,
    a required choice of the bodies the service would address the order to."""
    if dispute.body_id is not None:
        return describe(OrderIn, skip=ORDER_BODY), True
    if not principal.can(Permission.supervise) or dispute.status in FINISHED:
        return [], False
    bodies = await supervision.addressable_bodies(dispute)
    fields = describe(OrderIn, {"body_id": [Option(str(b.id), b.name) for b in bodies]})
    for f in fields:
        if f.name == "body_id":
            f.required, f.label = True, "督办对象"
    # The body first: it is what the rest of the order is written to.
    fields.sort(key=lambda f: f.name != "body_id")
    return fields, bool(bodies)


def _materials_asked(handoff: Any, view: Viewer, today: date) -> dict[str, Any] | None:
    """The court's request for materials still waiting (民诉法解释 Art. 354, 356), its text read as
    the case's: ID and phone numbers masked unless shown."""
    asked = open_materials_request(handoff)
    if asked is None:
        return None
    return {
        "items": [view.text(handoff.dispute_id, item) for item in asked["items"]],
        "note": view.text(handoff.dispute_id, asked.get("note")),
        "due_on": asked["due_on"],
        "requested_on": asked["requested_on"],
        "article": asked["article"],
        "overdue": materials_overdue(handoff, today),
        "version": etag_for(handoff.version),
    }


async def _materials_fields(
    svc: DisputeService, dispute: Any, principal: Principal, view: Viewer
) -> list[FormField] | None:
    """The supply form's fields, to whom the service takes the materials from: the body holding the
    case or the center, with `cases:write`. A file's name is text typed about the case and is shown
    as the documents list shows it (numbers masked unless shown, a shown one recorded)."""
    if principal.role not in BODY_ROLES | CENTER_ROLES or not principal.can(Permission.cases_write):
        return None
    documents = await svc.documents.of_case(dispute, principal) if svc.documents else []
    kinds = ENUM_LABELS["document_kind"]
    options = [
        Option(str(d.id), f"{kinds.get(d.kind, d.kind)} · {view.text(dispute.id, d.original_name)}")
        for d in documents
        if d.status == "active"
    ]
    return describe(MaterialsSuppliedIn, {"document_ids": options})


def declined(case: Any) -> dict[str, Any] | None:
    """What the center told the party when it declined the case (不予受理): the reason, the route to
    take instead and what it means, as the decline recorded them (read as this caller reads the
    case). None for a case that was not declined."""
    if case.status != Status.declined.value:
        return None
    reason, advice = decline_of(case.outcome)
    return {
        "reason": reason,
        "route": DECLINE_ADVICE_NAMES[advice].zh if advice is not None else None,
        "meaning": DECLINE_ADVICE_MEANINGS[advice].zh if advice is not None else None,
        "limitation": DECLINED_LIMITATION.format(d=case.applied_on.isoformat()),
    }


@router.get("/cases/{dispute_id}", response_class=HTMLResponse)
async def case_page(
    request: Request,
    dispute_id: str,
    principal: Staff,
    svc: Service,
    done: Annotated[str | None, Query(max_length=40)] = None,
    show: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """The case page, the parties' numbers masked; `show=numbers`, in full to staff holding
    `pii:read`, and audited as a disclosure (个人信息保护法 Art. 51, 55)."""
    message = None
    if done:
        message = DONE_MESSAGES.get(done, "已保存")
    reveal = show == SHOW_NUMBERS
    context = await CasePage(request, svc, principal, reveal=reveal).context(
        parse_id(dispute_id), message=message
    )
    return render(request, "case.html", context)


DONE_MESSAGES = {
    **{
        t.action.value: f"已{t.label.zh}" if not t.label.zh.startswith("已") else t.label.zh
        for t in lifecycle.TRANSITIONS
    },
    "agreement_drafted": "已起草调解协议",
    "supervision_issued": "已发出督办",
    "supervision_responded": "已答复督办",
    "alert_acknowledge": "已签收预警",
    "alert_resolve": "已记录预警处置",
    "risk_flagged": "已报告风险, 督办人员已收到风险预警",
    "consent_recorded": "已记录当事人的调解意愿",
    "mediator_chosen": "已指定承办调解员",
    "owner_set": "已确定包案领导",
    "owner_cleared": "已取消包案",
    "clock_extended": "期限已延长",
    "materials_supplied": "已补充材料, 材料已送交法院",
    "linked": "已关联案件, 两案时间线均已记录",
    "unlinked": "已解除关联, 两案时间线均已记录",
    "signed": "已记录签署",
    "corrected": "已更正登记信息",
    "sitting_scheduled": "已安排调解会",
    "sitting_recorded": "已记录调解情况",
    "sitting_recorded_ended": "已记录调解情况; 调解终止, 案件转为调解未成",
    "sitting_cancelled": "已取消调解会",
    "sitting_rescheduled": "调解会已改期",
    **case_documents.DONE_MESSAGES,
}


async def _form(request: Request) -> Any:
    return await read_form(request)


async def _refused(
    request: Request,
    svc: DisputeService,
    principal: Principal,
    dispute_id: uuid.UUID,
    failed: str,
    exc: ValidationError | ProblemError,
    values: dict[str, Any],
    form: Any = None,
) -> HTMLResponse:
    """The case page again, the refusal in plain Chinese next to the form that caused it (`form`:
    the correction form as sent, refilled on the case as it stands now)."""
    await session_of(request).rollback()
    errors = with_stray_on_top(errors_of(exc), _field_names(failed))
    if isinstance(exc, ProblemError):
        body = exc.body()
        reasons = [r.get("message") for r in exc.extensions.get("reasons", []) if isinstance(r, dict)]
        if not any(name != "_form" for name in errors):  # a field's refusal is shown at the field
            # A guard's detail is its reasons joined: the reasons are said, each once, or else the
            # detail (or the title) on its own.
            said = dict.fromkeys(str(r) for r in reasons if r) or [str(body.get("detail") or body["title"])]
            errors.setdefault("_form", name_fields("; ".join(said)))
        status = exc.http_status
    else:
        status = 422
    # What changed under the form: an alert's and an order's forms carry their own version, and
    # the draft form the agreement version it was drafted over, a signature form the version it signs.
    changed = (
        "预警"
        if failed.startswith("alert:")
        else "督办"
        if failed.startswith("answer:")
        else "调解协议"
        if failed == "draft_agreement" or failed.startswith("sign:")
        else "调解会"
        if failed.startswith(("record_sitting:", "cancel_sitting:", "reschedule_sitting:"))
        else "移交"
        if failed == MATERIALS_FORM
        else "案件"
    )
    if isinstance(exc, StaleVersion):
        errors["_form"] = f"{changed}已被他人更新, 本次提交未执行; 请核对最新情况后重新提交。"
    context = await CasePage(request, svc, principal, reveal=shows_numbers(await request.form())).context(
        dispute_id, failed_action=failed, errors=errors, values=values
    )
    if failed == "correct" and form is not None:
        refill_correction(context, form)
    offered = {a["action"] for a in context["actions"]}
    if isinstance(exc, StaleVersion):
        # Someone else changed the case since this page was opened: what it shows now is the case
        # as it stands, and the clerk must know that nothing was done.
        context["refusal"] = (
            f"该{changed}在您打开页面后已被他人更新, 您的操作未执行。页面已显示最新情况, 请核对后再操作。"
        )
    elif failed in ACTION_PAYLOADS and failed not in offered:
        context["refusal"] = f"操作未执行: {errors.get('_form', '')}"
    return render(request, "case.html", context, status)


def _field_names(form: str) -> set[str]:
    if form in ACTION_PAYLOADS:
        fields = describe(ACTION_PAYLOADS[form])
    elif form == "draft_agreement":
        fields = agreement_fields([], MAX_OBLIGATION_ROWS)
    elif form == "supervise":
        fields = describe(OrderIn)
    elif form.startswith("answer:"):
        fields = describe(OrderResponseIn)
    elif form == "correct":
        fields = correction_fields(MAX_CORRECTED_PARTIES)
    elif form == "schedule_sitting":
        fields = describe(SessionIn)
    elif form.startswith("record_sitting:"):
        fields = sitting_record_fields([]) + [f for i in range(MAX_ATTENDEE_ROWS) for f in attendee_fields(i)]
    elif form.startswith("cancel_sitting:"):
        fields = describe(SessionCancelIn)
    elif form.startswith("reschedule_sitting:"):
        fields = sitting_reschedule_fields()
    elif form == "flag_risk":
        fields = describe(RiskFlagIn)
    elif form == "link":
        # The inline form shows only the kind, chosen from a list: a refusal is said above it.
        fields = []
    elif form.startswith(UNLINK_FORM):
        fields = UNLINK_FIELDS
    elif form.startswith("extend:"):
        fields = describe(ClockExtensionIn)
    elif form == "record_consent":
        fields = describe(ConsentForm)
    elif form == "choose_mediator":
        fields = describe(MediatorChoiceIn)
    elif form == "set_owner":
        fields = OWNER_FIELDS
    elif form == MATERIALS_FORM:
        fields = describe(MaterialsSuppliedIn)
    elif form == "reissue_query_code":
        fields = describe(QueryCodeReissueIn)
    elif form.startswith("alert:") and form.endswith(":resolve"):
        fields = describe(ResolveIn)  # acknowledging shows no field: its refusal is said above it
    else:
        fields = []
    names = {f.name for f in fields} | {c.name for f in fields for c in f.children}
    return names | (
        {"terms"}
        if form == "draft_agreement"
        else {"attendees"}
        if form.startswith("record_sitting:")
        else set()
    )


@router.post("/cases/{dispute_id}/actions/{action}", response_class=HTMLResponse)
async def take_action(
    request: Request, dispute_id: str, action: str, principal: Staff, svc: Service
) -> Response:
    case_id = parse_id(dispute_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    try:
        chosen = Action(action)
    except ValueError as exc:
        raise NotFound(Text("没有这个操作", "No such action")) from exc
    schema = ACTION_PAYLOADS[chosen.value]
    values: dict[str, Any] = {}
    try:
        values = form_data(form, describe(schema))
        payload = schema.model_validate(values)
        version = _text(form.get("version"))
        await _once(request, principal, form, lambda: svc.act(case_id, chosen, payload, principal, version))
        if svc.unchanged:
            request.state.changed_nothing = True  # found made already, as sent: nothing written
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, chosen.value, exc, values)
    return see_other(f"/cases/{case_id}?done={chosen.value}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _once(
    request: Request, principal: Principal, form: Any, change: Callable[[], Awaitable[object]]
) -> None:
    """Make a page's change at most once per form: a double click or a browser's retry of the
    same form (its Idempotency-Key) replays instead of acting twice, once the first is done."""

    async def work() -> JSONResponse:
        await change()
        return JSONResponse({"done": True})

    await run_once(request, principal, _text(form.get("idempotency_key")), work)


# ---- corrections -----------------------------------------------------------------------------------

MAX_CORRECTED_PARTIES = 200
# A party's details the correction form shows, each compared with what the form showed when opened.
CORRECTED_PARTY_FIELDS = ("name", *CLEARABLE_PARTY_FIELDS)
# The case's own registered facts the form corrects, each compared likewise.
CORRECTED_CASE_FIELDS = ("description", "people_involved")
# The form carries what it showed, hidden, under this prefix: `shown.description` and
# `shown.<party id>.<field>`. Only what the clerk changed from it is corrected: a form opened before
# someone else's correction still shows the details before it, and sent back whole it would undo
# that correction without anyone having meant to.
SHOWN = "shown."
PARTY_ROW = re.compile(r"^parties\[(\d{1,4})\]\.([a-z_]+)$")


@functools.cache
def correction_fields(parties: int) -> list[FormField]:
    """The correction form: the reason, the facts, each party's details (its id hidden) and one
    party found later."""
    top = describe(DisputeCorrectionIn, skip=frozenset({"parties", "add_parties"}))
    fields = [replace(f, label="更正理由") if f.name == "reason" else f for f in top]
    for i in range(parties):
        fields += describe(PartyCorrectionIn, prefix=f"parties[{i}].")
    fields += describe(PartyIn, prefix="add_parties[0].")
    return [replace(f, required=False) if f.name.startswith("add_parties") else f for f in fields]


def choosing_parties(fields: list[FormField], parties: Sequence[Any]) -> list[FormField]:
    """The correction form's fields with whom an agent acts for chosen among the case's parties
    that are no agents, by their place in its list (`PartyCorrectionIn.represents`)."""
    options = [
        Option(str(place), f"{enum_label('role', p.role)} {p.name}")
        for place, p in enumerate(parties)
        if p.role != PartyRole.agent
    ]
    return [
        replace(f, widget="select", options=options) if f.name.endswith(".represents") else f for f in fields
    ]


def correction_prefill(case: Any) -> dict[str, Any]:
    """The form filled with the case as registered. A number this caller sees masked is left
    blank: left so it stays; typed in, it replaces the one on record."""
    parties = []
    for p in case.parties:
        row = {"party_id": str(p.id), "name": p.name, "id_type": p.id_type, "address": p.address}
        row["region_code"] = p.region_code
        row |= {
            "service_address": p.service_address,
            "legal_representative": p.legal_representative,
            "represents": p.represents,
        }
        if not p.masked:
            row |= {"id_number": p.id_number, "phone": p.phone}
        parties.append(row)
    return {
        "description": case.description,
        "people_involved": case.people_involved,
        "parties": parties,
        "add_parties": [{"kind": "person"}],
    }


def _same_text(value: Any) -> str:
    # A browser sends a textarea's line breaks as CRLF, whatever the page held.
    return "" if value is None else str(value).replace("\r\n", "\n").strip()


def correction_shown(case: Any) -> dict[str, str]:
    """What the correction form shows of the case, by `description` and `<party id>.<field>`: the
    prefill, a number masked for this caller empty (the form never holds more than it shows)."""
    prefill = correction_prefill(case)
    shown = {name: _same_text(prefill[name]) for name in CORRECTED_CASE_FIELDS}
    for row in prefill["parties"]:
        shown |= {f"{row['party_id']}.{name}": _same_text(row.get(name)) for name in CORRECTED_PARTY_FIELDS}
    return shown


def correction_sent(form: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The correction form as sent: its fields by `description` and `<party id>.<field>` (a field
    not sent is absent, one sent blank is ""), and what it says it showed (`shown.`), likewise."""
    raw = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    rows = {m.group(1): raw[k] for k in raw if (m := PARTY_ROW.match(k)) and m.group(2) == "party_id"}
    sent: dict[str, str] = {}
    sent |= {name: _same_text(raw[name]) for name in CORRECTED_CASE_FIELDS if name in raw}
    for key, value in raw.items():
        if (m := PARTY_ROW.match(key)) and m.group(2) in CORRECTED_PARTY_FIELDS and rows.get(m.group(1)):
            sent[f"{rows[m.group(1)].strip()}.{m.group(2)}"] = _same_text(value)
    shown = {k.removeprefix(SHOWN): _same_text(v) for k, v in raw.items() if k.startswith(SHOWN)}
    return sent, shown


def correction_edits(sent: dict[str, str], shown: dict[str, str]) -> dict[str, str]:
    """What the clerk changed: the fields sent that differ from what the form showed. A document
    number goes with its type (it is checked against it): either changed, both are the edit."""
    edits = {k: v for k, v in sent.items() if v != shown.get(k, "")}
    for key in list(edits):
        party, _, name = key.rpartition(".")
        if name in ("id_type", "id_number"):
            for other in (f"{party}.id_type", f"{party}.id_number"):
                if other in sent:
                    edits[other] = sent[other]
    return edits


def correction_payload(values: dict[str, Any], edits: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body: only the clerk's `edits` (`correction_edits`), a field emptied
    cleared (null; the name and the facts, which cannot be, are refused at their field); a field
    sent back as it was shown is left out, so a correction made since by someone else stands. The
    party rows keep the form's order (a refusal names a row by it), a row of nothing but its id
    corrects nothing, and the row for a new party counts only once it has a name. The form sent
    back as it was shown corrects nothing."""

    def filled(row: Any) -> dict[str, Any]:
        return {k: v for k, v in row.items() if v not in ("", None)} if isinstance(row, dict) else {}

    def corrected(row: Any) -> dict[str, Any]:
        party = str(row.get("party_id", "")) if isinstance(row, dict) else ""
        fields: dict[str, Any] = {"party_id": party} if party else {}
        for name in CORRECTED_PARTY_FIELDS:
            if f"{party}.{name}" in edits:
                fields[name] = edits[f"{party}.{name}"] or None
        return fields

    body: dict[str, Any] = {k: v for k, v in values.items() if k == "reason"}
    body |= {name: edits[name] or None for name in CORRECTED_CASE_FIELDS if name in edits}
    parties = [corrected(r) for r in values.get("parties") or []]
    if any(set(r) - {"party_id"} for r in parties):
        body["parties"] = parties
    added = [filled(r) for r in values.get("add_parties") or []]
    added = [r for r in added if r.get("name")]
    if added:
        body["add_parties"] = added
    return body


def _form_version(form: Any) -> int | None:
    text = _text(form.get("version"))
    digits = text.strip().strip('"') if text else ""
    return int(digits) if digits.isdigit() and len(digits) < 12 else None


def corrected_since(timeline: list[Any], version: int | None) -> set[str]:
    """The fields corrected after the case's `version` (a timeline entry's `seq` is the version it
    made), by `description` and `<party id>.<field>`: the entries name the fields, never the
    values, so this finds a number corrected under a mask too."""
    if version is None:
        return set()
    found: set[str] = set()
    for entry in timeline:
        if entry.seq <= version or entry.action != "correct":
            continue
        payload = entry.payload or {}
        found |= {name for name in CORRECTED_CASE_FIELDS if payload.get(name)}
        for change in payload.get("parties") or []:
            found |= {f"{change.get('party_id')}.{name}" for name in change.get("fields") or []}
    return found


def refill_correction(context: dict[str, Any], form: Any) -> None:
    """The correction form shown again after a refusal: the case as it stands now, with only the
    clerk's own edits on it, so that sending it again changes nothing the clerk did not change.
    A field someone else corrected since the page was opened is pointed out, and where the
    clerk changed it too, said plainly that sending it again replaces the other correction."""
    case = context["case"]
    current = correction_shown(case)
    sent, shown = correction_sent(form)
    # A form without what it showed (made by hand, or a page from before it carried it) is taken
    # as showing the case as it is now: the version it names held it to that.
    edits = correction_edits(sent, current | shown)
    others = {k for k in shown if k in current and shown[k] != current[k]}
    others |= corrected_since(context["timeline"], _form_version(form)) & set(current)
    # An edit that is what the case holds now already is no edit any more.
    edits = {k: v for k, v in edits.items() if not (k in others and v == current[k])}
    refill = correction_prefill(case)
    refill |= {name: edits[name] for name in CORRECTED_CASE_FIELDS if name in edits}
    for row in refill["parties"]:
        row |= {
            n: edits[f"{row['party_id']}.{n}"]
            for n in CORRECTED_PARTY_FIELDS
            if f"{row['party_id']}.{n}" in edits
        }
    values = context["values"]
    refill |= {k: values[k] for k in ("reason", "add_parties") if k in values}
    context["values"] = refill
    if not others:
        return
    errors = context["errors"]
    said: list[str] = []
    clashes: list[str] = []
    order = {k: n for n, k in enumerate(current)}
    for key in sorted(others, key=order.__getitem__):
        party_id, _, name = key.rpartition(".")
        if key in CORRECTED_CASE_FIELDS:
            at, what = key, "纠纷简要情况" if key == "description" else "涉及人数"
            masked = False
        else:
            i, p = next((i, p) for i, p in enumerate(case.parties) if str(p.id) == party_id)
            at, what = f"parties[{i}].{name}", f"{p.name}的{FIELD_LABELS.get(name, name)}"
            masked = p.masked and name in ("id_type", "id_number", "phone")
            if p.masked and name in ("id_type", "id_number"):
                at = "_form"  # not on this caller's form: said at its top only
        said.append(what)
        now = current[key]
        shown_now = (
            "最新内容见上方「基本情况」"
            if key == "description"
            else f"现为「{now}」人"
            if key == "people_involved"
            else "号码已隐藏"
            if masked
            else f"现为「{enum_label('id_type', now) if name == 'id_type' else now}」"
            if now
            else "现已清除"
        )
        if key in edits:
            clashes.append(what)
            mine = "清除此项" if not edits[key] else "您填写的内容"
            note = (
                f"在您打开页面后, 此项已被他人更正 ({shown_now}); 与{mine}不同。再次提交将以您的修改"
                "替换他人的更正; 如应保留他人的更正, 请改回后再提交。"
            )
        else:
            note = f"在您打开页面后, 此项已被他人更正 ({shown_now}); 表单已显示最新内容, 提交时保持不变。"
        if at != "_form":
            errors[at] = f"{errors[at]}; {note}" if at in errors else note
    summary = (
        f"在您打开页面后, 以下登记信息已被他人更正: {'、'.join(said)}。"
        "表单已按最新登记信息重新填写, 只保留了您本人修改的项目"
    )
    summary += (
        f"; 其中{'、'.join(clashes)}您也作了修改, 与他人的更正冲突, 再次提交将以您的修改为准, 请逐项核对。"
        if clashes
        else "; 他人更正的项目提交时保持不变。"
    )
    errors["_form"] = f"{errors['_form']} {summary}" if errors.get("_form") else summary


@router.post("/cases/{dispute_id}/corrections", response_class=HTMLResponse)
async def correct_case(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """更正登记信息: the page's form, corrected through the service the API uses."""
    case_id = parse_id(dispute_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        values = form_data(form, correction_fields(MAX_CORRECTED_PARTIES))
        values.pop(SHOWN.rstrip("."), None)  # what the form showed, read from the form itself
        require(principal, Permission.cases_write)
        version = _text(form.get("version"))
        sent, shown = correction_sent(form)

        async def change() -> None:
            # What the form says it showed decides what the clerk changed. A field it does not
            # say it showed is taken as the case shows it now, read in the correction's transaction
            # (once the form's key is claimed) and held to the form's version by it.
            # Read as the page the form came from read it: masked, no number is disclosed.
            case = viewer_for(request, principal, reveal=shows_numbers(form)).dispute(
                await svc.get(case_id, principal)
            )
            body = correction_payload(values, correction_edits(sent, correction_shown(case) | shown))
            if body.keys() <= {"reason"}:
                # The form sent back as it was shown, however old the page: said as the service
                # says a correction that changes nothing.
                raise ValidationFailed.of_field(
                    "reason",
                    "nothing_to_correct",
                    Text(
                        "未修改任何登记信息, 没有需要更正的内容",
                        "Nothing was changed: there is nothing to correct",
                    ),
                )
            correction = DisputeCorrectionIn.model_validate(body)
            await svc.correct(case_id, correction, principal, version)

        await _once(request, principal, form, change)
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, "correct", exc, values, form)
    return see_other(f"/cases/{case_id}?done=corrected#parties")


# ---- sittings (调解会) ---------------------------------------------------------------------------------

# Rows the record form offers for people other than the parties (an agent, a witness, the mediator).
OTHER_ATTENDEE_ROWS = 3
ATTENDEE_ROW = re.compile(r"^attendees\[(\d{1,4})\](.*)$")
# The most rows the record form shows: a row per party (a group case has up to 200), and the others.
MAX_ATTENDEE_ROWS = MAX_CORRECTED_PARTIES + OTHER_ATTENDEE_ROWS


def sitting_record_fields(parties: list[Option]) -> list[FormField]:
    """The record form but its attendees (a row each, below): the party who refused mediation or
    asked to end it is one of the case's."""
    fields = describe(SessionRecordIn, {"party_id": parties}, skip=frozenset({"attendees"}))
    labels = {"outcome": "调解结果", "party_id": "拒绝调解或要求终止调解的当事人"}
    return [replace(f, label=labels[f.name]) if f.name in labels else f for f in fields]


@functools.cache
def sitting_reschedule_fields() -> list[FormField]:
    """The move form (改期): the new time, place and whether online, as a new sitting's form has
    them, and the reason."""
    reason = [replace(f, label="改期原因") for f in describe(SessionCancelIn)]
    return describe(SessionIn) + reason


@functools.cache
def attendee_fields(row: int) -> list[FormField]:
    """Row `row` of the attendees typed in by hand: a name and in what capacity they came. A row
    left empty is no one; one filled in needs both."""
    fields = describe(Attendee, prefix=f"attendees[{row}].", skip=frozenset({"party_id"}))
    return [replace(f, required=False) for f in fields]


def sitting_record_payload(values: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The record form as the API's body, and the form's row of each attendee in it. A party's row
    counts when ticked as present; another row, once something is typed into it."""
    body = {k: v for k, v in values.items() if k != "attendees"}
    rows = values.get("attendees")
    attendees, positions = [], []
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        if not isinstance(row, dict):
            continue
        if "party_id" in row and not row.get("present"):
            continue
        person = {k: v for k, v in row.items() if k != "present"}
        if "party_id" in person or set(person) & {"name", "capacity"}:
            attendees.append(person)
            positions.append(i)
    body["attendees"] = attendees
    return body, positions


def _to_form_rows(exc: ValidationError, positions: list[int]) -> ValidationError | ValidationFailed:
    """A refusal of the body's attendees, named by the form's rows: the body holds only the rows
    of those who came, the form every row it showed."""
    found = errors_of(exc)
    moved: list[dict[str, str]] = []
    for name, message in found.items():
        row = ATTENDEE_ROW.match(name)
        if row and int(row.group(1)) < len(positions):
            name = f"attendees[{positions[int(row.group(1))]}]{row.group(2)}"
        moved.append({"field": name, "location": "body", "code": "invalid", "message": message})
    if not any(ATTENDEE_ROW.match(n) for n in found):
        return exc
    return ValidationFailed(errors=moved)


@router.post("/cases/{dispute_id}/sittings", response_class=HTMLResponse)
async def schedule_sitting(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """安排调解: a sitting's time, and its place or that it is held online."""
    case_id = parse_id(dispute_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        fields = describe(SessionIn)
        values = form_data(form, fields)
        require(principal, Permission.cases_write)
        sitting = SessionIn.model_validate(local_times(values, fields, svc.clock.zone))
        await _once(
            request, principal, form, lambda: AgreementService(svc).schedule(case_id, sitting, principal)
        )
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, "schedule_sitting", exc, values)
    return see_other(f"/cases/{case_id}?done=sitting_scheduled#sittings")


@router.post("/cases/{dispute_id}/sittings/{sitting_id}/record", response_class=HTMLResponse)
async def record_sitting(
    request: Request, dispute_id: str, sitting_id: str, principal: Staff, svc: Service
) -> Response:
    """记录调解: who came, the minutes (调解笔录) and how the sitting ended, on the sitting's version
    the page showed. An outcome that ends mediation ends it (人民调解法 Art. 17, 23): the service's."""
    case_id, row_id = parse_id(dispute_id), parse_id(sitting_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    failed = f"record_sitting:{row_id}"
    values: dict[str, Any] = {}
    try:
        fields = sitting_record_fields([])
        values = form_data(form, fields)
        require(principal, Permission.cases_write)
        body, positions = sitting_record_payload(local_times(values, fields, svc.clock.zone))
        try:
            record = SessionRecordIn.model_validate(body)
        except ValidationError as exc:
            raise _to_form_rows(exc, positions) from exc
        version = _text(form.get("version"))
        await _once(
            request,
            principal,
            form,
            lambda: AgreementService(svc).record(case_id, row_id, record, principal, version),
        )
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, failed, exc, values)
    done = "sitting_recorded_ended" if record.outcome in ENDING_OUTCOMES else "sitting_recorded"
    return see_other(f"/cases/{case_id}?done={done}#sittings")


@router.post("/cases/{dispute_id}/sittings/{sitting_id}/cancel", response_class=HTMLResponse)
async def cancel_sitting(
    request: Request, dispute_id: str, sitting_id: str, principal: Staff, svc: Service
) -> Response:
    """取消调解会: a sitting still to be held called off, with the reason, on the sitting's version
    the page showed (recorded or called off since, the service refuses it)."""
    case_id, row_id = parse_id(dispute_id), parse_id(sitting_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        values = form_data(form, describe(SessionCancelIn))
        require(principal, Permission.cases_write)
        cancel = SessionCancelIn.model_validate(values)
        version = _text(form.get("version"))
        await _once(
            request,
            principal,
            form,
            lambda: AgreementService(svc).cancel(case_id, row_id, cancel, principal, version),
        )
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, f"cancel_sitting:{row_id}", exc, values)
    return see_other(f"/cases/{case_id}?done=sitting_cancelled#sittings")


@router.post("/cases/{dispute_id}/sittings/{sitting_id}/reschedule", response_class=HTMLResponse)
async def reschedule_sitting(
    request: Request, dispute_id: str, sitting_id: str, principal: Staff, svc: Service
) -> Response:
    """调解改期: a sitting still to be held moved to another time (and perhaps place), with the
    reason, on the sitting's version the page showed (moved, recorded or called off since, the
    service refuses it)."""
    case_id, row_id = parse_id(dispute_id), parse_id(sitting_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        fields = sitting_reschedule_fields()
        values = form_data(form, fields)
        require(principal, Permission.cases_write)
        # The form shows the place and "online" as they stand: a place emptied is none, the box
        # unticked is in person (not "as now", which is what the API reads into an omission).
        body = {"place": None, "online": False, **local_times(values, fields, svc.clock.zone)}
        move = SessionRescheduleIn.model_validate(body)
        version = _text(form.get("version"))

        async def work() -> MediationSession:
            # Read in the form's own unit of work, as the move is made.
            meant = await _to_the_second(svc, case_id, row_id, move)
            return await AgreementService(svc).reschedule(case_id, row_id, meant, principal, version)

        await _once(request, principal, form, work)
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, f"reschedule_sitting:{row_id}", exc, values)
    return see_other(f"/cases/{case_id}?done=sitting_rescheduled#sittings")


async def _to_the_second(
    svc: DisputeService, case_id: uuid.UUID, row_id: uuid.UUID, move: SessionRescheduleIn
) -> SessionRescheduleIn:
    """The move as the form meant it: the form shows the sitting's time to the minute, so a time
    sent as shown (only the place changed) is the sitting's own, seconds and all (09:30:45), not
    the minute it reads as (09:30:00)."""
    # Its time only: the sitting itself is read by the service, after the case it locks first.
    current = await svc.session.scalar(
        select(MediationSession.scheduled_at).where(
            MediationSession.id == row_id, MediationSession.dispute_id == case_id
        )
    )
    if current is None:
        return move  # the service says what is wrong with it
    shown = current.astimezone(svc.clock.zone).replace(second=0, microsecond=0)
    if move.scheduled_at != shown:
        return move
    return move.model_copy(update={"scheduled_at": current})


# ---- the agreement --------------------------------------------------------------------------------


# The most obligation rows a draft form is read for (the schema takes up to 100; a page shows the
# newest version's and two at least).
MAX_OBLIGATION_ROWS = 100


def _draft_from(version: Any) -> dict[str, Any]:
    """The draft form filled with `version` (an AgreementOut): its content as the form names it."""
    obligations = []
    for o in version.obligations[:MAX_OBLIGATION_ROWS]:
        row = {
            "obligor_party_id": str(o.obligor_party_id),
            "obligee_party_id": str(o.obligee_party_id) if o.obligee_party_id else "",
            "kind": o.kind,
            "amount": str(o.amount) if o.amount is not None else "",
            "description": o.description,
            "place": o.place or "",
            "manner": o.manner,
            "due_on": o.due_on.isoformat(),
        }
        obligations.append(row)
    return {
        "form": version.form,
        "facts": version.facts,
        "disputed_matters": version.disputed_matters,
        "responsibility": version.responsibility,
        "terms": "\n".join(version.terms),
        "obligations": obligations,
    }


def agreement_fields(parties: list[Option], rows: int) -> list[FormField]:
    fields = describe(AgreementIn, skip=frozenset({"terms", "obligations"}))
    choices = {"obligor_party_id": parties, "obligee_party_id": parties}
    for i in range(rows):
        fields += describe(ObligationIn, choices, prefix=f"obligations[{i}].")
    return fields


@router.post("/cases/{dispute_id}/agreements", response_class=HTMLResponse)
async def draft_agreement(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    case_id = parse_id(dispute_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    terms = [line.strip() for line in str(form.get("terms") or "").splitlines() if line.strip()]
    values: dict[str, Any] = {}
    try:
        values = form_data(form, agreement_fields([], MAX_OBLIGATION_ROWS))
        if terms:
            values["terms"] = terms
        if isinstance(values.get("obligations"), list):
            values["obligations"] = [
                o for o in values["obligations"] if not isinstance(o, dict) or set(o) - {"kind"}
            ]
        # The newest version the page showed (empty: none): a version drafted or signed into
        # effect since is not replaced by a form that never saw it.
        content = AgreementDraftIn.model_validate(
            {**values, "supersedes": _text(form.get("supersedes")) or 0}
        )
        await _once(
            request,
            principal,
            form,
            lambda: AgreementService(svc).draft(case_id, content, principal, supersedes=content.supersedes),
        )
    except (ValidationError, ProblemError) as exc:
        values["terms"] = "\n".join(terms)
        return await _refused(request, svc, principal, case_id, "draft_agreement", exc, values)
    return see_other(f"/cases/{case_id}?done=agreement_drafted#agreement")


@router.post("/cases/{dispute_id}/agreements/{agreement_id}/signatures", response_class=HTMLResponse)
async def sign_agreement(
    request: Request, dispute_id: str, agreement_id: str, principal: Staff, svc: Service
) -> Response:
    case_id, version_id = parse_id(dispute_id), parse_id(agreement_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        values = form_data(form, describe(SignatureIn))
        # The page sends the hash of the text it showed with every row that may sign
        # electronically; it is what an electronic signature signs, and goes with that method only.
        if values.get("method") != "electronic":
            values.pop("document_hash", None)
        signature = SignatureIn.model_validate(values)
        # The version of the agreement the page showed: the signature is for that text only.
        version = _text(form.get("version"))
        await _once(
            request,
            principal,
            form,
            lambda: AgreementService(svc).sign(case_id, version_id, signature, principal, version),
        )
    except (ValidationError, ProblemError) as exc:
        # The refusal is shown at the row of the signer it concerns.
        row = f"sign:{version_id}:{values.get('party_id') or values.get('signer')}"
        return await _refused(request, svc, principal, case_id, row, exc, values)
    return see_other(f"/cases/{case_id}?done=signed#agreement")


# ---- supervision and early warning ----------------------------------------------------------------


@router.post("/cases/{dispute_id}/supervision-orders", response_class=HTMLResponse)
async def issue_order(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """督办: the supervisor's order to the body handling the case, with its last day to answer."""
    case_id = parse_id(dispute_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        # The body is named on a case no body holds (the page offers it then); the service
        # refuses one it may not address, and asks for one when the case has none.
        values = form_data(form, describe(OrderIn))
        require(principal, Permission.supervise)
        order = OrderIn.model_validate(values)
        version = _text(form.get("version"))
        await _once(
            request,
            principal,
            form,
            lambda: SupervisionService(svc).issue(case_id, order, principal, version),
        )
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, "supervise", exc, values)
    return see_other(f"/cases/{case_id}?done=supervision_issued#supervision")


@router.post("/cases/{dispute_id}/supervision-orders/{order_id}/response", response_class=HTMLResponse)
async def answer_order(
    request: Request, dispute_id: str, order_id: str, principal: Staff, svc: Service
) -> Response:
    """The body's answer to a supervision order."""
    case_id, order = parse_id(dispute_id), parse_id(order_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    values: dict[str, Any] = {}
    try:
        values = form_data(form, describe(OrderResponseIn))
        answer = OrderResponseIn.model_validate(values)
        version = _text(form.get("version"))
        await _once(
            request,
            principal,
            form,
            lambda: SupervisionService(svc).respond(order, answer, principal, version),
        )
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, f"answer:{order}", exc, values)
    return see_other(f"/cases/{case_id}?done=supervision_responded#supervision")


@router.post("/cases/{dispute_id}/alerts/{alert_id}/{step}", response_class=HTMLResponse)
async def handle_alert(
    request: Request, dispute_id: str, alert_id: str, step: str, principal: Staff, svc: Service
) -> Response:
    """预警: a supervisor acknowledges an alert (签收) or records how it was dealt with (处置)."""
    case_id, alert = parse_id(dispute_id), parse_id(alert_id)
    if step not in ("acknowledge", "resolve"):
        raise NotFound(Text("没有这个操作", "No such action"))
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    schema = AcknowledgeIn if step == "acknowledge" else ResolveIn
    alerts = AlertService(svc)
    values: dict[str, Any] = {}
    try:
        values = form_data(form, describe(schema))
        require(principal, Permission.supervise)
        data = schema.model_validate(values)
        version = _text(form.get("version"))
        if isinstance(data, ResolveIn):
            resolution = data.resolution
            await _once(
                request, principal, form, lambda: alerts.resolve(alert, resolution, principal, version)
            )
        else:
            note = data.note
            await _once(request, principal, form, lambda: alerts.acknowledge(alert, note, principal, version))
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, f"alert:{alert}:{step}", exc, values)
    return see_other(f"/cases/{case_id}?done=alert_{step}#alerts")


Form = TypeVar("Form", bound=BaseModel)


class ConsentForm(ConsentIn):
    """The page's consent form: the decision, for the party chosen (the API names it in the path)."""

    # An empty choice is no field at all in the form's data: checked as a default, so the page says
    # which party is wanted rather than that a field is required.
    party_id: uuid.UUID = Field(default=None, validate_default=True)

    @field_validator("party_id", mode="before")
    @classmethod
    def _chosen(cls, value: object) -> object:
        if not value:
            raise DomainValueError("missing", Text("请选择当事人", "Choose the party"))
        return value


async def _case_form(
    request: Request,
    svc: DisputeService,
    principal: Principal,
    case_id: uuid.UUID,
    schema: type[Form],
    work: Callable[[Form, str | None], Awaitable[object]],
    *,
    failed: str,
    done: str,
    local: bool = False,
    needs: Permission = Permission.cases_write,
) -> Response:
    """One of the case page's forms sent: from the page (CSRF), read as the API's schema (`local`:
    its times as the page shows them, in the service's zone), by a caller holding the permission its
    endpoint needs (`needs`), done once under its idempotency key through the service with the case's
    version the page showed, then the case page again: on success at `done` (`?done=` message and
    anchor), on refusal with the form's values and messages."""
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    fields = describe(schema)
    values: dict[str, Any] = {}
    try:
        values = form_data(form, fields)
        require(principal, needs)
        data = schema.model_validate(local_times(values, fields, svc.clock.zone) if local else values)
        version = _text(form.get("version"))
        await _once(request, principal, form, lambda: work(data, version))
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, failed, exc, values)
    return see_other(f"/cases/{case_id}?done={done}")


def _brief(dispute: Any) -> dict[str, Any]:
    """Another case as a line of this one's page names it (no party, so nothing to mask)."""
    return {
        "id": dispute.id,
        "case_number": dispute.case_number,
        "category": dispute.category,
        "status_label": lifecycle.STATUS_LABELS[Status(dispute.status)].get(),
    }


@router.post("/cases/{dispute_id}/clocks/{name}/extension", response_class=HTMLResponse)
async def extend_clock(
    request: Request, dispute_id: str, name: str, principal: Staff, svc: Service
) -> Response:
    """延长期限: a clock extended within its rule, with the parties' consent where it asks for it,
    through the service the API uses."""
    case_id = parse_id(dispute_id)
    try:
        clock = ClockName(name)
    except ValueError as exc:
        raise NotFound(Text("没有这个时限", "No such clock")) from exc

    async def extend(data: ClockExtensionIn, version: str | None) -> object:
        return await ClockActions(svc).extend(case_id, clock, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        ClockExtensionIn,
        extend,
        failed=f"extend:{clock.value}",
        done="clock_extended#clocks",
    )


@router.post("/cases/{dispute_id}/handoffs/{handoff_id}/materials-supplied", response_class=HTMLResponse)
async def supply_materials(
    request: Request, dispute_id: str, handoff_id: str, principal: Staff, svc: Service
) -> Response:
    """补充材料: the documents chosen answer the court's request, through the service the API uses,
    at the handoff's version the page showed."""
    case_id, handoff = parse_id(dispute_id), parse_id(handoff_id)

    async def supply(data: MaterialsSuppliedIn, version: str | None) -> object:
        return await HandoffService(svc).supply_materials(handoff, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        MaterialsSuppliedIn,
        supply,
        failed=MATERIALS_FORM,
        done="materials_supplied#handoffs",
    )


@router.post("/cases/{dispute_id}/links", response_class=HTMLResponse)
async def link_case(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """关联案件: the center links the case to another sharing a party, through the service the API
    uses; both timelines say so."""
    case_id = parse_id(dispute_id)

    async def link(data: CaseLinkIn, version: str | None) -> object:
        return await svc.link(case_id, data, principal, version)

    return await _case_form(
        request, svc, principal, case_id, CaseLinkIn, link, failed="link", done="linked#links"
    )


@router.post("/cases/{dispute_id}/links/{other_id}/removal", response_class=HTMLResponse)
async def unlink_case(
    request: Request, dispute_id: str, other_id: str, principal: Staff, svc: Service
) -> Response:
    """解除关联: the center removes a link made by mistake, with the reason, through the service the
    API uses; both timelines say so, and the pair may be linked again."""
    case_id, other = parse_id(dispute_id), parse_id(other_id)

    async def unlink(data: CaseUnlinkIn, version: str | None) -> object:
        return await svc.unlink(case_id, other, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        CaseUnlinkIn,
        unlink,
        failed=f"{UNLINK_FORM}{other}",
        done="unlinked#links",
    )


@router.post("/cases/{dispute_id}/consent", response_class=HTMLResponse)
async def record_consent(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """调解意愿: a party's consent to mediation or refusal of it, as the party told the window or the
    body (人民调解法 Art. 17; a court's delegation waits for every party's, 特邀调解规定 Art. 11),
    through the service the API uses."""
    case_id = parse_id(dispute_id)

    async def record(data: ConsentForm, version: str | None) -> object:
        return await svc.record_consent(case_id, data.party_id, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        ConsentForm,
        record,
        failed="record_consent",
        done="consent_recorded#parties",
    )


@router.post("/cases/{dispute_id}/mediator", response_class=HTMLResponse)
async def choose_mediator(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """指定调解员: the body holding the case names or changes its mediator, through the service the
    API uses, which refuses one who declared a conflict with the case (特邀调解规定 Art. 16)."""
    case_id = parse_id(dispute_id)

    async def choose(data: MediatorChoiceIn, version: str | None) -> object:
        return await svc.choose_mediator(case_id, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        MediatorChoiceIn,
        choose,
        failed="choose_mediator",
        done="mediator_chosen#assignment",
    )


# The owner form's fields as the page names them: an official's account (`user_id`) is the API's to
# give, and no list of accounts is the page's to offer.
OWNER_FIELDS = [
    replace(f, label={"name": "包案领导姓名", "title": "职务"}.get(f.name, f.label))
    for f in describe(OwnerIn, skip=frozenset({"user_id"}))
]


class OwnerClearForm(WriteModel):
    """The page's form that clears the owner: nothing but the case's version (the API sends null)."""


@router.post("/cases/{dispute_id}/owner", response_class=HTMLResponse)
async def set_owner(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """包案: a supervisor names (or changes) the official who answers for the case until it is
    resolved, through the service the API uses."""
    case_id = parse_id(dispute_id)

    async def name(data: OwnerIn, version: str | None) -> object:
        return await SupervisionService(svc).set_owner(case_id, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        OwnerIn,
        name,
        failed="set_owner",
        done="owner_set#assignment",
        needs=Permission.supervise,
    )


# Audited under the API's name for the same change (its PUT with null clears the owner).
@router.post("/cases/{dispute_id}/owner/clear", response_class=HTMLResponse, name="set_owner")
async def clear_owner(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """取消包案: a supervisor clears the case's owner, through the service the API uses."""
    case_id = parse_id(dispute_id)

    async def clear(data: OwnerClearForm, version: str | None) -> object:
        return await SupervisionService(svc).set_owner(case_id, None, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        OwnerClearForm,
        clear,
        failed="clear_owner",
        done="owner_cleared#assignment",
        needs=Permission.supervise,
    )


@router.post("/cases/{dispute_id}/risk-flags", response_class=HTMLResponse)
async def flag_risk(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """报告风险: staff on the case flag a danger they saw (人民调解法 Art. 25), through the service
    the API uses."""
    case_id = parse_id(dispute_id)

    async def flag(data: RiskFlagIn, version: str | None) -> object:
        return await AlertService(svc).flag(case_id, data, principal, version)

    return await _case_form(
        request,
        svc,
        principal,
        case_id,
        RiskFlagIn,
        flag,
        failed="flag_risk",
        done="risk_flagged#alerts",
        local=True,
    )


@router.post("/cases/{dispute_id}/query-code", response_class=HTMLResponse, name=REISSUE)
async def reissue_query_code(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """重新生成查询码: the window gives a party who lost the receipt's query code a new one, through
    the service the API uses, and shows it this once on a slip to print. A second submission of the
    same form replays without acting again, and without the code: the answer kept for the replay
    holds no code, as the API keeps none."""
    case_id = parse_id(dispute_id)
    # Named as the API names it: the new code is what resets the count of wrong codes (disputes.lookup).
    request.state.audit_object = ("dispute", case_id)
    form = await _form(request)
    check_csrf(request, _text(form.get("csrf")))
    fields = describe(QueryCodeReissueIn)
    values: dict[str, Any] = {}
    issued: list[str] = []
    try:
        values = form_data(form, fields)
        require(principal, Permission.cases_write)
        data = QueryCodeReissueIn.model_validate(values)
        version = _text(form.get("version"))

        async def reissue() -> None:
            _, code = await svc.reissue_query_code(case_id, data, principal, version)
            issued.append(code)

        await _once(request, principal, form, reissue)
    except (ValidationError, ProblemError) as exc:
        return await _refused(request, svc, principal, case_id, "reissue_query_code", exc, values)
    # The cause only: the code is on the slip, nowhere else.
    # A second press of the same form reissued nothing: the audit record says so.
    request.state.audit_details = {"query_code_reissue": {"cause": data.cause.value, "replayed": not issued}}
    dispute = await svc.get(case_id, principal)
    return render(
        request,
        "query_code_slip.html",
        {
            "case_id": dispute.id,
            "case_number": dispute.case_number,
            "query_code": issued[0] if issued else None,
            "issued_on": svc.clock.today().isoformat(),
            **issuer(await _receiving_center(request, dispute.region_code)),
        },
    )


# ---- printable pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrintNumbers:
    """Whether a print offers its ID and phone numbers in full and whether it shows them
    (`print_numbers`), and its own address, for the control above it (`print_numbers_control`)."""

    offered: bool
    shown: bool
    here: str
    show: str = SHOW_NUMBERS


def print_numbers(
    request: Request,
    principal: Principal,
    dispute_id: uuid.UUID,
    *,
    hides_numbers: bool,
    show: str | None,
    here: str,
) -> PrintNumbers:
    """The numbers on a print (the agreement, the 司法确认申请书) as on the case page: masked, to
    staff who may read them too, until they ask for them (`show=numbers`; 个人信息保护法 Art. 6,
    minimum necessary); then printed as written and the print recorded as a disclosure of the
    case's personal data, once however many numbers it shows (Art. 51, 55). A print whose masking
    hides nothing (`hides_numbers` False), or a caller who may not read them, is offered nothing
    and records nothing, whatever it asks for."""
    offered = hides_numbers and principal.can(Permission.pii_read)
    shown = offered and show == SHOW_NUMBERS
    # What the audit recorder reads (audit/recorder.py): this case, once, or nothing.
    request.state.pii_reads = [str(dispute_id)] if shown else []
    return PrintNumbers(offered, shown, here)


def _macros() -> Any:
    """The pages' macros, for a print laid out outside a template (the agreement's)."""
    return templates.env.get_template("_macros.html").module


@router.get("/cases/{dispute_id}/agreements/{agreement_id}/print", response_class=HTMLResponse)
async def print_agreement(
    request: Request,
    dispute_id: str,
    agreement_id: str,
    principal: Staff,
    svc: Service,
    show: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """The agreement as the parties sign it: the same page the API serves as the agreement document.
    An ID or phone number the mediator wrote into its text is printed masked, to staff who may read
    it too, until they ask for it as on the case page (`show=numbers`; 个人信息保护法 Art. 6, minimum
    necessary): then it is printed as written and the print recorded as a disclosure (Art. 51, 55).
    The parties' own ID numbers are printed masked either way."""
    dispute, agreement = await AgreementService(svc).get(
        parse_id(dispute_id), parse_id(agreement_id), principal
    )
    # Laid out once: what it would show is known before it is filled in, masked or as written.
    paper = agreement_page(agreement, dispute)
    numbers = print_numbers(
        request,
        principal,
        dispute.id,
        hides_numbers=paper.hides_numbers,
        show=show,
        here=f"/cases/{dispute.id}/agreements/{agreement.id}/print",
    )
    control = str(_macros().print_numbers_control(numbers, "agreement")) if numbers.offered else ""
    response = HTMLResponse(paper.html(masked=not numbers.shown, control=control))
    secure_page(response)
    return response


@router.get("/cases/{dispute_id}/confirmation-application", response_class=HTMLResponse)
async def print_confirmation_application(
    request: Request,
    dispute_id: str,
    principal: Staff,
    svc: Service,
    show: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """司法确认申请书 (民事诉讼法 Art. 205; 法释〔2011〕5号 Art. 3): the joint application with the
    parties, the agreement and the materials, laid out for print.

    The court is told who applies: each party's identity document, telephone and address, in full
    on the copy filed with it. Printed, like the agreement, with the numbers masked until a member
    of staff who may read them asks for them (`show=numbers`; 个人信息保护法 Art. 6, minimum
    necessary); then they and the agreement's text are printed as written and the print recorded as
    a disclosure (Art. 55). An application that would show no number offers nothing and records
    nothing."""
    case_id = parse_id(dispute_id)
    dispute = await svc.get(case_id, principal)
    handoffs = [h for h, _, _ in await HandoffService(svc).of_case(case_id, principal)]
    confirmation = next((h for h in reversed(handoffs) if h.kind == "judicial_confirmation"), None)
    _, versions = await AgreementService(svc).versions(case_id, principal)
    effective = next((a for a in reversed(versions) if a.status == "effective"), None)
    if effective is not None and effective.form == AgreementForm.oral:
        # 民诉法解释 Art. 354: the application is made with the written agreement.
        detail = "口头调解协议不能申请司法确认: 申请须提交书面调解协议 (民诉法解释第三百五十四条)。"
        return render(
            request, "error.html", {"title": "不能申请司法确认", "detail": detail, "status": 409}, 409
        )
    court = None
    if confirmation is not None:
        court = await svc.session.get(Body, confirmation.target_id)
    elif dispute.inviting_court_id is not None:
        court = await svc.session.get(Body, dispute.inviting_court_id)
    body = await svc.session.get(Body, dispute.body_id) if dispute.body_id else None
    documents = await svc.documents.of_case(dispute, principal) if svc.documents else []

    def read_by(view: Viewer) -> dict[str, Any]:
        """What the application prints, as `view` reads it; `view.pii_reads` names the case when
        that shows a number unmasked."""
        agreement = (
            view.shown(
                dispute.id,
                agreement_out(effective, dispute, masked=True),
                lambda: agreement_out(effective, dispute, masked=False),
            )
            if effective
            else None
        )
        return {
            "case": view.dispute(dispute),
            "agreement": agreement,
            # Without an agreement's facts, the case's description stands for them.
            "facts": agreement.facts
            if agreement and agreement.facts
            else view.text(dispute.id, dispute.description),
            # A file's name is text typed about the case: masked as the case page's document list masks it.
            "document_names": [view.text(dispute.id, d.original_name) for d in documents],
        }

    masked = read_by(viewer_for(request, principal, reveal=False))
    full = (
        Viewer(principal, identity_of(request).cipher, svc.clock.now())
        if principal.can(Permission.pii_read)
        else None
    )
    written = read_by(full) if full is not None else masked
    # Read in full, the application names the case among its reads when it shows a number.
    numbers = print_numbers(
        request,
        principal,
        dispute.id,
        hides_numbers=bool(full and full.pii_reads),
        show=show,
        here=f"/cases/{dispute.id}/confirmation-application",
    )
    return render(
        request,
        "confirmation_application.html",
        {
            **(written if numbers.shown else masked),
            "handoff": confirmation,
            "court": court,
            "body": body,
            "numbers": numbers,
        },
    )


@router.get("/cases/{dispute_id}/decline-notice", response_class=HTMLResponse)
async def print_decline_notice(
    request: Request, dispute_id: str, principal: Staff, svc: Service
) -> HTMLResponse:
    """不予受理告知书: the party is told in writing why the center does not take the case in and
    which route to take instead; the same text the decline stored with its hash. Only its reason is
    text a clerk typed: a number in it is printed as typed to staff who may read it, and that print
    recorded as a disclosure (个人信息保护法 Art. 55); a notice that shows none records nothing."""
    dispute = await svc.get(parse_id(dispute_id), principal)
    case = viewer_for(request, principal, reveal=False).dispute(dispute)
    if case.status != Status.declined.value:
        detail = "案件未被不予受理, 没有不予受理告知书。"
        return render(
            request, "error.html", {"title": "没有不予受理告知书", "detail": detail, "status": 409}, 409
        )
    declined_on = (dispute.closed_at or dispute.updated_at).astimezone(svc.clock.zone).date()
    lines = decline_notice_lines(dispute, case.outcome, declined_on)
    if principal.can(Permission.pii_read):
        written = decline_notice_lines(dispute, dispute.outcome, declined_on)
        if written != lines:
            lines = written
            request.state.pii_reads.append(str(dispute.id))
    # Who declined it: the clerk who made the decision and signs the notice for the center.
    decided_by = await svc.session.scalar(
        select(TimelineEntry.actor_id)
        .where(TimelineEntry.dispute_id == dispute.id, TimelineEntry.action == Action.decline.value)
        .order_by(TimelineEntry.seq.desc())
        .limit(1)
    )
    return render(
        request,
        "decline_notice.html",
        {
            "case": case,
            "title": DECLINE_NOTICE_TITLE,
            "lines": lines,
            "issued_on": declined_on.isoformat(),
            "clerk": await staff_name(request, decided_by),
            **issuer(await _receiving_center(request, dispute.region_code)),
        },
    )


@router.get("/cases/{dispute_id}/receipt", response_class=HTMLResponse)
async def reprint_receipt(request: Request, dispute_id: str, principal: Staff, svc: Service) -> HTMLResponse:
    """The intake receipt again, without the query code: it was shown once, at the window. It shows
    no ID or phone number, so it is read masked and discloses nothing to record. Signed by the clerk
    who registered the case, as the receipt given at the time was, and dated as reprinted."""
    dispute = await svc.get(parse_id(dispute_id), principal)
    case = viewer_for(request, principal, reveal=False).dispute(dispute)
    online = dispute.channel == "online"
    return render(
        request,
        "receipt.html",
        {
            "case": case.model_dump(mode="json"),
            "decline": declined(case),
            "online": online,
            "replayed": False,
            "reprint": True,
            "reprinted_on": svc.clock.today().isoformat(),
            "next_step": next_step(
                dispute, svc.clock.today(), svc.settings.confirmation_window_days, say_day=cn_date
            ).get(),
            "clerk": None if online else await staff_name(request, dispute.created_by),
            **issuer(await _receiving_center(request, dispute.region_code)),
        },
    )


async def _receiving_center(request: Request, region_code: str) -> Body | None:
    """The center that received the case, as the receipt given at the time named it: the one whose
    region holds the place of the dispute (a window's clerk registers only there; an online
    application goes there)."""
    return await center_for(request, region_code)
