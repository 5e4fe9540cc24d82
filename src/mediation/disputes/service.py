"""Dispute use cases. Services add and flush; the request's unit of work commits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from mediation.agreements.models import Agreement, FollowUp, Obligation, Signature
from mediation.agreements.render import agreement_html
from mediation.agreements.rules import agreement_summary, past_its_day
from mediation.alerts.detect import RiskHit, place_key
from mediation.bodies.models import Body, BodyKind, Mediator, MediatorConflict
from mediation.clocks import rules as clock_rules
from mediation.clocks.counted import recount_reason
from mediation.clocks.models import CaseClock
from mediation.clocks.rules import ClockName
from mediation.clocks.service import ClockService
from mediation.core.clock import Clock
from mediation.core.db import insert_of, utcnow
from mediation.core.errors import (
    Conflict,
    DuplicateExternalReference,
    Forbidden,
    GuardFailed,
    InvalidTransition,
    NotFound,
    OutsideScope,
    ProblemError,
    StaleVersion,
    ValidationFailed,
)
from mediation.core.http import check_if_match, check_if_match_given, decode_cursor, encode_cursor
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher, mask_id_number, mask_phone
from mediation.core.principal import ROLE_NAMES, SYSTEM, Permission, Principal, Role
from mediation.core.refusal import summary
from mediation.core.schemas import parse_instant
from mediation.core.settings import Settings
from mediation.disputes import attention, lifecycle
from mediation.disputes.attention import Attention
from mediation.disputes.enums import (
    PARTY_ROLE_NAMES,
    Channel,
    Consent,
    CourtStage,
    IdType,
    PartyKind,
    PartyRole,
    TerminationReason,
    Tier,
)
from mediation.disputes.identity import organisation_key, region_prefix
from mediation.disputes.lifecycle import (
    HANDOFF_DECISIONS,
    HANDOFF_OPENINGS,
    Action,
    GuardContext,
    Status,
    Transition,
)
from mediation.disputes.lookup import Lookup, counted_failures, recent_failures, wait_after
from mediation.disputes.models import (
    Assignment,
    CaseLink,
    CaseNumberCounter,
    Dispute,
    Party,
    TimelineEntry,
)
from mediation.disputes.paperwork import (
    DECLINE_NOTICE_TITLE,
    PAPER_TITLES,
    RECEIPT_TITLE,
    decline_notice_lines,
    handoff_lines,
    receipt_lines,
)
from mediation.disputes.references import canonical_reference, reference_scope
from mediation.disputes.schemas import (
    NOT_AN_AGENT,
    NOT_AN_ORGANISATION,
    CaseLinkIn,
    CaseUnlinkIn,
    ConsentIn,
    DisputeCorrectionIn,
    DisputeCreate,
    MediatorChoiceIn,
    PartyIn,
    QueryCodeReissueIn,
    WithdrawConfirmationPayload,
    involved_parties,
    people_below_parties,
    represents_refusal,
)
from mediation.disputes.scope import RULE_KINDS, scope_clause, scope_params, sees, visible_to
from mediation.documents.models import Document
from mediation.documents.service import (
    DOCUMENT_ENTRIES,
    HANDOFF_KINDS,
    DocumentKind,
    DocumentService,
    documents_shown,
    page_of,
)
from mediation.events.service import record_dispute_event
from mediation.handoffs.ledger import ARBITRATION_KIND, Ledger, confirmation_window_warning
from mediation.handoffs.ledger import summary as handoff_summary
from mediation.triage.engine import Facts, higher_tier, required_tier
from mediation.triage.rules import GroupCount, GroupDecision
from mediation.triage.service import TriageService, facts_of, snapshot

QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at the window
QUERY_CODE_LENGTH = (
    8  # 32^8, about 10^12: with the lookup's waits per case, not to be guessed (disputes.lookup)
)

# The body/court/commission an action names, by payload field.
TARGET_FIELD = {
    Action.assign: "body_id",
    Action.request_confirmation: "court_id",
    Action.refer_arbitration: "commission_id",
    Action.refer_litigation: "court_id",
}


# While a body holds the case it may name or change its mediator.
MEDIATOR_STATES = frozenset({Status.mediating, Status.agreement_signed, Status.confirmation_rejected})


# Corrections (更正登记信息): a case whose file is a record, or is with a court or commission as
# handed over, is not corrected; while a body holds the case it corrects it, else the center.
CORRECTION_CLOSED = lifecycle.TERMINAL | {Status.closed}
CORRECTION_HANDED_OFF = frozenset(
    {Status.confirmation_pending, Status.confirmed, Status.referred_arbitration, Status.referred_litigation}
)
CORRECTION_WITH_BODY = frozenset(
    {
        Status.assigned,
        Status.mediating,
        Status.agreement_signed,
        Status.performed,
        Status.confirmation_rejected,
    }
)
CORRECTION_ENDED = frozenset({Status.mediation_failed, Status.withdrawn})
# Parties join while mediation can still involve them: before an agreement and before the end.
ADDING_PARTIES_STATES = frozenset({Status.registered, Status.accepted, Status.assigned, Status.mediating})


def _one_case(kind: str, for_update: bool) -> Select[Dispute]:
    # The parties joined in: one round trip for the case every action and read starts with. (The
    # lock stays on the case's row alone: `FOR UPDATE OF disputes`.)
    stmt = (
        select(Dispute)
        .where(Dispute.id == bindparam("dispute_id"), scope_clause(kind))
        .options(joinedload(Dispute.parties))
    )
    return stmt.with_for_update(of=Dispute) if for_update else stmt


# Built once: composing a statement costs more CPU than running it, and every request reads its case.
_ONE_CASE = {(kind, lock): _one_case(kind, lock) for kind in RULE_KINDS for lock in (False, True)}

# How an action ends the case's open assignment.
ASSIGNMENT_ENDINGS = {
    Action.return_: "returned",
    Action.transfer: "transferred",
    Action.escalate: "escalated",
    Action.withdraw: "withdrawn",
}


# The actions that end a body's assignment with a reason (`Assignment.outcome_reason`): taken by
# the body itself (`_BODY_ROLE_NAMES`), the reason is that body's.
_BODY_ENDINGS = frozenset(a.value for a in ASSIGNMENT_ENDINGS)
_BODY_ROLE_NAMES = frozenset(r.value for r in lifecycle.BODY)


def new_query_code() -> str:
    """A party's query code for the status lookup: the one intake prints on the receipt and the one
    the window gives again when it is lost (`reissue_query_code`), made alike."""
    return "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(QUERY_CODE_LENGTH))


def hash_query_code(case_number: str, code: str) -> str:
    return hashlib.sha256(f"{case_number}:{code.strip().upper()}".encode()).hexdigest()


# The hash the lookup compares a code with where it examines none (no case, or a wait): no code has it.
NO_CODE = "0" * 64


def verify_query_code(case_number: str, code: str, expected: str) -> bool:
    """Whether `code` is the one whose hash is `expected`: the one check of a code the lookup makes,
    on every path alike (disputes.lookup)."""
    return hmac.compare_digest(expected, hash_query_code(case_number, code))


@dataclass(slots=True)
class ListFilters:
    status: list[str] | None = None
    category: str | None = None
    body_id: uuid.UUID | None = None
    region: str | None = None
    channel: str | None = None
    attention: str | None = None
    clock_level: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    # ("id_number" | "phone", keyed hash): cases with a party holding that number
    party_index: tuple[str, str] | None = None
    # cases sharing a party (same ID or phone number) with this case
    related_to: uuid.UUID | None = None


# Built once: every intake takes a number (building the statement cost more CPU than running it).
_BUMP_CASE_NUMBER = (
    update(CaseNumberCounter)
    .where(CaseNumberCounter.region == bindparam("in_region"), CaseNumberCounter.year == bindparam("in_year"))
    .values(last_value=CaseNumberCounter.last_value + 1)
    .returning(CaseNumberCounter.last_value)
)
# The neighbouring year's counter at the turn of the year: locked, its value read, no number taken.
_HOLD_CASE_NUMBERS = (
    update(CaseNumberCounter)
    .where(CaseNumberCounter.region == bindparam("in_region"), CaseNumberCounter.year == bindparam("in_year"))
    .values(last_value=CaseNumberCounter.last_value)
    .returning(CaseNumberCounter.last_value)
)


def counter_years(registered_on: date) -> tuple[int, ...]:
    """The years whose county case-number counters an intake registered on `registered_on` takes,
    oldest first; the case's number comes from its own year's.

    Intakes of one county take its counters in turn, from their numbers until their commits, and
    early warning relies on that (alerts.service: a wave's intakes running at once see each other
    under the counter). Counters are per year, so on its own an intake of 31 December and one of
    1 January would not wait for each other. An intake lasts seconds (its request's timeout), so two
    that run at once are registered at most a day apart: on 31 December and 1 January an intake
    also holds the other year's counter, and every two intakes that may run at once share a row.
    Taken oldest first by all, they cannot deadlock; every other day of the year an intake takes
    one counter, in one statement, as it always has."""
    year = registered_on.year
    if (registered_on.month, registered_on.day) == (12, 31):
        return (year, year + 1)
    if (registered_on.month, registered_on.day) == (1, 1):
        return (year - 1, year)
    return (year,)


def handoff_kind(action: Action, target: Body) -> str:
    """The kind of handoff an action opens to `target`."""
    if action == Action.request_confirmation:
        return "judicial_confirmation"
    if action == Action.refer_litigation:
        return "litigation"
    return ARBITRATION_KIND[BodyKind(target.kind)]


def _handoff_named(action: Action, ctx: GuardContext, new_handoff_id: uuid.UUID | None) -> dict[str, str]:
    """What a transition's event says of the handoff it opens or settles: every court and
    commission endpoint is keyed by the handoff, and a target the case has left (a request
    withdrawn or not accepted) no longer reads the case's handoffs, only its own. Handing a labour
    dispute to court after its referral lapsed (劳动争议调解仲裁法 Art. 29, 43) names that referral too."""
    if action in HANDOFF_OPENINGS:
        assert ctx.target is not None and new_handoff_id is not None
        named = {
            "handoff_id": str(new_handoff_id),
            "handoff_kind": handoff_kind(action, ctx.target),
            "target_id": str(ctx.target.id),
        }
        if ctx.handoff is not None:
            named["lapsed_handoff_id"] = str(ctx.handoff.id)
        return named
    if action in HANDOFF_DECISIONS and ctx.handoff is not None:
        return {
            "handoff_id": str(ctx.handoff.id),
            "handoff_kind": ctx.handoff.kind,
            "target_id": str(ctx.handoff.target_id),
        }
    return {}


class DisputeService:
    def __init__(
        self,
        session: AsyncSession,
        clock: Clock,
        settings: Settings,
        cipher: PiiCipher,
        documents: DocumentService | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.settings = settings
        self.cipher = cipher
        # Generates receipts, agreements and handoff papers, and freezes the dossier at handoff.
        self.documents = documents
        self.triage = TriageService(session)
        rules = clock_rules.load(settings.clock_rules_file)
        self.ledger = Ledger(session, rules)
        self.clocks = ClockService(session, clock, rules)
        # Set by a change found made already, as sent (`act`): nothing was written.
        self.unchanged = False

    # ---- intake ---------------------------------------------------------------------------------

    async def register(
        self, data: DisputeCreate, principal: Principal, related: list[RelatedCase] | None = None
    ) -> tuple[Dispute, str]:
        """Registers the case; with `related`, fills it with the earlier cases of the same people
        (`related()`), looked up before the case number is taken so the counter is held no longer."""
        if principal.region is not None and not data.region_code.startswith(principal.region):
            message = Text("案发地不在本中心辖区内", "The place is outside your center's region")
            raise ValidationFailed.of_field("region_code", "outside_region", message)
        scope = reference_scope(data.channel, data.region_code, data.inviting_court_id)
        if data.external_reference is not None:
            await self._refuse_duplicate_reference(data.channel, data.external_reference, scope, principal)
        if data.channel == Channel.court_delegated and data.inviting_court_id is None:
            # The court delegated the case: its deadline (特邀调解规定 Art. 27) and the court
            # competent to confirm the agreement follow from which court it was.
            message = Text(
                "法院委派的案件须注明委派的法院", "A court-delegated case names the delegating court"
            )
            raise ValidationFailed.of_field("inviting_court_id", "inviting_court_missing", message)
        if data.inviting_court_id is not None:
            court = await self.session.get(Body, data.inviting_court_id)
            if court is None or court.kind != BodyKind.court:
                message = Text("邀请调解的法院不存在", "The inviting court does not exist")
                raise ValidationFailed.of_field("inviting_court_id", "not_a_court", message)
        now = self.clock.now()
        # One reading of the clock: at midnight the case's date, its number's year and the counters
        # early warning reads (alerts.service, from `created_at`) agree.
        today = now.astimezone(self.clock.zone).date()
        applied_on = self._application_day(data, today)
        query_code = new_query_code()
        # The tier comes from the triage rules (domain.md §4.4: small matters stay in the village,
        # big ones go up); group disputes count from the rules' threshold, and what it counts
        # (劳动争议调解仲裁法 Art. 7: ten or more on the workers' side for labour).
        rules = (await self.triage.rules()).rules
        group = rules.group_decision(data.category, data.people, data.parties)
        is_group = group.is_group
        # Early warning reads the description before triage, so words of violence, self-harm or
        # gathering put the case at the tier for risk cases from the start (人民调解法 Art. 25), as
        # does the clerk's marking it dangerous; either raises its risk alert (below).
        from mediation.alerts.service import AlertService  # it builds on this service

        alerts = AlertService(self)
        hits = alerts.risk_hits(data.description)
        is_risk = data.is_risk or bool(hits)
        facts = Facts(
            category=data.category,
            severity=data.severity,
            is_group=is_group,
            is_risk=is_risk,
            subject_matters=tuple(m.value for m in data.subject_matters),
            region_code=data.region_code,
            tier=Tier.village,
            group=group,
        )
        tier, _ = required_tier(facts, rules)
        dispute_id = uuid.uuid4()
        # A stand-in until the case number is taken at the end (below); never committed.
        provisional = f"~{dispute_id.hex[:31]}"
        dispute = Dispute(
            id=dispute_id,
            case_number=provisional,
            query_code_hash=provisional,
            category=data.category,
            subject_matters=[m.value for m in data.subject_matters],
            description=data.description,
            channel=data.channel,
            external_reference=data.external_reference,
            reference_scope=scope if data.external_reference is not None else None,
            region_code=data.region_code,
            address=data.address,
            place_key=place_key(data.address),
            inviting_court_id=data.inviting_court_id,
            # 特邀调解规定 Art. 27: a court delegating a case it has not filed (委派) is the usual
            # case; mediation it entrusts after filing (委托) is said so at intake.
            court_stage=data.court_stage or (CourtStage.pre_filing if data.court_delegated else None),
            court_case_number=data.court_case_number,
            amount_in_dispute=data.amount_in_dispute,
            people_involved=data.people,
            severity=data.severity,
            is_group=is_group,
            is_risk=is_risk,
            complexity=data.complexity,
            tier=tier,
            status=Status.registered,
            version=1,
            applied_on=applied_on,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
        )
        dispute.parties = [self._new_party(i, p) for i, p in enumerate(data.parties)]
        # The case's row is written with its clock summary, and its clocks after it.
        clocks = self.clocks.first_clocks(dispute, now)
        self.session.add(dispute)
        try:
            await self.session.flush()
        except IntegrityError:
            if data.external_reference is None:
                raise
            # Two intakes of the same referral raced past the look above: on PostgreSQL this insert
            # waited for the other's and met the constraint once it committed. The loser is answered
            # as the look would have answered it, naming the case the winner registered. This
            # transaction is spoilt and the request fails anyway: nothing of it is kept, and the
            # winner is read in a fresh one (its snapshot taken after the winner's commit).
            await self.session.rollback()
            await self._refuse_duplicate_reference(data.channel, data.external_reference, scope, principal)
            raise  # no such case: another constraint failed, not this one
        self.session.add_all(clocks)
        # The day the resident applied (民法典 Art. 195: it interrupted the limitation period) goes
        # with the registration, so a court or commission following the case by its events knows it.
        # What the group threshold counted goes with it, so the flag can be read with its reason.
        registration = {"applied_on": applied_on.isoformat(), "group": group.record()}
        self._append_timeline(
            dispute, "register", None, Status.registered, principal, None, registration, now, seq=1
        )
        found = await alerts.detect(dispute, hits, marked=data.is_risk)
        if related is not None:
            related.extend(await self.related(dispute, principal))
        # The case number comes last: the county's counter row stays locked from here until the
        # commit, and every other intake in the county waits for it, so only the writes that need
        # the number (its event, the alerts that name it, the receipt) follow. Numbers stay gapless.
        await self.session.flush()  # the timeline entry and the clocks: before the lock, not under it
        number, counted = await self._take_counters(data.region_code[:6], today)
        dispute.case_number = f"{data.region_code[:6]}-{today.year}-{number:06d}"
        dispute.query_code_hash = hash_query_code(dispute.case_number, query_code)
        record_dispute_event(
            self.session,
            dispute,
            "registered",
            {
                "action": "register",
                "to": Status.registered.value,
                "version": 1,
                "channel": dispute.channel,
                "category": dispute.category,
                **registration,
            },
            now,
        )
        # The receipt's file is written and synced in a thread while the alerts are written: both
        # happen under the counter lock, and this way one waits in the other's shadow.
        documents = self.documents
        storing = None
        if documents is not None:
            receipt = page_of(RECEIPT_TITLE, receipt_lines(dispute, today))
            storing = asyncio.create_task(documents.store_page(receipt))
        try:
            # After the registration's own event, so a feed reader sees the case before its alerts.
            await alerts.apply(dispute, found, counted)
        except BaseException:
            if storing is not None:  # its file, if written, is content nobody references
                storing.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
        if documents is not None and storing is not None:
            stored = await storing
            await documents.attach_page(
                dispute, principal, DocumentKind.receipt, RECEIPT_TITLE, stored, now, new_case=True
            )
        return dispute, query_code

    def _application_day(self, data: DisputeCreate, today: date) -> date:
        """申请日: applying for mediation interrupts the limitation period (民法典 Art. 195), and a
        resident who applied at the body that referred the case (12345, a petition office, a court,
        the police) applied on that day, not on the day the center registers it. Never after the
        registration, and not further back than a referral takes (Settings)."""
        if data.applied_on is None:
            return today
        if data.applied_on > today:
            message = Text("申请日不能晚于登记日", "The application date cannot be after the registration")
            raise ValidationFailed.of_field("applied_on", "applied_on_in_future", message)
        bound = self.settings.referred_application_max_days
        if data.applied_on < today - timedelta(days=bound):
            message = Text(
                "申请日不能早于登记日 {n} 日以上, 请核对年份",
                "The application date cannot be more than {n} days before the registration; check the year",
            ).format(n=bound)
            raise ValidationFailed.of_field("applied_on", "applied_on_too_early", message)
        return data.applied_on

    def _new_party(self, position: int, data: PartyIn) -> Party:
        party = Party(
            id=uuid.uuid4(),
            position=position,
            consent=Consent.unknown,
            represents_position=data.represents,
            **data.model_dump(exclude={"id_number", "phone", "represents"}),
        )
        if data.kind == PartyKind.organisation:
            party.name_key = organisation_key(data.name)
        row_id = str(party.id)
        if data.id_number:
            party.id_number_enc = self.cipher.encrypt(
                data.id_number, table="parties", column="id_number", row_id=row_id
            )
            party.id_number_masked = mask_id_number(data.id_number)
            party.id_number_index = self.cipher.index(data.id_number, kind="id_number")
        if data.phone:
            party.phone_enc = self.cipher.encrypt(data.phone, table="parties", column="phone", row_id=row_id)
            party.phone_masked = mask_phone(data.phone)
            party.phone_index = self.cipher.index(data.phone, kind="phone")
        return party

    async def _refuse_duplicate_reference(
        self, channel: str, reference: str, scope: str, principal: Principal
    ) -> None:
        """Refuses a reference its issuing side's numbering already registered (`reference_scope`)."""
        existing = await self.session.scalar(
            select(Dispute).where(
                Dispute.channel == channel,
                Dispute.external_reference == reference,
                Dispute.reference_scope == scope,
            )
        )
        if existing is not None and not sees(principal, existing):
            # Registered by another center: still one work order, but that case is not the caller's
            # to know of.
            raise DuplicateExternalReference(
                Text("该平台工单已由其他调处中心登记", "Already registered by another center")
            )
        if existing is not None:
            raise DuplicateExternalReference(
                Text("该平台工单已登记为案件 {n}", "Already registered as case {n}").format(
                    n=existing.case_number
                ),
                dispute_id=str(existing.id),
                case_number=existing.case_number,
                headers={"Location": f"/v1/disputes/{existing.id}"},
            )

    async def _take_counters(self, region6: str, registered_on: date) -> tuple[int, int]:
        """The case's number, from the county's counter of its year, and the sum of the counters
        the intake holds (`counter_years`) once it has it: early warning compares that with the
        sum it read when it looked, to know how many intakes were numbered in between."""
        number = counted = 0
        for year in counter_years(registered_on):
            own = year == registered_on.year
            value = await self._counter(region6, year, take=own)
            if own:
                number = value
            counted += value
        return number, counted

    async def _counter(self, region6: str, year: int, *, take: bool) -> int:
        """The county's counter of `year`, locked until commit: its next number (`take`), gapless,
        or where it stands (started at 0 if need be, so that year's first case is still number 1).

        A plain UPDATE first: on PostgreSQL it queues behind the holder on the row's tuple lock, so
        intakes get their numbers in the order they asked. (An INSERT ... ON CONFLICT waits on the
        holder's transaction instead, and every waiter races again when it ends: under a wave of
        intakes one of them could lose that race until its request timed out.) The upsert only
        starts a county's year."""
        statement = _BUMP_CASE_NUMBER if take else _HOLD_CASE_NUMBERS
        value = (
            await self.session.execute(statement, {"in_region": region6, "in_year": year})
        ).scalar_one_or_none()
        if value is None:
            insert = insert_of(self.session)
            step = 1 if take else 0
            start = (
                insert(CaseNumberCounter)
                .values(region=region6, year=year, last_value=step)
                .on_conflict_do_update(
                    index_elements=["region", "year"],
                    set_={"last_value": CaseNumberCounter.last_value + step},
                )
                .returning(CaseNumberCounter.last_value)
            )
            value = (await self.session.execute(start)).scalar_one()
        return int(value)

    # ---- reads ----------------------------------------------------------------------------------

    async def get(self, dispute_id: uuid.UUID, principal: Principal, *, for_update: bool = False) -> Dispute:
        """The case, if the caller may see it. A case outside the caller's scope answers exactly like
        a case that does not exist, so its existence does not leak."""
        kind, params = scope_params(principal)
        found = await self.session.scalars(_ONE_CASE[kind, for_update], {"dispute_id": dispute_id, **params})
        dispute = found.unique().first()
        if dispute is None:
            missing = Text("案件不存在", "No such case")
            if kind != "all" and await self.session.scalar(
                select(Dispute.id).where(Dispute.id == dispute_id)
            ):
                raise OutsideScope(missing)
            raise NotFound(missing)
        return dispute

    async def search(
        self, filters: ListFilters, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Dispute], str | None]:
        stmt = self._filtered(select(Dispute), filters, principal).options(selectinload(Dispute.parties))
        if cursor:
            values = decode_cursor(cursor)
            try:
                # A time the service wrote, in its years (Instant): a crafted one near year 1 or
                # 9999 converts to no time the database takes.
                at = parse_instant(values["t"])
                last_id = uuid.UUID(values["i"])
            except (KeyError, ValueError, TypeError):
                decode_cursor("!")  # raises the same validation problem
                raise
            # A row comparison, not `created_at < t OR (created_at = t AND id < i)`: PostgreSQL
            # starts the scan of the (created_at, id) index at the cursor with it, where the OR form
            # reads and discards every row before the cursor, ever more of them the deeper the page.
            stmt = stmt.where(tuple_(Dispute.created_at, Dispute.id) < tuple_(at, last_id))
        stmt = stmt.order_by(Dispute.created_at.desc(), Dispute.id.desc()).limit(limit + 1)
        rows = list((await self.session.scalars(stmt)).all())
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_cursor({"t": last.created_at.isoformat(), "i": str(last.id)})
        return rows, next_cursor

    async def count(self, filters: ListFilters, principal: Principal, cap: int) -> int:
        """How many cases match, counted up to `cap` (a queue's badge says "99+", not the exact total)."""
        capped = self._filtered(select(Dispute.id), filters, principal).limit(cap).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(capped)) or 0)

    def _filtered(self, stmt: Select[Any], filters: ListFilters, principal: Principal) -> Select[Any]:
        stmt = stmt.where(visible_to(principal))
        if filters.status:
            stmt = stmt.where(Dispute.status.in_(filters.status))
        if filters.category:
            stmt = stmt.where(Dispute.category == filters.category)
        if filters.body_id:
            stmt = stmt.where(Dispute.body_id == filters.body_id)
        if filters.channel:
            stmt = stmt.where(Dispute.channel == filters.channel)
        if filters.attention:
            stmt = stmt.where(Dispute.attention == filters.attention)
        if filters.clock_level:
            stmt = stmt.where(Dispute.clock_level == filters.clock_level)
        if filters.region:
            stmt = stmt.where(Dispute.region_code.startswith(region_prefix(filters.region)))
        if filters.party_index:
            kind, digest = filters.party_index
            column = Party.id_number_index if kind == "id_number" else Party.phone_index
            stmt = stmt.where(exists().where(Party.dispute_id == Dispute.id, column == digest))
        if filters.related_to:
            stmt = stmt.where(Dispute.id != filters.related_to, _SHARES_PARTY).params(
                dispute_id=filters.related_to
            )
        if filters.created_from:
            stmt = stmt.where(Dispute.created_at >= filters.created_from)
        if filters.created_to:
            stmt = stmt.where(Dispute.created_at < filters.created_to)
        if filters.text:
            party_match = exists().where(
                Party.dispute_id == Dispute.id, Party.name.contains(filters.text, autoescape=True)
            )
            matches = [Dispute.case_number.contains(filters.text, autoescape=True), party_match]
            # A description may hold ID and phone numbers, which a caller without pii:read sees
            # masked; searching it for digits would tell them the masked ones a digit at a time.
            if principal.can(Permission.pii_read) or not any(c.isdigit() for c in filters.text):
                matches.append(Dispute.description.contains(filters.text, autoescape=True))
            # A caller quoting the number a referring system gave the case (a 12345 work order)
            # finds it by that number, written as it is stored; a part of one finds nothing.
            with contextlib.suppress(ValueError):
                matches.append(Dispute.external_reference == canonical_reference(filters.text))
            stmt = stmt.where(or_(*matches))
        return stmt

    def party_index(self, kind: str, value: str) -> tuple[str, str]:
        return kind, self.cipher.index(value, kind=kind)

    async def timeline(self, dispute_id: uuid.UUID, principal: Principal) -> list[TimelineEntry]:
        await self.get(dispute_id, principal)
        rows = await self.session.scalars(
            select(TimelineEntry).where(TimelineEntry.dispute_id == dispute_id).order_by(TimelineEntry.seq)
        )
        return list(rows.all())

    async def reasons_withheld(self, entries: list[TimelineEntry], principal: Principal) -> set[int]:
        """The entries (by `seq`) whose reason this caller does not read: to a body, the reasons
        another body gave for ending its assignment (a return, a transfer, ...). The assignment
        history keeps them from other bodies (`GET /assignments`); the timeline says the same
        things, so it keeps them too. The entry itself stays: the case's course is no secret.

        So, too, the center's reason for sending the case to another body than triage advised (an
        assignment's `override_reason`, and the note sent with it): it may name a body or quote the
        parties, and `/assignments` shows it only to the body the case was sent to.

        And, to a caller shown only part of the case's file (a court or commission reads what was
        handed to it: `DocumentService.of_case`), the hand-in or withdrawal of a document it is not
        shown: the file's name, the note and the reason for withdrawing it (a document filed in the
        wrong case names other people) are no more its to read on the timeline than in the list
        (个人信息保护法 Art. 6: no more personal information than the purpose needs)."""
        unshown = await self._documents_not_shown(entries, principal)
        if principal.role not in lifecycle.BODY:
            return unshown
        return unshown | self._body_reasons_withheld(entries, principal)

    async def _documents_not_shown(self, entries: list[TimelineEntry], principal: Principal) -> set[int]:
        papers = [e for e in entries if e.action in DOCUMENT_ENTRIES]
        if not papers:
            return set()
        shown = await documents_shown(self.session, papers[0].dispute_id, principal)
        if shown is None:
            return set()
        named = {str(i) for i in shown}
        return {e.seq for e in papers if (e.payload or {}).get("document_id") not in named}

    def _body_reasons_withheld(self, entries: list[TimelineEntry], principal: Principal) -> set[int]:
        own_body = str(principal.organisation_id) if principal.organisation_id else None
        # Only a sending with something to withhold is marked so: one without reads as it was.
        sent_elsewhere = {
            e.seq
            for e in entries
            if e.action == Action.assign.value
            and (e.payload or {}).get("body_id") != own_body
            and (e.reason or any((e.payload or {}).get(k) for k in ("override_reason", "note")))
        }
        # Whose reason it is: the organisation the actor (a body's member of staff signed in, or its
        # key) acted for, as the entry recorded it; not the one the account has moved to since. An
        # actor of no organisation is not taken for the caller's own.
        return sent_elsewhere | {
            e.seq
            for e in entries
            if e.action in _BODY_ENDINGS
            and e.actor_role in _BODY_ROLE_NAMES
            and (e.actor_organisation_id is None or e.actor_organisation_id != principal.organisation_id)
        }

    async def lookup_status(self, case_number: str, query_code: str) -> Lookup:
        """The case a party looks up with its number and query code (`Lookup.dispute`), or the
        refusal's facts. Wrong codes for one case are counted in the audit trail, from whatever
        addresses they came: once `lookup_max_failures` of them were given within the window since
        the last right one (or the last new code), a further code is examined only when a wait has
        passed since the last wrong one (`lookup.wait_after`, at most `lookup_max_wait_seconds`), and
        one given before is refused unexamined (`Lookup.waiting`): no lock a stranger guessing could
        set on the party. A number that names no case, a wrong code and a code refused during a wait
        are answered alike (`WRONG_CODE`), and take the same steps (the case read, the count read,
        the code hashed and compared once), so that a guesser learns of no case number
        (disputes/lookup.py)."""
        dispute = await self.session.scalar(select(Dispute).where(Dispute.case_number == case_number.strip()))
        free = self.settings.lookup_max_failures
        longest = timedelta(seconds=self.settings.lookup_max_wait_seconds)
        window = timedelta(hours=self.settings.lookup_failure_window_hours)
        # The audit trail's own time, which its records are written in (not the service's clock).
        now = utcnow()
        failures = await recent_failures(
            self.session, dispute.id if dispute else None, now, window, counted_failures(free, longest)
        )
        last = failures.last_at
        # No wait while free wrong codes remain, even after a record stamped a little ahead of this
        # process's clock (by another process's).
        waiting = (
            failures.count >= free
            and last is not None
            and now < last + wait_after(failures.count, free, longest)
        )
        # Hashed and compared once whatever follows: against a hash no code has where there is no
        # case, or where the wait has not passed and the code goes unexamined.
        expected = dispute.query_code_hash if dispute is not None and not waiting else NO_CODE
        right = verify_query_code(case_number, query_code, expected)
        if dispute is None:
            return Lookup(None)
        if waiting:
            return Lookup(None, dispute.id, waiting=True, failures=failures.count)
        if not right:
            return Lookup(None, dispute.id, slowed=failures.count + 1 >= free, failures=failures.count + 1)
        return Lookup(dispute, dispute.id)

    def may_reissue_query_code(self, principal: Principal) -> bool:
        """Whether `principal` may give a case it sees a new query code, as `reissue_query_code` enforces."""
        return principal.role in lifecycle.CENTER

    async def reissue_query_code(
        self, dispute_id: uuid.UUID, data: QueryCodeReissueIn, principal: Principal, if_match: str | None
    ) -> tuple[Dispute, str]:
        """A new query code for a party who lost the receipt, or whose code others may know: the
        center's window gives it, as it gave the first at registration, after checking who asks.
        Only its hash is kept, in place of the old one, which stops working with this change. In any
        state: the lookup answers a declined, closed or archived case too (the route a declined
        party was told to take, how the case ended). Wrong codes given before it no longer count
        (`lookup_status`: no wait), and the alert that asked for it is resolved. The code is
        answered here once; the timeline, the event and the audit trail say that it was given again
        and why, never what it is."""
        if not self.may_reissue_query_code(principal):
            raise Forbidden(
                Text("只有调解中心窗口可以重新生成查询码", "Only the center's window gives a new query code")
            )
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        code = new_query_code()
        dispute.query_code_hash = hash_query_code(dispute.case_number, code)
        await self.record_work(
            dispute,
            "reissue_query_code",
            principal,
            data.note,
            {"cause": data.cause.value},
            "query_code_reissued",
        )
        # Wrong codes before the new one no longer count: the alert asking for it is resolved.
        from mediation.alerts.service import AlertService  # it builds on this service

        await AlertService(self).query_code_reissued(dispute, principal)
        return dispute, code

    # ---- the lifecycle --------------------------------------------------------------------------

    def _context(
        self, dispute: Dispute, principal: Principal, payload: Any, target: Body | None
    ) -> GuardContext:
        return GuardContext(
            dispute=dispute,
            payload=payload,
            principal=principal,
            today=self.clock.today(),
            confirmation_window_days=self.settings.confirmation_window_days,
            labour_mediation_days=self.settings.labour_mediation_days,
            target=target,
        )

    async def act(
        self,
        dispute_id: uuid.UUID,
        action: Action,
        payload: BaseModel,
        principal: Principal,
        if_match: str | None,
    ) -> Dispute:
        """A lifecycle action as a client sends it (the action endpoints, the case page): `apply`,
        but a confirmation request's withdrawal sent again as recorded (a retry whose first answer
        was lost) is answered with the case as it stands, whatever version it names, and writes
        nothing (`unchanged`), as `/v1/handoffs/{id}/withdrawal` answers it
        (HandoffService.withdrawal_sent_again)."""
        if action == Action.withdraw_confirmation:
            from mediation.handoffs.service import HandoffService  # it builds on this service

            assert isinstance(payload, WithdrawConfirmationPayload)
            dispute = await self.get(dispute_id, principal, for_update=True)
            if await HandoffService(self).withdrawal_sent_again(dispute, payload, principal, if_match):
                self.unchanged = True
                return dispute
        return await self.apply(dispute_id, action, payload, principal, if_match)

    async def apply(
        self,
        dispute_id: uuid.UUID,
        action: Action,
        payload: BaseModel,
        principal: Principal,
        if_match: str | None,
    ) -> Dispute:
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        transition = lifecycle.find_transition(dispute.status, action, payload)
        if transition is None:
            raise InvalidTransition(
                Text("案件处于「{s}」, 不能「{n}」({a})", "The case is {se}; cannot {a}").format(
                    s=lifecycle.STATUS_LABELS[Status(dispute.status)].zh,
                    se=dispute.status,
                    n=lifecycle.ACTION_LABELS[action].zh,
                    a=action.value,
                ),
                status_now=dispute.status,
                allowed_actions=lifecycle.allowed_actions(dispute.status, principal.role),
            )
        if principal.role not in transition.roles:
            raise Forbidden(
                Text("「{rn}」不能执行「{n}」({a})", "Role {r} may not {a}").format(
                    rn=ROLE_NAMES[principal.role].zh,
                    r=principal.role.value,
                    n=transition.label.zh,
                    a=action.value,
                ),
                allowed_roles=sorted(r.value for r in transition.roles),
            )
        _refuse_parties_not_of_the_case(dispute, payload)
        target = await self._target(action, payload)
        if action == Action.escalate and dispute.body_id is not None:
            target = await self.session.get(Body, dispute.body_id)  # the tier to go above
        ctx = self._context(dispute, principal, payload, target)
        if lifecycle.G_NO_AGREEMENT_IN_EFFECT in transition.guards:
            ctx.agreement_in_effect = await self._agreement_in_effect(dispute)
        if action == Action.assign:
            ctx.triage = await self.triage.evaluate(dispute)
        elif action == Action.agree:
            ctx.agreement = await self._agreement(payload.agreement_id)  # type: ignore[attr-defined]
            if dispute.mediator_id is not None:
                # A conflict declared since the mediator was named (特邀调解规定 Art. 16): the one
                # who must step aside does not conclude the case.
                ctx.mediator, ctx.conflicts = await self._mediator(dispute, dispute.mediator_id)
        elif action == Action.request_confirmation:
            ctx.competent_courts = await self.ledger.competent_courts(dispute)
            ctx.document_kinds = await self._document_kinds(dispute.id)
        elif action in HANDOFF_DECISIONS or (
            action == Action.refer_litigation and dispute.status == Status.referred_arbitration
        ):
            ctx.handoff = await self.ledger.current(dispute.id)
        elif (
            action in (Action.refer_arbitration, Action.refer_litigation)
            and dispute.status == Status.agreement_signed
        ):
            # After an agreement, a labour dispute goes on only once it was not performed in time
            # (劳动争议调解仲裁法 Art. 15: arbitration; Art. 16: a payment order from the court).
            ctx.unperformed_due = await self._unperformed_due(dispute)
        elif action == Action.archive:
            visit = await self._visit(dispute.id)
            ctx.visit_status = visit.status if visit is not None else None
        if (
            action == Action.withdraw_confirmation
            and principal.role != Role.court
            and ctx.handoff is not None
            and ctx.handoff.status == "accepted"
        ):
            # 民诉法解释 Art. 357: once the court has accepted the application, the parties'
            # withdrawal is theirs to ask and the court's to allow by a ruling. Withdrawn here, the
            # court would be left with a registered case it could no longer answer nor read: the
            # body's or center's withdrawal is recorded as the parties' request, before the court.
            from mediation.handoffs.service import HandoffService  # it builds on this service

            assert isinstance(payload, WithdrawConfirmationPayload)
            await HandoffService(self).request_withdrawal(dispute, ctx.handoff, payload, principal)
            return dispute
        mediator_id = getattr(payload, "mediator_id", None)
        if mediator_id is not None:
            ctx.mediator, ctx.conflicts = await self._mediator(dispute, mediator_id)
        from_status = dispute.status
        holders_before = (dispute.body_id, dispute.handoff_target_id)
        lifecycle.fire(dispute, transition, ctx)
        now = self.clock.now()
        self._apply_effects(dispute, transition, payload, ctx, now)
        if dispute.status != Status.accepted:
            # The case no longer waits at the center for a body: one has it (assigned), or the case
            # ended there, withdrawn (人民调解法 Art. 23) or refused (Art. 17). What no longer waits
            # for a supervisor is the search for a body. A risk stays flagged until its alert is
            # resolved (Art. 25), and an overdue supervision order until it is answered.
            await attention.clear(self, dispute, Attention.triage_exhausted)
        if dispute.status in attention.FINISHED:
            # Nothing is left to supervise (supervision.service): its orders lapse below, and an
            # escalated one no longer keeps the ended case on the supervisors' list.
            await attention.clear(self, dispute, Attention.supervision_overdue)
        _milestones(dispute, action, from_status, now)
        dispute.updated_at = now
        dispute.version += 1
        seq = dispute.version
        data = payload.model_dump(mode="json")
        reason = transition.when.explain(payload) if transition.when is not None else _reason_of(data)
        self._append_timeline(
            dispute, action.value, from_status, dispute.status, principal, reason, data, now, seq
        )
        event: dict[str, Any] = {
            "action": action.value,
            "from": from_status,
            "to": dispute.status,
            "version": seq,
        }
        if dispute.body_id:
            event["body_id"] = str(dispute.body_id)
        if dispute.mediator_id:
            event["mediator_id"] = str(dispute.mediator_id)
        if dispute.handoff_target_id:
            event["handoff_target_id"] = str(dispute.handoff_target_id)
        new_handoff_id = uuid.uuid4() if action in HANDOFF_OPENINGS else None
        event.update(_handoff_named(action, ctx, new_handoff_id))
        record_dispute_event(
            self.session, dispute, transition.event, event, now, holders_before=holders_before
        )
        # The clocks follow the new state before anything is written, so the case's row (state,
        # version and clock summary), its timeline entry and its clocks go in one flush (the event
        # is written once numbered, just before the commit: events.service).
        for started in await self.clocks.follow(dispute, now, handed_on=action in lifecycle.HANDING_ON):
            if started.name == ClockName.sign_for:
                dispute.sign_for_due_on = started.due_on
            elif started.name == ClockName.follow_up_visit:
                self._open_visit(dispute, started.due_on, now)
        if action == Action.archive:
            await self._settle_visit(dispute, payload, principal, now)
        await self._flush_versioned()
        if from_status == Status.mediating and dispute.status != Status.mediating:
            await self._cancel_scheduled_sessions(dispute, now)
        await self._route(dispute, action, payload, principal, ctx, now)
        from mediation.supervision.service import SupervisionService  # it builds on this service

        if dispute.body_id != holders_before[0]:
            # The case's open supervision orders follow it to the body that has it now.
            await SupervisionService(self).follow_the_case(dispute, holders_before[0], principal)
        if dispute.status in attention.FINISHED and from_status not in attention.FINISHED:
            # The center's follow-up ends here: its open orders close with the case (随案办结), in
            # this transaction, so no order outlives the transition that ended it.
            await SupervisionService(self).lapse_with_the_case(dispute, principal)
        await self._handoffs(dispute, action, payload, principal, ctx, now, new_handoff_id)
        if self.documents is not None:
            await self._paperwork(dispute, action, principal, ctx, now)
        return dispute

    async def _cancel_scheduled_sessions(self, dispute: Dispute, now: datetime) -> None:
        """Mediation at the body ended (an agreement, a failure, a withdrawal) or the case left it
        (returned, transferred, escalated): the sittings it had still to hold will not take place,
        and a mediator's list of sittings must not summon the parties to them."""
        from mediation.agreements.models import MediationSession  # agreements build on this service

        rows = await self.session.scalars(
            select(MediationSession).where(
                MediationSession.dispute_id == dispute.id, MediationSession.status == "scheduled"
            )
        )
        for row in rows:
            row.status, row.updated_at, row.cancelled_at = "cancelled", now, now
            row.version += 1
        await self._flush_versioned()

    async def _route(
        self,
        dispute: Dispute,
        action: Action,
        payload: Any,
        principal: Principal,
        ctx: GuardContext,
        now: datetime,
    ) -> None:
        """The assignment loop: record each sending to a body and how it ended; when a case comes
        back and no candidate is left, flag it to a supervisor instead of sending it round again."""
        if action == Action.assign:
            assert ctx.triage is not None and ctx.target is not None
            taken = ctx.triage.rank_of(ctx.target.id)
            rules = await self.triage.rules()
            self.session.add(
                Assignment(
                    dispute_id=dispute.id,
                    body_id=ctx.target.id,
                    assigned_at=now,
                    assigned_by=principal.id,
                    sign_by=dispute.sign_for_due_on or ctx.today,
                    rank=taken.rank if taken and ctx.triage.decision != "decline" else None,
                    override_reason=payload.override_reason,
                    recommendation=snapshot(ctx.triage, rules, ctx.target.id),
                )
            )
            return
        ending = ASSIGNMENT_ENDINGS.get(action)
        if action == Action.sign_for:
            open_ = await self.triage.open_assignment(dispute.id)
            if open_ is not None:
                open_.signed_for_at = now
        elif action == Action.fail:
            # Ended before the body signed for it (a party refused mediation, 人民调解法 Art. 17):
            # that sending ends with the case. One signed for stays the record of who mediated.
            open_ = await self.triage.open_assignment(dispute.id)
            if open_ is not None and open_.signed_for_at is None:
                open_.outcome = TerminationReason.party_refused.value
                open_.ended_at = now
                open_.outcome_reason = getattr(payload, "note", None)
                await self.session.flush()
        if ending is None:
            return
        open_ = await self.triage.open_assignment(dispute.id)
        if open_ is not None:
            lapsed = action == Action.return_ and principal.role == Role.system
            open_.outcome = "lapsed" if lapsed else ending
            open_.ended_at = now
            open_.outcome_reason = getattr(payload, "reason", None)
            await self.session.flush()
        # Escalated to a tier where no body takes this kind of case, it would wait unseen as well.
        if action in (Action.return_, Action.transfer, Action.escalate):
            outcome = await self.triage.evaluate(dispute)
            if not outcome.candidates:
                # Whatever triage advises (even declining), a case no body is left to take must
                # reach a supervisor rather than wait unseen. A case flagged for a risk keeps that
                # flag: it is the more urgent reason, and already before a supervisor (the event
                # below still says triage is exhausted).
                attention.flag(dispute, Attention.triage_exhausted)
                if action == Action.escalate:
                    # The escalation's own event tells subscribers where the case went; one event
                    # per change of the case keeps the feed in step with its versions.
                    await self._flush_versioned()
                    return
                record_dispute_event(
                    self.session,
                    dispute,
                    "triage_exhausted",
                    {
                        "action": action.value,
                        "version": dispute.version,
                        "decision": "exhausted" if outcome.excluded else "no_candidate",
                        "excluded_body_ids": [str(b.id) for b, _ in outcome.excluded],
                    },
                    now,
                )
                await self._flush_versioned()

    async def _handoffs(
        self,
        dispute: Dispute,
        action: Action,
        payload: Any,
        principal: Principal,
        ctx: GuardContext,
        now: datetime,
        new_handoff_id: uuid.UUID | None,
    ) -> None:
        """Open the handoff record when the case is handed on (as `new_handoff_id`, the id its
        event already names), and settle it with the target's decision, so the court- and
        commission-facing API and the case always agree."""
        today = ctx.today
        handoff = None
        if action in HANDOFF_OPENINGS:
            assert ctx.target is not None
            if ctx.handoff is not None:
                # 劳动争议调解仲裁法 Art. 29, 43: the commission let its period pass undecided and the
                # applicant sues instead; the referral ends there, and an answer posted to it late is
                # refused as settled.
                article = lifecycle.labour_route_to_court(dispute, today)
                lapsed = {"reason": f"逾期未作出决定, 申请人向人民法院起诉 ({article})", "article": article}
                await self.ledger.settle(ctx.handoff, "lapsed", lapsed, today, now)
                await self.session.flush()
            assert new_handoff_id is not None
            handoff = await self.ledger.open(
                dispute,
                handoff_kind(action, ctx.target),
                ctx.target.id,
                payload,
                principal.id,
                today,
                now,
                handoff_id=new_handoff_id,
            )
            if action == Action.request_confirmation:
                late = lifecycle.confirmation_uncertain(dispute, ctx.confirmation_window_days, today)
                if late is not None:
                    handoff.warnings = [*handoff.warnings, confirmation_window_warning(late.last_day)]
        elif action in HANDOFF_DECISIONS and ctx.handoff is not None:
            handoff = ctx.handoff
            data = payload.model_dump(mode="json")
            if action == Action.confirm:
                await self.ledger.settle(handoff, "confirmed", data, payload.ruled_on, now)
            elif action == Action.reject:
                await self.ledger.settle(handoff, "rejected", data, payload.ruled_on, now)
            elif action == Action.not_accept:
                await self.ledger.settle(handoff, "not_accepted", data, today, now)
            elif action == Action.withdraw_confirmation:
                await self.ledger.settle(handoff, "withdrawn", data, today, now)
            elif action == Action.record_outcome:
                # Only an accepted referral has an outcome: one not accepted is `not_accept`.
                await self.ledger.settle(handoff, "concluded", data, payload.decided_on, now)
        elif action == Action.remediate:
            # The agreement the court did not confirm is set aside, and the follow-ups of its
            # performance end with it (民事诉讼法 Art. 206): `AgreementService.set_aside`.
            from mediation.agreements.service import AgreementService  # it builds on this service

            await AgreementService(self).set_aside(dispute, principal)
        elif action == Action.agree:
            # Mediation ends with the agreement recorded: a written draft of an oral agreement in
            # effect can no longer be signed, and is closed with it: `AgreementService.close_drafts`.
            from mediation.agreements.service import AgreementService  # it builds on this service

            await AgreementService(self).close_drafts(dispute)
        elif action == Action.record_performance and dispute.agreement:
            await self._perform_all(uuid.UUID(str(dispute.agreement["id"])), payload, principal)
        if handoff is not None:
            await self.session.flush()
            dispute.handoff = handoff_summary(handoff, today)
            await self._flush_versioned()
        if action in (Action.refer_arbitration, Action.refer_litigation, Action.record_outcome, Action.close):
            # Gone to arbitration or to court, or closed: the body no longer follows the agreement's
            # performance (人民调解法 Art. 31), and its open follow-ups end with the case's stay
            # here: `AgreementService.hand_over`. The follow-up visit stays for archiving (Art. 27).
            from mediation.agreements.service import AgreementService  # it builds on this service

            await AgreementService(self).hand_over(dispute, principal)

    async def _perform_all(self, agreement_id: uuid.UUID, payload: Any, principal: Principal) -> None:
        """登记履行完毕: every obligation still open is recorded as performed on that day."""
        rows = await self.session.scalars(
            select(Obligation).where(
                Obligation.agreement_id == agreement_id, Obligation.status != "performed"
            )
        )
        now = self.clock.now()
        for obligation in rows.all():
            obligation.status = "performed"
            obligation.performed_on = payload.performed_on
            obligation.performance_note = payload.note
            obligation.performance_recorded_by = principal.id
            # Nothing is left to chase: the body's open follow-ups for it are done.
            tasks = await self.session.scalars(
                select(FollowUp).where(FollowUp.obligation_id == obligation.id, FollowUp.status == "open")
            )
            for task in tasks.all():
                task.status = "done"
                task.done_at = now
                task.done_by = principal.id
                task.result = {"outcome": "performed", "performed_on": payload.performed_on.isoformat()}

    def _open_visit(self, dispute: Dispute, due_on: date, now: datetime) -> None:
        """Closing a case puts its follow-up visit (回访) in the inbox of the body that handled it,
        or of the center when no body did (人民调解法 Art. 27; domain.md §4.4: close the loop)."""
        self.session.add(
            FollowUp(
                dispute_id=dispute.id,
                body_id=dispute.body_id,
                kind="visit",
                reason="结案回访: 了解协议履行情况和当事人满意度",
                due_on=due_on,
                status="open",
                raised_at=now,
                attempts=[],
            )
        )

    async def _visit(self, dispute_id: uuid.UUID) -> FollowUp | None:
        return await self.session.scalar(
            select(FollowUp)
            .where(FollowUp.dispute_id == dispute_id, FollowUp.kind == "visit")
            .order_by(FollowUp.raised_at.desc())
            .limit(1)
        )

    async def _settle_visit(
        self, dispute: Dispute, payload: Any, principal: Principal, now: datetime
    ) -> None:
        """A visit result (or why none was possible) sent with `archive` completes the visit task,
        while it is still open. A visit already recorded, made or recorded as impossible, stands as
        it was recorded (人民调解法 Art. 27: the file keeps the visit that closed the loop): the
        archive's result changes neither it nor the satisfaction rating it gave the case."""
        visit = await self._visit(dispute.id)
        if visit is not None and visit.status != "open":
            return
        if payload.follow_up is not None:
            dispute.satisfaction = payload.follow_up.satisfaction
            status, result = "done", {"outcome": "visited", **payload.follow_up.model_dump(mode="json")}
        elif payload.visit_impossible_reason is not None:
            status, result = (
                "impossible",
                {"outcome": "impossible", "reason": payload.visit_impossible_reason},
            )
        else:
            return
        if visit is None:
            return
        visit.status, visit.result = status, result
        visit.done_at, visit.done_by = now, principal.id

    async def _agreement_in_effect(self, dispute: Dispute) -> int | None:
        """The number of the agreement version that took effect while the case is being mediated and
        is not yet recorded on it (`agree`); None when there is none, or the case is not mediating."""
        if dispute.status != Status.mediating:
            return None
        query = select(func.max(Agreement.number)).where(
            Agreement.dispute_id == dispute.id, Agreement.status == "effective"
        )
        recorded = (dispute.agreement or {}).get("id")
        if recorded is not None:
            query = query.where(Agreement.id != uuid.UUID(str(recorded)))
        number: int | None = await self.session.scalar(query)
        return number

    async def _agreement(self, agreement_id: uuid.UUID) -> Agreement | None:
        return await self.session.scalar(
            select(Agreement)
            .where(Agreement.id == agreement_id)
            .options(selectinload(Agreement.obligations), selectinload(Agreement.signatures))
        )

    async def _unperformed_due(self, dispute: Dispute) -> int:
        """Obligations of the agreement in force whose day has passed and that are not performed."""
        agreement_id = (dispute.agreement or {}).get("id")
        if agreement_id is None:
            return 0
        today = self.clock.today()
        days = await self.session.scalars(
            select(Obligation.due_on).where(
                Obligation.agreement_id == uuid.UUID(str(agreement_id)),
                Obligation.status != "performed",
                Obligation.due_on < today,
            )
        )
        return sum(1 for day in days.all() if past_its_day(day, today))

    async def _document_kinds(self, dispute_id: uuid.UUID) -> set[str]:
        rows = await self.session.scalars(
            select(Document.kind)
            .where(Document.dispute_id == dispute_id, Document.status == "active")
            .distinct()
        )
        return set(rows.all())

    async def _paperwork(
        self, dispute: Dispute, action: Action, principal: Principal, ctx: GuardContext, now: datetime
    ) -> None:
        """The documents an action produces, stored with their hash; a handoff freezes its dossier."""
        assert self.documents is not None
        if action == Action.agree:
            assert ctx.agreement is not None
            await self.documents.generate_html(
                dispute,
                principal,
                DocumentKind.agreement,
                f"人民调解协议书-第{ctx.agreement.number}版",
                agreement_html(ctx.agreement, dispute),
                now,
            )
        elif action == Action.decline:
            # The party is told in writing why the center does not take the case in and which
            # route to take instead (mediation never blocks those routes, 人民调解法 Art. 3).
            await self.documents.generate(
                dispute,
                principal,
                DocumentKind.decline_notice,
                DECLINE_NOTICE_TITLE,
                decline_notice_lines(dispute, dispute.outcome, ctx.today),
                now,
            )
        elif action in HANDOFF_OPENINGS:
            assert dispute.handoff is not None and dispute.handoff_target_id is not None
            kind = str(dispute.handoff["kind"])
            # Who applied for the confirmation together (民事诉讼法 Art. 205): the request names them.
            applicants = {str(i) for i in getattr(ctx.payload, "applicant_party_ids", None) or []}
            lines = handoff_lines(dispute, applicants)
            paper = await self.documents.generate(
                dispute, principal, HANDOFF_KINDS[kind], PAPER_TITLES[kind], lines, now
            )
            await self.documents.freeze(dispute, kind, dispute.handoff_target_id, now, paper)

    async def mediator_conflicts(self, dispute: Dispute) -> list[str]:
        """The relations the case's own mediator declared with it or with one of its parties."""
        if dispute.mediator_id is None:
            return []
        return (await self._mediator(dispute, dispute.mediator_id))[1]

    async def _mediator(self, dispute: Dispute, mediator_id: uuid.UUID) -> tuple[Mediator | None, list[str]]:
        """The mediator, and the relations it declared with this case or with one of its parties.
        Another body's mediator comes with none: what it declared is its body's, not this one's."""
        mediator = await self.session.get(Mediator, mediator_id)
        if mediator is None or mediator.body_id != dispute.body_id:
            return mediator, []
        rows = await self.session.scalars(
            select(MediatorConflict.relation).where(
                MediatorConflict.mediator_id == mediator_id, _conflict_with(dispute)
            )
        )
        return mediator, list(rows.all())

    async def eligible_mediators(self, dispute: Dispute) -> list[Mediator]:
        """The mediators `choose_mediator` would take for the case now: the active ones of the body
        holding it, but for those who declared a relation with the case or with one of its parties
        (特邀调解规定 Art. 16)."""
        if dispute.body_id is None:
            return []
        conflicted = select(MediatorConflict.mediator_id).where(_conflict_with(dispute))
        rows = await self.session.scalars(
            select(Mediator)
            .where(
                Mediator.body_id == dispute.body_id,
                Mediator.active.is_(True),
                Mediator.id.not_in(conflicted),
            )
            .order_by(Mediator.name, Mediator.id)
        )
        return list(rows.all())

    async def _target(self, action: Action, payload: BaseModel) -> Body | None:
        name = TARGET_FIELD.get(action)
        if name is None:
            return None
        return await self.session.get(Body, getattr(payload, name))

    def _apply_effects(
        self, dispute: Dispute, transition: Transition, payload: Any, ctx: GuardContext, now: datetime
    ) -> None:
        """Set the columns each action changes. Runs after the machine moved, inside the transaction."""
        action, today = transition.action, ctx.today
        if action == Action.assign:
            dispute.body_id = payload.body_id
            dispute.mediator_id = None
            dispute.mediator_name = None
        elif action == Action.sign_for:
            if ctx.mediator is not None:
                dispute.mediator_id = ctx.mediator.id
                dispute.mediator_name = ctx.mediator.name
            dispute.sign_for_due_on = None
            # Mediation began when a body first received the case: a transfer, a return or an
            # escalation hands it on, and the next body's sign-for starts no new mediation. The
            # labour window counts from that first receipt (劳动争议调解仲裁法 Art. 14), which a
            # transfer must not put back. Remediation after a rejected confirmation starts anew.
            if dispute.mediation_started_on is None:
                dispute.mediation_started_on = today
        elif action in (Action.return_, Action.transfer):
            dispute.body_id = None
            dispute.mediator_id = None
            dispute.mediator_name = None
            dispute.sign_for_due_on = None
        elif action == Action.escalate:
            next_tier = lifecycle.escalation_tier(ctx)
            assert next_tier is not None  # guarded by has_next_tier
            dispute.tier = next_tier
            dispute.escalated_tier = next_tier
            dispute.body_id = None
            dispute.mediator_id = None
            dispute.mediator_name = None
        elif action == Action.agree:
            assert ctx.agreement is not None
            dispute.agreement = agreement_summary(ctx.agreement)
            dispute.agreement_effective_on = ctx.agreement.effective_on
        elif action == Action.request_confirmation:
            dispute.handoff_target_id = payload.court_id
        elif action == Action.refer_arbitration:
            dispute.handoff_target_id = payload.commission_id
        elif action == Action.refer_litigation:
            dispute.handoff_target_id = payload.court_id
        elif action == Action.not_accept and transition.target != Status.confirmation_rejected:
            # Not accepted and back with the center: treated as withdrawn (民诉法解释 Art. 357) or
            # not the competent court, to apply again; a referral a commission or court did not
            # accept, for the road its notice leaves open (劳动争议调解仲裁法 Art. 29: to sue;
            # 民事诉讼法 Art. 127: arbitration, the competent court). Nothing is before the court
            # or commission any more: it no longer reads the case nor receives its events, as
            # after a withdrawal (个人信息保护法 Art. 6).
            dispute.handoff_target_id = None
        elif action == Action.remediate:
            # The rejected agreement stays on record; the next one is drafted as a new version.
            dispute.agreement = None
            dispute.agreement_effective_on = None
            dispute.handoff_target_id = None
            dispute.handoff = None
            dispute.mediation_started_on = today
        elif action in (
            Action.decline,
            Action.withdraw,
            Action.fail,
            Action.record_performance,
            Action.record_outcome,
            Action.withdraw_confirmation,
        ):
            dispute.outcome = {**(dispute.outcome or {}), action.value: payload.model_dump(mode="json")}
            if action == Action.withdraw_confirmation:
                # The request withdrawn (or treated as withdrawn, 民诉法解释 Art. 357), nothing is
                # before the court any more: the case is back with the body that follows the
                # agreement's performance (人民调解法 Art. 31), and the court no longer reads it
                # nor receives its events (个人信息保护法 Art. 6, 51: minimum necessary). It keeps
                # the request and the withdrawal on its list, and learns of the withdrawal by its
                # event; applied for again, the case is addressed to the court then chosen.
                dispute.handoff_target_id = None
        elif action == Action.archive:
            dispute.outcome = {**(dispute.outcome or {}), "follow_up": payload.model_dump(mode="json")}
        if transition.target in (Status.closed, Status.declined) and dispute.closed_at is None:
            dispute.closed_at = now

    async def record_consent(
        self,
        dispute_id: uuid.UUID,
        party_id: uuid.UUID,
        data: ConsentIn,
        principal: Principal,
        if_match: str | None,
    ) -> Dispute:
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        if principal.role not in (lifecycle.CENTER | lifecycle.BODY):
            raise Forbidden(Text("该角色不能记录当事人意愿", "This role may not record consent"))
        if dispute.status not in CONSENT_STATES:
            raise InvalidTransition(
                Text("调解已结束, 不能再记录意愿", "Mediation is over; consent can no longer be recorded"),
                status_now=dispute.status,
                allowed_actions=lifecycle.allowed_actions(dispute.status, principal.role),
            )
        party = next((p for p in dispute.parties if p.id == party_id), None)
        if party is None:
            raise NotFound(Text("该案没有这个当事人", "No such party in this case"))
        if data.decision == Consent.refused and (in_effect := await self._agreement_in_effect(dispute)):
            # 人民调解法 Art. 29-31: mediation ended in an agreement that binds the parties; a refusal
            # to be mediated (Art. 17) comes too late to undo it, and would leave the case neither
            # agreed nor ended (`no_agreement_in_effect`). A party disputing it goes to court (Art. 32).
            raise Conflict(
                Text(
                    "第{n}版调解协议已经生效, 对双方当事人具有法律约束力, 不能再记录拒绝调解; "
                    "请记录「达成协议」 (人民调解法第二十九条、第三十一条)",
                    "Version {n} of the agreement has taken effect and binds the parties; a refusal of "
                    "mediation is no longer recorded: record the agreement (人民调解法 Art. 29, 31)",
                ).format(n=in_effect),
                code="agreement_in_effect",
                article=lifecycle.AGREEMENT_BINDS,
            )
        party.consent = data.decision
        now = self.clock.now()
        dispute.updated_at = now
        dispute.version += 1
        seq = dispute.version
        payload = {"party_id": str(party_id), "decision": data.decision.value}
        self._append_timeline(
            dispute, "record_consent", dispute.status, dispute.status, principal, data.note, payload, now, seq
        )
        record_dispute_event(
            self.session,
            dispute,
            "consent_recorded",
            {"action": "record_consent", **payload, "version": seq},
            now,
        )
        await self._flush_versioned()
        return dispute

    async def choose_mediator(
        self, dispute_id: uuid.UUID, data: MediatorChoiceIn, principal: Principal, if_match: str | None
    ) -> Dispute:
        """The body names (or changes) the mediator who handles the case, after the conflict check."""
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        if principal.role not in lifecycle.BODY:
            raise Forbidden(
                Text("只有承办组织可以指定调解员", "Only the body handling the case names its mediator")
            )
        if dispute.status not in MEDIATOR_STATES:
            raise InvalidTransition(
                Text(
                    "案件处于「{s}」, 不能指定调解员", "The case is {se}; no mediator can be named now"
                ).format(s=lifecycle.STATUS_LABELS[Status(dispute.status)].zh, se=dispute.status),
                status_now=dispute.status,
                allowed_actions=lifecycle.allowed_actions(dispute.status, principal.role),
            )
        ctx = self._context(dispute, principal, data, None)
        ctx.mediator, ctx.conflicts = await self._mediator(dispute, data.mediator_id)
        refusals = lifecycle.G_MEDIATOR.check(ctx)
        if refusals:
            raise GuardFailed(summary(refusals), reasons=[r.as_dict() for r in refusals])
        assert ctx.mediator is not None
        dispute.mediator_id = ctx.mediator.id
        dispute.mediator_name = ctx.mediator.name
        now = self.clock.now()
        dispute.updated_at = now
        dispute.version += 1
        payload = {"mediator_id": str(ctx.mediator.id), "mediator_name": ctx.mediator.name}
        self._append_timeline(
            dispute,
            "assign_mediator",
            dispute.status,
            dispute.status,
            principal,
            data.note,
            payload,
            now,
            dispute.version,
        )
        record_dispute_event(
            self.session,
            dispute,
            "mediator_assigned",
            {"action": "assign_mediator", "version": dispute.version, "mediator_id": str(ctx.mediator.id)},
            now,
        )
        await self._flush_versioned()
        return dispute

    # ---- corrections ----------------------------------------------------------------------------

    async def correct(
        self, dispute_id: uuid.UUID, data: DisputeCorrectionIn, principal: Principal, if_match: str | None
    ) -> tuple[Dispute, dict[str, Any]]:
        """更正、补充登记信息: the registered facts and parties' details corrected or completed
        (个人信息保护法 Art. 46), and parties found later added, with the reason on the timeline.
        Answers the case and what changed (field names and party ids only, never the values)."""
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        status = Status(dispute.status)
        self._refuse_correcting(dispute, status, principal)
        locked = await self._parties_on_agreement(dispute)
        parties = {p.id: p for p in dispute.parties}
        places = {p.id: place for place, p in enumerate(dispute.parties)}
        added = data.add_parties or []
        # The case's parties as corrected, in the order the case read lists them, those added after:
        # the list an agent's `represents` counts in.
        roles = [p.role for p in dispute.parties] + [p.role.value for p in added]
        after = max((p.position for p in dispute.parties), default=-1) + 1
        # Each place in that list as the position its party has, or will have once added.
        positions = [p.position for p in dispute.parties] + [after + j for j in range(len(added))]
        changes: list[tuple[Party, dict[str, Any]]] = []
        seen: set[uuid.UUID] = set()
        for i, fix in enumerate(data.parties or []):
            party = parties.get(fix.party_id)
            if party is None:
                raise ValidationFailed.of_field(
                    f"parties[{i}].party_id",
                    "not_a_party",
                    Text("不是本案当事人", "Not a party of this case"),
                )
            if party.id in seen:
                raise ValidationFailed.of_field(
                    f"parties[{i}].party_id",
                    "duplicate_party",
                    Text("同一当事人只能列一次", "Each party is corrected in one entry"),
                )
            seen.add(party.id)
            # Left out stays; given as null (a detail the party may lack at intake) is cleared.
            given = fix.model_dump(exclude={"party_id"}, exclude_unset=True)
            blind = not principal.can(Permission.pii_read)
            if blind and (refused := self._refuse_blind_numbers(given)):
                # Whoever reads a number masked cannot tell that it is wrong: clearing it, or
                # replacing a document number, is for staff who see it (个人信息保护法 Art. 51:
                # access by need), as the page offers. Refused before the number is compared with
                # the one on record: "nothing to correct" for the stored number and another answer
                # for any other would confirm a guess at a number this caller only sees masked.
                raise Forbidden(
                    Text(
                        "您只能看到脱敏后的证件号码和电话, 不能清除它们, 也不能更正证件号码; "
                        "请由能查看完整号码的工作人员核实后更正",
                        "You see the numbers masked: you cannot clear them or correct a document "
                        "number; staff who read them in full may check and correct them",
                    ),
                    code="pii_read_required",
                    field=f"parties[{i}].{refused}",
                )
            self._refuse_particulars(party, places[party.id], given, roles, f"parties[{i}]")
            changed = self._party_changes(party, given, i, positions)
            if blind and given.get("phone") is not None:
                # A new phone (the party's own word that it changed) is for any corrector, and is
                # stored as given even when it is the number on record: told "nothing to correct"
                # only for the stored one, a caller who sees it masked could test guesses at it.
                changed["phone"] = given["phone"]
            if not changed:
                continue
            if party.id in locked and {"name", "id_type", "id_number"} & set(changed):
                # 人民调解法 Art. 29: the agreement states the parties who signed it; another name
                # or document number on the case would no longer be the person the agreement binds.
                raise Conflict(
                    Text(
                        "调解协议已签署或生效, 协议所列当事人的姓名(名称)和证件号码不能更正; "
                        "联系电话和地址仍可更正, 其他信息须重新调解后更正 (人民调解法第二十九条)",
                        "An agreement names this party and is signed or in effect: its name and document "
                        "number cannot change (phone and address still can); re-mediate to change them "
                        "(人民调解法 Art. 29)",
                    ),
                    code="party_on_agreement",
                    field=f"parties[{i}]",
                    article=lifecycle.AGREEMENT_BINDS,
                )
            changes.append((party, changed))
        if added and (status not in ADDING_PARTIES_STATES or locked):
            raise Conflict(
                Text(
                    "调解协议已签署或生效, 或调解已结束, 不能再追加当事人",
                    "An agreement is signed or in effect, or mediation is over: no party can be added now",
                ),
                code="parties_fixed",
                status_now=dispute.status,
            )
        if not principal.can(Permission.pii_read):
            for j, new in enumerate(added):
                if new.id_number is not None:
                    # The same person cannot be listed twice, so a number equal to a party's would be
                    # refused and any other taken: one answer per guess at a number this caller only
                    # reads masked (个人信息保护法 Art. 51). A new party's document number, like a
                    # corrected one, is for staff who read the numbers in full.
                    raise Forbidden(
                        Text(
                            "您只能看到脱敏后的证件号码, 不能为追加的当事人填写证件号码; "
                            "请先登记姓名和电话, 由能查看完整号码的工作人员补充",
                            "You see document numbers masked: you cannot give an added party's document "
                            "number; add the name and phone, and staff who read the numbers in full may "
                            "complete it",
                        ),
                        code="pii_read_required",
                        field=f"add_parties[{j}].id_number",
                    )
        for j, new in enumerate(added):
            # Its kind and role were checked with it (PartyIn); whom it acts for needs the case.
            if new.represents is not None and (
                wrong := represents_refusal(roles, len(dispute.parties) + j, new.represents)
            ):
                raise ValidationFailed.of_field(f"add_parties[{j}].represents", *wrong)
        self._refuse_repeated_parties(dispute, changes, added)
        facts_changed = data.description is not None and data.description != dispute.description
        people = self._people_corrected(dispute, data, added)
        if not changes and not added and not facts_changed and people is None:
            raise ValidationFailed.of_field(
                "reason",
                "nothing_to_correct",
                Text("所填内容与登记信息相同, 没有需要更正的内容", "Nothing differs from what is registered"),
            )
        # Early warning reads the corrected facts as it reads them at intake (人民调解法 Art. 25):
        # words no risk alert of the case has named yet raise one (or join the one open).
        from mediation.alerts.service import AlertService  # it builds on this service

        alerts = AlertService(self)
        risk: list[RiskHit] = []
        if facts_changed:
            assert data.description is not None
            risk = await alerts.new_risk_hits(dispute, data.description)
            dispute.description = data.description
        for party, changed in changes:
            self._set_party(party, changed, positions)
        new_parties = [self._new_party(after + j, p) for j, p in enumerate(added)]
        for party, new in zip(new_parties, added, strict=True):
            # Counted in the case's list (`represents`), stored as the party's own position.
            party.represents_position = positions[new.represents] if new.represents is not None else None
        dispute.parties.extend(new_parties)
        now = self.clock.now()
        dispute.updated_at = now
        dispute.version += 1
        # What changed, by field name and party id: the values are personal data and stay in the
        # parties' rows (个人信息保护法 Art. 51), never on the timeline, in events or the audit trail.
        corrected: dict[str, Any] = {
            "description": facts_changed,
            "parties": [{"party_id": str(p.id), "fields": sorted(c)} for p, c in changes],
            "added_parties": [{"party_id": str(p.id), "role": p.role} for p in new_parties],
        }
        became_group = False
        if people is not None:
            corrected["people_involved"] = {"from": dispute.people_involved, "to": people}
            dispute.people_involved = people
        # Decided again as at intake, from the count and the parties the case now lists, when either
        # may move what the threshold counts: a new count, or parties found later where it counts the
        # workers' side (劳动争议调解仲裁法 Art. 7: an employer found later is not one of them). A
        # count corrected down clears the flag.
        # Agents added are counted nowhere: they decide nothing again.
        counted_added = involved_parties(new_parties) > 0
        group = await self._group_after_correction(dispute, people is not None, counted_added)
        if group is not None:
            corrected["group"] = group.record()
            became_group = group.is_group and not dispute.is_group
            dispute.is_group = group.is_group
        if (risk or became_group) and (moved := await self.raise_tier_for_risk(dispute, risk=bool(risk))):
            corrected["tier"] = moved
        self._append_timeline(
            dispute,
            "correct",
            dispute.status,
            dispute.status,
            principal,
            data.reason,
            corrected,
            now,
            dispute.version,
        )
        record_dispute_event(
            self.session,
            dispute,
            "corrected",
            {"action": "correct", "version": dispute.version, **corrected},
            now,
        )
        await self._flush_versioned()
        if risk:
            # After the correction's own entry and event: the alert follows from what it wrote.
            await alerts.flag_risk(dispute, risk, "correction")
        return dispute, corrected

    async def _group_after_correction(
        self, dispute: Dispute, counted_again: bool, parties_added: bool
    ) -> GroupDecision | None:
        if not counted_again and not parties_added:
            return None
        rules = (await self.triage.rules()).rules
        if not counted_again and rules.group_count_for(dispute.category) != GroupCount.workers:
            return None  # the same people counted: nothing to decide again
        return rules.group_decision(dispute.category, dispute.people_involved, dispute.parties)

    @staticmethod
    def _people_corrected(dispute: Dispute, data: DisputeCorrectionIn, added: list[PartyIn]) -> int | None:
        """涉及人数 after the correction, or None when it stays: the number given, never below the
        parties the case will list (agents act for parties and are not counted, as at intake); parties
        added beyond the number registered raise it to theirs."""
        parties = involved_parties([*dispute.parties, *added])
        if data.people_involved is not None and data.people_involved < parties:
            raise ValidationFailed.of_field(
                "people_involved",
                "people_involved_below_parties",
                people_below_parties(data.people_involved, parties, corrected=True),
            )
        people = data.people_involved or max(dispute.people_involved, parties)
        return None if people == dispute.people_involved else people

    async def raise_tier_for_risk(self, dispute: Dispute, risk: bool = True) -> dict[str, str] | None:
        """A case still at the center found at risk (or, `risk` False, found a group dispute by a
        corrected count) takes the tier intake would have given it, as for risk cases (人民调解法
        Art. 25), never a lower one than it has. Answers the move (`from`, `to`) for the change to
        say, as the routing level is what the center and the bodies go by; None when the case is with
        a body (the risk alert, or the supervisor reading the flag, escalates it if need be) or
        already at that tier."""
        if dispute.status not in (Status.registered, Status.accepted):
            return None
        facts = dataclasses.replace(facts_of(dispute), is_risk=risk or dispute.is_risk)
        required, _ = required_tier(facts, (await self.triage.rules()).rules)
        raised = higher_tier(Tier(dispute.tier), required)
        if raised == dispute.tier:
            return None
        moved = {"from": str(dispute.tier), "to": raised.value}
        dispute.tier = raised
        return moved

    def may_record_consent(self, dispute: Dispute, principal: Principal) -> bool:
        """Whether `principal` may record a party's consent or refusal now (what `record_consent`
        enforces, but for an agreement in effect, which refuses only a refusal)."""
        return (
            principal.role in (lifecycle.CENTER | lifecycle.BODY)
            and Status(dispute.status) in CONSENT_STATES
            and principal.can(Permission.cases_write)
        )

    def may_choose_mediator(self, dispute: Dispute, principal: Principal) -> bool:
        """Whether `principal` may name the case's mediator now (what `choose_mediator` enforces,
        but for the mediator chosen): the body holding the case, while it mediates it."""
        return (
            principal.role in lifecycle.BODY
            and Status(dispute.status) in MEDIATOR_STATES
            and principal.can(Permission.cases_write)
        )

    def may_correct(self, dispute: Dispute, principal: Principal) -> bool:
        """Whether `principal` may correct the case's registration now (what `correct` enforces)."""
        try:
            self._refuse_correcting(dispute, Status(dispute.status), principal)
        except ProblemError:
            return False
        return principal.can(Permission.cases_write)

    async def may_add_parties(self, dispute: Dispute) -> bool:
        """Whether `correct` takes parties found later now (`parties_fixed` otherwise)."""
        if Status(dispute.status) not in ADDING_PARTIES_STATES:
            return False
        return not await self._parties_on_agreement(dispute)

    @staticmethod
    def _refuse_correcting(dispute: Dispute, status: Status, principal: Principal) -> None:
        if status in CORRECTION_CLOSED:
            raise InvalidTransition(
                Text(
                    "案件处于「{s}」, 卷宗已成为记录, 不能再更正登记信息",
                    "The case is {se}; its file is a record and can no longer be corrected",
                ).format(s=lifecycle.STATUS_LABELS[status].zh, se=status.value),
                code="case_closed",
                status_now=status.value,
                allowed_actions=lifecycle.allowed_actions(status, principal.role),
            )
        if status in CORRECTION_HANDED_OFF:
            raise InvalidTransition(
                Text(
                    "案件已移送法院或仲裁机构 (「{s}」), 卷宗以移送时为准, 不能更正登记信息",
                    "The case is with a court or commission ({se}); its file stands as handed over",
                ).format(s=lifecycle.STATUS_LABELS[status].zh, se=status.value),
                code="case_handed_off",
                status_now=status.value,
                allowed_actions=lifecycle.allowed_actions(status, principal.role),
            )
        # The same principals who act on the case at its stage: the center while it is at the
        # center, the body that holds it while it is with a body, a supervisor throughout.
        role = principal.role
        if role == Role.supervisor:
            return
        with_body = status in CORRECTION_WITH_BODY or (
            status in CORRECTION_ENDED and dispute.body_id is not None
        )
        if role in lifecycle.BODY and with_body:
            return
        if role == Role.clerk and status not in CORRECTION_WITH_BODY:
            return
        raise Forbidden(
            Text(
                "该角色现在不能更正本案的登记信息 (案件在调解组织时由其更正, 在中心时由中心更正)",
                "This role may not correct the case now: the body holding it, or the center while "
                "it is at the center, corrects it",
            ),
        )

    async def _parties_on_agreement(self, dispute: Dispute) -> set[uuid.UUID]:
        """The parties an agreement names once it is signed or in effect: every principal of a
        version in effect (Art. 29, 30: an oral one names them too), and every principal of a
        draft someone has signed, whose text (its content hash) names them all."""
        signed_or_effective = await self.session.scalar(
            select(func.count(Agreement.id)).where(
                Agreement.dispute_id == dispute.id,
                or_(
                    Agreement.status == "effective",
                    and_(
                        Agreement.status == "draft",
                        exists().where(Signature.agreement_id == Agreement.id),
                    ),
                ),
            )
        )
        if not signed_or_effective:
            return set()
        return {p.id for p in dispute.parties if p.role != PartyRole.agent}

    @staticmethod
    def _refuse_blind_numbers(given: dict[str, Any]) -> str | None:
        """The number a caller who reads numbers masked may not give in a correction: a document
        number at all, a phone as null (cleared)."""
        if "id_number" in given:
            return "id_number"
        if "phone" in given and given["phone"] is None:
            return "phone"
        return None

    @staticmethod
    def _refuse_particulars(
        party: Party, place: int, given: dict[str, Any], roles: list[str], at: str
    ) -> None:
        """The intake rules on a party's particulars (`PartyIn._particulars_of_its_kind`,
        `DisputeCreate._agents_act_for_parties`) for a correction of the party on record."""
        if given.get("legal_representative") is not None and party.kind != PartyKind.organisation:
            raise ValidationFailed.of_field(f"{at}.legal_representative", *NOT_AN_ORGANISATION)
        target = given.get("represents")
        if target is None:
            return
        if party.role != PartyRole.agent:
            raise ValidationFailed.of_field(f"{at}.represents", *NOT_AN_AGENT)
        if (refused := represents_refusal(roles, place, target)) is not None:
            raise ValidationFailed.of_field(f"{at}.represents", *refused)

    def _party_changes(
        self, party: Party, given: dict[str, Any], i: int, positions: list[int]
    ) -> dict[str, Any]:
        """The given fields that differ from the party's row, as they would be stored (`represents`
        as the place in the case's list it is given as: `positions` maps it)."""
        changed: dict[str, Any] = {}
        for field_name in ("name", "address", "region_code", "service_address", "legal_representative"):
            if field_name in given and given[field_name] != getattr(party, field_name):
                changed[field_name] = given[field_name]
        if "represents" in given:
            target = given["represents"]
            if (positions[target] if target is not None else None) != party.represents_position:
                changed["represents"] = target
        # A number given null is cleared, if there is one; the schema never lets a name be null.
        if "phone" in given:
            phone = given["phone"]
            index = self.cipher.index(phone, kind="phone") if phone is not None else None
            if index != party.phone_index:
                changed["phone"] = phone
        id_type = given.get("id_type")
        number = given.get("id_number")
        if number is not None:
            assert id_type is not None  # the schema requires the type with the number
            same = (
                id_type == party.id_type
                and self.cipher.index(number, kind="id_number") == party.id_number_index
            )
            if not same:
                changed["id_type"], changed["id_number"] = id_type, number
        else:
            if "id_number" in given and party.id_number_enc is not None:
                changed["id_number"] = None
            if "id_type" in given and id_type != party.id_type:
                if party.id_number_enc is not None and "id_number" not in changed:
                    # The number was checked against its type: a new type goes with the number
                    # again, and the type is cleared only with the number it describes.
                    message = (
                        Text("更正证件类型时须同时填写证件号码", "Give id_number with a new id_type")
                        if id_type is not None
                        else Text(
                            "清除证件类型时须同时清除证件号码",
                            "Clear id_number too: it is checked against its id_type",
                        )
                    )
                    raise ValidationFailed.of_field(f"parties[{i}].id_number", "id_number_missing", message)
                changed["id_type"] = id_type
        new_type = changed.get("id_type")
        if party.kind == PartyKind.organisation and new_type not in (None, IdType.uscc, IdType.other):
            raise ValidationFailed.of_field(
                f"parties[{i}].id_type",
                "invalid_id_type",
                Text("单位当事人的证件应为统一社会信用代码", "An organisation is identified by its USCC"),
            )
        return changed

    def _set_party(self, party: Party, changed: dict[str, Any], positions: list[int]) -> None:
        """Writes the corrected fields, the personal numbers encrypted, masked and indexed as at
        intake (`_new_party`): search by party finds the new number and no longer the old one."""
        row_id = str(party.id)
        for field_name in (
            "name",
            "address",
            "region_code",
            "id_type",
            "service_address",
            "legal_representative",
        ):
            if field_name in changed:
                setattr(party, field_name, changed[field_name])
        if "represents" in changed:
            target = changed["represents"]
            party.represents_position = positions[target] if target is not None else None
        if "name" in changed and party.kind == PartyKind.organisation:
            party.name_key = organisation_key(changed["name"])
        # A number cleared (None) goes with its mask and its keyed index: nothing finds it.
        if "id_number" in changed:
            number = changed["id_number"]
            party.id_number_enc = (
                self.cipher.encrypt(number, table="parties", column="id_number", row_id=row_id)
                if number is not None
                else None
            )
            party.id_number_masked = mask_id_number(number) if number is not None else None
            party.id_number_index = (
                self.cipher.index(number, kind="id_number") if number is not None else None
            )
        if "phone" in changed:
            phone = changed["phone"]
            party.phone_enc = (
                self.cipher.encrypt(phone, table="parties", column="phone", row_id=row_id)
                if phone is not None
                else None
            )
            party.phone_masked = mask_phone(phone) if phone is not None else None
            party.phone_index = self.cipher.index(phone, kind="phone") if phone is not None else None

    def _refuse_repeated_parties(
        self, dispute: Dispute, changes: list[tuple[Party, dict[str, Any]]], added: list[PartyIn]
    ) -> None:
        """The intake rule (`DisputeCreate._each_party_once`) over the party list as corrected: one
        person is one party, recognised by the document number. Told at the entry that makes the
        repeat, naming the rows, never the number."""
        fixes = {p.id: (c, i) for i, (p, c) in enumerate(changes)}
        rows: list[tuple[str, str, str | None, str | None, str | None]] = []  # role, name, type, index, path
        for party in dispute.parties:
            change, i = fixes.get(party.id, ({}, -1))
            id_type = change.get("id_type", party.id_type)
            number = change.get("id_number")
            index = (
                (self.cipher.index(number, kind="id_number") if number is not None else None)
                if "id_number" in change
                else party.id_number_index
            )
            path = f"parties[{i}].id_number" if "id_number" in change or "id_type" in change else None
            rows.append((party.role, change.get("name", party.name), id_type, index, path))
        for j, new in enumerate(added):
            index = self.cipher.index(new.id_number, kind="id_number") if new.id_number else None
            type_value = new.id_type.value if new.id_type else None
            rows.append((new.role, new.name, type_value, index, f"add_parties[{j}].id_number"))
        first: dict[tuple[str, str], int] = {}
        for position, (role, _, id_type, index, path) in enumerate(rows):
            if role == PartyRole.agent or id_type is None or index is None:
                continue
            seen = first.setdefault((str(id_type), index), position)
            if seen == position or (path is None and rows[seen][4] is None):
                continue  # not made by this correction
            a, b = rows[seen], rows[position]
            message = Text(
                "同一人不能两次列为当事人: {ra} {na} 与 {rb} {nb} 证件号码相同",
                "One person is listed as two parties: {ea} {na} and {eb} {nb} have the same document number",
            ).format(
                ra=PARTY_ROLE_NAMES[PartyRole(a[0])].zh,
                rb=PARTY_ROLE_NAMES[PartyRole(b[0])].zh,
                ea=a[0],
                eb=b[0],
                na=a[1],
                nb=b[1],
            )
            raise ValidationFailed.of_field(path or a[4] or "parties", "party_repeated", message)

    # ---- related and linked cases ---------------------------------------------------------------

    async def related(self, dispute: Dispute, principal: Principal, limit: int = 20) -> list[RelatedCase]:
        """Other cases the caller can see that share a party with this one: the same ID or phone
        number (by the keyed index), or the same respondent organisation. Names alone never match."""
        kind, params = scope_params(principal)
        rows = list(
            (
                await self.session.scalars(_related_cases(kind, limit), {"dispute_id": dispute.id, **params})
            ).all()
        )
        linked = await self._linked_ids(dispute.id) if rows else set()
        return [
            RelatedCase(other, _matched_on(dispute.parties, other.parties), other.id in linked)
            for other in rows
        ]

    async def _linked_ids(self, dispute_id: uuid.UUID) -> set[uuid.UUID]:
        rows = await self.session.execute(_LINKS_OF, {"dispute_id": dispute_id})
        return {a if b == dispute_id else b for a, b in rows.all()}

    async def link(
        self, dispute_id: uuid.UUID, data: CaseLinkIn, principal: Principal, if_match: str | None = None
    ) -> tuple[CaseLink, Dispute]:
        """Links the case to another; both timelines say so and both versions move. `if_match`: the
        case's ETag, when the caller names the version it linked against (not required: see
        `check_if_match_given`); the other case's version is not the caller's to name."""
        if principal.role not in lifecycle.CENTER:
            raise Forbidden(Text("只有中心可以关联案件", "Only the center links cases"))
        await self.get(dispute_id, principal)
        if data.dispute_id == dispute_id:
            raise ValidationFailed.of_field(
                "dispute_id", "self_link", Text("不能关联案件自身", "A case cannot be linked to itself")
            )
        first, second = sorted([dispute_id, data.dispute_id])
        # Both cases locked in id order, so two clerks linking the same pair cannot deadlock.
        cases = {d: await self.get(d, principal, for_update=True) for d in (first, second)}
        check_if_match_given(if_match, cases[dispute_id].version)
        if data.dispute_id in await self._linked_ids(dispute_id):
            raise Conflict(Text("两案已关联", "The cases are already linked"), code="already_linked")
        now = self.clock.now()
        link = CaseLink(
            first_id=first,
            second_id=second,
            kind=data.kind,
            note=data.note,
            created_by=principal.id,
            created_at=now,
        )
        self.session.add(link)
        self._on_both_timelines(cases, "link", "case_linked", data.kind, data.note, principal, now)
        await self._flush_versioned()
        return link, cases[data.dispute_id]

    async def unlink(
        self,
        dispute_id: uuid.UUID,
        other_id: uuid.UUID,
        data: CaseUnlinkIn,
        principal: Principal,
        if_match: str | None = None,
    ) -> tuple[CaseLink, Dispute, Dispute]:
        """Removes the link between the case and `other_id`, made by mistake: the row goes, so the
        pair may be linked again later; both timelines keep the link and now its removal, with the
        reason, and both versions move. Answers the removed link, the case and the other case.

        A pair not linked is 404 `link_not_found` whatever `if_match` says, judged under both locks:
        a removal sent again after a lost answer learns the link is gone, not that the case moved
        on (which its own removal did). `if_match`, when given, is then held to the case's version,
        as linking holds it; the other case's version is not the caller's to name."""
        if principal.role not in lifecycle.CENTER:
            raise Forbidden(Text("只有中心可以解除案件关联", "Only the center unlinks cases"))
        await self.get(dispute_id, principal)
        if other_id == dispute_id:
            raise ValidationFailed.of_field(
                "other_id",
                "self_link",
                Text("案件不能与自身关联, 也就无从解除", "A case is never linked to itself"),
                location="path",
            )
        first, second = sorted([dispute_id, other_id])
        # Both cases locked in id order, as linking locks them: a link and its removal, or two
        # removals, of the same pair wait for each other and cannot deadlock.
        cases = {d: await self.get(d, principal, for_update=True) for d in (first, second)}
        link = await self.session.scalar(
            select(CaseLink).where(CaseLink.first_id == first, CaseLink.second_id == second)
        )
        if link is None:
            raise NotFound(
                Text("两案未关联 (或关联已解除)", "The cases are not linked (or were unlinked already)"),
                code="link_not_found",
            )
        check_if_match_given(if_match, cases[dispute_id].version)
        now = self.clock.now()
        await self.session.delete(link)
        self._on_both_timelines(cases, "unlink", "case_unlinked", link.kind, data.reason, principal, now)
        await self._flush_versioned()
        return link, cases[dispute_id], cases[other_id]

    def _on_both_timelines(
        self,
        cases: dict[uuid.UUID, Dispute],
        action: str,
        event: str,
        kind: str,
        text: str | None,
        principal: Principal,
        now: datetime,
    ) -> None:
        """A link made or removed, on both cases (locked by the caller): each one's version moves,
        its timeline names the other case, and its event says which."""
        (first, second) = cases
        for this, other in ((first, second), (second, first)):
            case = cases[this]
            case.updated_at = now
            case.version += 1
            payload = {"linked_dispute_id": str(other), "case_number": cases[other].case_number, "kind": kind}
            self._append_timeline(
                case, action, case.status, case.status, principal, text, payload, now, case.version
            )
            record_dispute_event(
                self.session,
                case,
                event,
                {"action": action, "version": case.version, "linked_dispute_id": str(other), "kind": kind},
                now,
            )

    async def links(self, dispute_id: uuid.UUID, principal: Principal) -> list[tuple[CaseLink, Dispute]]:
        await self.get(dispute_id, principal)
        other_id = case((CaseLink.first_id == dispute_id, CaseLink.second_id), else_=CaseLink.first_id)
        rows = await self.session.execute(
            select(CaseLink, Dispute)
            .join(Dispute, Dispute.id == other_id)
            .where(
                or_(CaseLink.first_id == dispute_id, CaseLink.second_id == dispute_id), visible_to(principal)
            )
            .order_by(CaseLink.created_at)
        )
        return [(link, other) for link, other in rows.all()]

    # ---- clocks ---------------------------------------------------------------------------------

    async def overdue_assignments(self) -> list[tuple[uuid.UUID, int, date | None]]:
        """Cases still waiting for the body's sign-for after its last day."""
        rows = await self.session.execute(
            select(Dispute.id, Dispute.version, Dispute.sign_for_due_on).where(
                Dispute.status == Status.assigned, Dispute.sign_for_due_on < self.clock.today()
            )
        )
        return [(i, v, d) for i, v, d in rows.all()]

    async def available_actions(self, dispute: Dispute, principal: Principal) -> list[dict[str, Any]]:
        out = []
        transitions = lifecycle.transitions_from(dispute.status)
        in_effect = (
            await self._agreement_in_effect(dispute)
            if any(lifecycle.G_NO_AGREEMENT_IN_EFFECT in t.guards for t in transitions)
            else None
        )
        for t in transitions:
            ctx = self._context(dispute, principal, None, None)
            ctx.agreement_in_effect = in_effect
            blocked = lifecycle.evaluate(t, ctx, with_payload=False)
            out.append(
                {
                    "action": t.action.value,
                    "label": t.label.get(),
                    "to": t.target.value,
                    "roles": sorted(r.value for r in t.roles),
                    "allowed_for_caller": principal.role in t.roles and not blocked,
                    "blocked_by": [r.as_dict() for r in blocked],
                    "requires": [
                        {"name": g.name, "description": g.description.get(), "article": g.article}
                        for g in t.guards
                        if g.concerns(dispute)
                    ],
                    "when": (
                        {
                            "name": t.when.name,
                            "description": t.when.description.get(),
                            "article": t.when.article,
                        }
                        if t.when
                        else None
                    ),
                    "href": f"/v1/disputes/{dispute.id}/actions/{t.action.value}",
                }
            )
        return out

    async def record_work(
        self,
        dispute: Dispute,
        action: str,
        principal: Principal,
        reason: str | None,
        payload: dict[str, Any],
        event_type: str,
        *,
        timeline_only: dict[str, Any] | None = None,
    ) -> None:
        """Work on the case that does not move its state (a session held, a court's acceptance, an
        obligation overdue): one timeline entry and one event, under the case's version check.
        `timeline_only` is what the timeline keeps and the event does not carry: free text, which
        may name people, stays with the case, read with the case's own rights."""
        now = self.clock.now()
        dispute.updated_at = now
        dispute.version += 1
        entry = {**payload, **(timeline_only or {})}
        self._append_timeline(
            dispute, action, dispute.status, dispute.status, principal, reason, entry, now, dispute.version
        )
        record_dispute_event(
            self.session, dispute, event_type, {"action": action, "version": dispute.version, **payload}, now
        )
        await self._flush_versioned()

    async def record_correction(self, dispute: Dispute) -> None:
        """A correction by the system to what the case shows that is no work on the case and leaves
        its timeline as it is (a deadline made certain on an archived file, a level shown by mistake
        taken back): the case's version moves all the same, as its ETag names what it shows, so a
        copy held by a reader (If-None-Match, RFC 9110 §13.1.2) is answered in full again, not 304
        with the old body. Under the version check, as any change. The audit trail records it (the
        caller's `AuditEntry`)."""
        dispute.updated_at = self.clock.now()
        dispute.version += 1
        await self._flush_versioned()

    async def follow_clock_end(self, dispute: Dispute, case_clock: CaseClock, before: date) -> None:
        """The dates kept apart from a clock follow its end wherever it moves (a resumption, an
        extension, a recount): the sign-for date, and the open follow-up visit's due date in the
        inbox of whoever visits. One already set apart from the clock's end stays where it is."""
        due = case_clock.due_on
        if due == before:
            return
        if case_clock.name == ClockName.sign_for and dispute.sign_for_due_on == before:
            dispute.sign_for_due_on = due
        elif case_clock.name == ClockName.follow_up_visit:
            visit = await self._visit(dispute.id)
            if visit is not None and visit.status == "open" and visit.due_on == before:
                visit.due_on = due

    async def recount_clock(self, clock_id: uuid.UUID) -> bool:
        """Count a running clock again on the calendar as it now stands (a holiday schedule was
        loaded: clocks.calendar). A changed last day, or a provisional one now settled, goes on the
        case's timeline; the sign-for date and an open follow-up visit move with their clocks."""
        # The case first, then its clock: the order every transition takes them in.
        dispute_id = await self.session.scalar(select(CaseClock.dispute_id).where(CaseClock.id == clock_id))
        if dispute_id is None:
            return False
        dispute = await self.session.get(Dispute, dispute_id, with_for_update=True)
        case_clock = await self.session.get(CaseClock, clock_id, with_for_update=True, populate_existing=True)
        if dispute is None or case_clock is None or case_clock.stopped_at is not None:
            return False
        now = self.clock.now()
        reported_overdue = case_clock.overdue_fired_at is not None
        before = self.clocks.recount(case_clock, now)
        if before is None:
            return False
        due = case_clock.due_on
        # Reported overdue on the provisional day and not overdue on the real one: that report no
        # longer stands, and the case counts as overdue (in the statistics) only if another report
        # of its clocks still does. That is read from their histories: an extension or a pause
        # after a report moves a clock's end and clears its mark, but the report stands.
        withdrawn = reported_overdue and case_clock.overdue_fired_at is None
        # A party window's end was recorded as the window closing, never as the center's overdue.
        window = self.clocks.party_window(case_clock)
        if withdrawn and dispute.ever_overdue and not window:
            dispute.ever_overdue = await self.clocks.reported_overdue(dispute.id)
        await self.follow_clock_end(dispute, case_clock, before)
        await self.clocks.summarise(dispute)
        reason = await recount_reason(
            clock_rules.CLOCK_LABELS.get(case_clock.name, case_clock.name), before, due, self.session
        )
        payload = {
            "clock": case_clock.name,
            "due_on": due.isoformat(),
            "previous_due_on": before.isoformat(),
            "provisional": case_clock.provisional,
            "source": case_clock.source,
            "overdue_withdrawn": withdrawn,
        }
        if withdrawn:
            reason += WINDOW_REOPENED if window else OVERDUE_WITHDRAWN
        await self.record_work(dispute, "clock_recounted", SYSTEM, reason, payload, "clock_recounted")
        return True

    # ---- shared ---------------------------------------------------------------------------------

    def _append_timeline(
        self,
        dispute: Dispute,
        action: str,
        from_status: str | None,
        to_status: str | None,
        principal: Principal,
        reason: str | None,
        payload: dict[str, Any],
        at: datetime,
        seq: int,
    ) -> None:
        self.session.add(
            TimelineEntry(
                dispute_id=dispute.id,
                seq=seq,
                action=action,
                from_status=from_status,
                to_status=to_status,
                actor_role=principal.role.value,
                actor_id=principal.id,
                actor_organisation_id=principal.organisation_id,
                reason=reason,
                payload=payload,
                occurred_at=at,
            )
        )

    async def _flush_versioned(self) -> None:
        try:
            await self.session.flush()
        except (StaleDataError, IntegrityError) as exc:
            # Another request changed the case between our read and our write.
            raise StaleVersion(
                Text("案件已被他人修改, 请刷新后重试", "The case changed meanwhile; reload and retry")
            ) from exc


# Appended to a recount's timeline entry when the deadline had been reported overdue on its old day.
OVERDUE_WITHDRAWN = "; 此前的超期提示不再成立"
WINDOW_REOPENED = "; 此前记录的期限届满不再成立"

# How a mediation ended. A labour case that leaves mediation for arbitration once its fifteen days
# passed without agreement ended without one (劳动争议调解仲裁法 Art. 14), as a failed mediation.
# While mediation may still begin or go on, a party's consent or refusal (人民调解法 Art. 17;
# 特邀调解规定 Art. 11 for a court's delegation, which waits for every party's consent) is recorded.
CONSENT_STATES = frozenset(
    {Status.registered, Status.accepted, Status.assigned, Status.mediating, Status.confirmation_rejected}
)

MEDIATION_ENDINGS = {
    Action.agree: "agreement",
    Action.fail: "failed",
    Action.withdraw: "withdrawn",
    Action.refer_arbitration: "failed",
}
CONFIRMATION_RESULTS = {
    Action.confirm: "confirmed",
    Action.reject: "rejected",
    Action.not_accept: "not_accepted",
    Action.withdraw_confirmation: "withdrawn",
}


def _conflict_with(dispute: Dispute) -> ColumnElement[bool]:
    """A declared conflict (回避, 特邀调解规定 Art. 16) that bars a mediator from the case: one
    declared with the case itself, or with a person who is one of its parties (by the keyed index
    of the ID number, never the number)."""
    indexes = [p.id_number_index for p in dispute.parties if p.id_number_index]
    person = MediatorConflict.id_number_index.in_(indexes) if indexes else false()
    return or_(MediatorConflict.dispute_id == dispute.id, person)


def _refuse_parties_not_of_the_case(dispute: Dispute, payload: BaseModel) -> None:
    """The parties an action names are the case's own, each named once. A joint application for
    confirmation (民事诉讼法 Art. 205) listing someone who is no party, or one party twice, would
    reach the court as applicants who are not; a withdrawal (of the case, or of the request:
    民诉法解释 Art. 357) is by a party of the case or by no one named."""
    parties = {p.id for p in dispute.parties}
    errors: list[dict[str, str]] = []

    def refuse(field: str, code: str, message: Text) -> None:
        errors.append({"field": field, "location": "body", "code": code, "message": message.get()})

    seen: set[uuid.UUID] = set()
    for i, party_id in enumerate(getattr(payload, "applicant_party_ids", None) or []):
        if party_id not in parties:
            refuse(
                f"applicant_party_ids[{i}]", "not_a_party", Text("不是本案当事人", "Not a party of this case")
            )
        elif party_id in seen:
            refuse(f"applicant_party_ids[{i}]", "duplicate_party", Text("当事人重复", "Named more than once"))
        seen.add(party_id)
    party_id = getattr(payload, "party_id", None)
    if party_id is not None and party_id not in parties:
        refuse("party_id", "not_a_party", Text("不是本案当事人", "Not a party of this case"))
    if errors:
        names = ", ".join(e["field"] for e in errors[:5])
        raise ValidationFailed(Text(f"以下字段有误: {names}", f"Invalid fields: {names}"), errors=errors)


def _milestones(dispute: Dispute, action: Action, from_status: str, now: datetime) -> None:
    """Stage boundaries for the statistics. A re-mediated case keeps its first start and counts
    the mediation that ended last; a re-requested confirmation counts its last decision."""
    if action == Action.accept and dispute.accepted_at is None:
        dispute.accepted_at = now
    elif action == Action.sign_for and dispute.mediation_started_at is None:
        dispute.mediation_started_at = now
    elif action in MEDIATION_ENDINGS and from_status == Status.mediating:
        dispute.mediation_ended_at = now
        dispute.mediation_result = MEDIATION_ENDINGS[action]
    elif action == Action.request_confirmation:
        dispute.confirmation_requested_at = now
        dispute.confirmation_decided_at = None
        dispute.confirmation_result = None
    elif action in CONFIRMATION_RESULTS and from_status == Status.confirmation_pending:
        # A labour commission's non-acceptance (not_accept from referred_arbitration) decides no
        # confirmation request.
        dispute.confirmation_decided_at = now
        dispute.confirmation_result = CONFIRMATION_RESULTS[action]


_THEIRS, _MINE = aliased(Party), aliased(Party)
# Some party of the case has the same ID number or phone number as a party of the case
# `dispute_id` (a bound parameter). Built once: an alias made anew adapts every column anew.
# An agent (代理人: a legal-aid lawyer, a relative) acts for a party and is none: a lawyer in many
# unrelated cases makes them no repeat of each other, so agents never match.
_SHARES_PARTY = exists().where(
    _THEIRS.dispute_id == Dispute.id,
    _MINE.dispute_id == bindparam("dispute_id"),
    _THEIRS.role != PartyRole.agent,
    _MINE.role != PartyRole.agent,
    or_(
        and_(_THEIRS.id_number_index.is_not(None), _THEIRS.id_number_index == _MINE.id_number_index),
        and_(_THEIRS.phone_index.is_not(None), _THEIRS.phone_index == _MINE.phone_index),
        # The same respondent company, when one side has no credit code on file: its normalised
        # name. Two different credit codes are two companies, whatever their names.
        and_(
            _THEIRS.name_key.is_not(None),
            _THEIRS.name_key == _MINE.name_key,
            _THEIRS.role == "respondent",
            _MINE.role == "respondent",
            or_(_THEIRS.id_number_index.is_(None), _MINE.id_number_index.is_(None)),
        ),
    ),
)


@functools.cache
def _related_cases(kind: str, limit: int) -> Select[Dispute]:
    """The caller's cases that share a party with the case `dispute_id`, newest first."""
    return (
        select(Dispute)
        .where(scope_clause(kind), Dispute.id != bindparam("dispute_id"), _SHARES_PARTY)
        .options(selectinload(Dispute.parties))
        .order_by(Dispute.created_at.desc(), Dispute.id.desc())
        .limit(limit)
    )


_LINKS_OF = select(CaseLink.first_id, CaseLink.second_id).where(
    or_(CaseLink.first_id == bindparam("dispute_id"), CaseLink.second_id == bindparam("dispute_id"))
)


@dataclass(frozen=True, slots=True)
class RelatedCase:
    dispute: Dispute
    matched_on: list[str]
    linked: bool


def _matched_on(mine: list[Party], theirs: list[Party]) -> list[str]:
    found: set[str] = set()
    for a in mine:
        for b in theirs:
            if PartyRole.agent in (a.role, b.role):
                continue  # acts for a party, is none (_SHARES_PARTY)
            same_org = a.kind == b.kind == PartyKind.organisation and a.role == b.role == "respondent"
            if a.id_number_index and a.id_number_index == b.id_number_index:
                found.add("respondent_organisation" if same_org else "id_number")
            if a.phone_index and a.phone_index == b.phone_index:
                found.add("phone")
            one_uncoded = not (a.id_number_index and b.id_number_index)
            if same_org and one_uncoded and a.name_key and a.name_key == b.name_key:
                found.add("respondent_organisation")
    return sorted(found)


def _reason_of(data: dict[str, Any]) -> str | None:
    for key in ("reason", "note", "reason_code", "ground"):
        if data.get(key):
            return str(data[key])
    return None
