"""The handoff record and its legal clocks, kept in step with the case's lifecycle.

Each kind of handoff has the target's deadline to decide on acceptance and, for some, to decide
the matter, with at most one extension. Periods count by 民事诉讼法 Art. 85 (`period_end`), or in
working days where the step's rule says so; a step counted in working days keeps its count
(`StepCount`), so a holiday schedule loaded later counts it again. Either way, a last day reached
across a year whose holiday schedule is not known yet (weekends and the statutory holidays only)
is provisional until it is,
as a case clock's is (clocks.engine), and is looked at again then (`Ledger.on_days_off`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.agreements.models import Obligation
from mediation.audit.chain import lock_head as lock_journal
from mediation.bodies.models import Body, BodyJurisdiction, BodyKind
from mediation.clocks import calendar, engine
from mediation.clocks.counted import WorkingDaysDue, recounted
from mediation.clocks.models import CalendarDay, CalendarYear
from mediation.clocks.rules import ClockName, ClockRules, HandoffKind, Unit
from mediation.core.db import HOOKS_BEFORE_COMMIT
from mediation.core.i18n import Text
from mediation.core.legal_time import PeriodEnd, period_end, working_days_end, years_end
from mediation.disputes.enums import Category, ConfirmationCourtBasis
from mediation.disputes.models import Dispute
from mediation.handoffs.answers import KIND_LABELS as KIND_LABELS
from mediation.handoffs.models import Handoff

# The handoffs a request made, numbered just before it commits (number_handoffs).
NEW_HANDOFFS = "mediation.handoffs.new"


async def number_handoffs(session: AsyncSession) -> int:
    """Give the handoffs this transaction made their places in the list (`Handoff.seq`); call last,
    just before commit. Under the journal head, which every writer holds from here (or its audit
    record) until its commit, the highest number plus one is this transaction's alone and numbers
    become visible in the order they were given: a court walking the list by number never steps
    over a handoff that commits later (a sequence would number at insert, not at commit)."""
    made = [h for h in session.info.pop(NEW_HANDOFFS, []) if h in session]
    if not made:
        return 0
    await lock_journal(session)
    last = (await session.scalar(select(func.max(Handoff.seq)))) or 0
    for handoff in made:
        last += 1
        handoff.seq = last
    return len(made)


@dataclass(frozen=True, slots=True)
class Periods:
    accept_days: int
    accept_article: str
    decide_days: int | None = None
    extension_days: int | None = None
    decide_article: str | None = None
    accept_unit: Unit = Unit.days
    decide_unit: Unit = Unit.days


def periods(rules: ClockRules, kind: str) -> Periods:
    """The target's deadlines for this kind of handoff, from the clock rules (`handoff_accept`,
    `handoff_decide`): e.g. a court accepts a confirmation request within 3 days and decides within
    15, extendable by 10 (法释〔2011〕5号 Art. 4-5); a labour commission 5 and 45 (+15) days
    (劳动争议调解仲裁法 Art. 29, 43); a suit is registered within 7 days (民事诉讼法 Art. 126)."""
    accept = rules.for_handoff(ClockName.handoff_accept, kind)
    decide = rules.for_handoff(ClockName.handoff_decide, kind)
    assert accept is not None  # the rule file is validated to have one for every kind
    return Periods(
        accept_days=accept.length,
        accept_article=accept.source,
        decide_days=decide.length if decide else None,
        extension_days=decide.extension.max if decide and decide.extension else None,
        decide_article=decide.source if decide else None,
        accept_unit=accept.unit,
        decide_unit=decide.unit if decide else Unit.days,
    )


ARBITRATION_KIND = {
    BodyKind.labour_arbitration_commission: "labour_arbitration",
    BodyKind.commercial_arbitration_commission: "commercial_arbitration",
    BodyKind.rural_land_arbitration_commission: "rural_land_arbitration",
}

OPEN = ("pending", "accepted")
LIMITATION_WARNING_DAYS = 30


@dataclass(frozen=True)
class ArbitrationLimitation:
    """An arbitration's own limitation period, warned of when a case is referred to it."""

    years: int
    article: str
    code: str  # the warnings' code prefix: `<code>_near`, `<code>_expired`
    name: Text  # the period, as the warnings' messages name it

    def said(self, zh: str, en: str, **values: object) -> Text:
        """A message naming the period, each language with its own name for it."""
        return Text(zh.format(name=self.name.zh, **values), en.format(name=self.name.en, **values))


# 劳动争议调解仲裁法 Art. 27: one year. 农村土地承包经营纠纷调解仲裁法 Art. 18: two years. Both run from
# when the party knew or should have known of the infringement.
LABOUR_LIMITATION = ArbitrationLimitation(
    1,
    "劳动争议调解仲裁法 第二十七条",
    "labour_limitation",
    Text("一年仲裁时效", "one-year limitation for labour arbitration"),
)
LAND_LIMITATION = ArbitrationLimitation(
    2,
    "农村土地承包经营纠纷调解仲裁法 第十八条",
    "land_limitation",
    Text("二年仲裁时效", "two-year limitation for rural land-contract arbitration"),
)
LIMITATIONS = {limitation.code: limitation for limitation in (LABOUR_LIMITATION, LAND_LIMITATION)}


class StepCount(WorkingDaysDue):
    """The open step's last day when its rule counts working days (e.g. 农村土地承包经营纠纷调解仲裁法
    Art. 23: 五个工作日), counted, and counted again once the schedule of a year it reaches is
    loaded, as a supervision order's answer date is (clocks.counted): only ever later than the day
    the target was told. The handoff keeps one such count, its open step's (models.Handoff); this
    carries it to and from the step's own column."""

    def __init__(
        self,
        due_on: date | None = None,
        counted_from: date | None = None,
        working_days: int | None = None,
        provisional: bool = False,
    ) -> None:
        if due_on is not None:
            self.due_on = due_on
        self.counted_from, self.working_days, self.provisional = counted_from, working_days, provisional

    @classmethod
    def of(cls, handoff: Handoff) -> StepCount | None:
        """The open step's count; None for a step counted in days, or when no step is open."""
        due_on = open_step_due(handoff)
        if due_on is None or handoff.counted_from is None or handoff.working_days is None:
            return None
        return cls(due_on, handoff.counted_from, handoff.working_days, handoff.provisional)

    def onto(self, handoff: Handoff) -> None:
        if handoff.status == "pending":
            handoff.accept_due_on = self.due_on
        else:
            handoff.decide_due_on = self.due_on
        handoff.counted_from, handoff.working_days = self.counted_from, self.working_days
        handoff.provisional = self.provisional


def count_step(handoff: Handoff, start: date, days: int, unit: Unit) -> date:
    """The last day of the step now open, `days` after `start`; a count in working days is kept
    with the handoff, one in days is not counted again (its last day moves off a day off only:
    `Ledger.on_days_off`)."""
    if unit != Unit.working_days:
        return _in_days(handoff, period_end(start, days))
    return _keep_count(handoff, start, days, working_days_end(start, days))


def _in_days(handoff: Handoff, end: PeriodEnd) -> date:
    """Keep no count for a last day counted in days (民事诉讼法 Art. 85: moved off a rest day or
    holiday to the next working day), but say whether it is sure: counted across a year whose
    holiday schedule is not known yet, it was moved off weekends and the statutory holidays only (1 January
    among them, 全国年节及纪念日放假办法 Art. 2), and a day the notice adds there may move it later. Returns it."""
    no_step_count(handoff)
    handoff.provisional = not end.calendar_known
    return end.last_day


def _keep_count(handoff: Handoff, start: date, days: int, end: PeriodEnd) -> date:
    """Keep the count of a step counted in working days (`StepCount`), to count it again once the
    schedule of a year it reaches is loaded; returns its last day."""
    handoff.counted_from, handoff.working_days = start, days
    handoff.provisional = not end.calendar_known
    return end.last_day


def no_step_count(handoff: Handoff) -> None:
    handoff.counted_from = handoff.working_days = None
    handoff.provisional = False


def open_step_due(handoff: Handoff) -> date | None:
    """The last day of the open step: acceptance while pending, the decision once accepted."""
    if handoff.status == "pending":
        return handoff.accept_due_on
    if handoff.status == "accepted":
        return handoff.decide_due_on
    return None


def open_step_due_column() -> ColumnElement[date]:
    """`open_step_due` in a query."""
    return case((Handoff.status == "pending", Handoff.accept_due_on), else_=Handoff.decide_due_on)


# How long after a holiday schedule is loaded a process may still count on the schedule before
# (until its next refresh: clocks.calendar.settle_window, minutes), with room to spare: a step
# counted in working days up to this long after a load of a year it reaches is counted again.
COUNTED_BEFORE_LOAD = timedelta(days=1)


def overdue_step(handoff: Handoff, today: date) -> str | None:
    if handoff.status == "pending" and today > handoff.accept_due_on:
        return "accept"
    if handoff.status == "accepted" and handoff.decide_due_on is not None and today > handoff.decide_due_on:
        return "decide"
    return None


def arbitration_limitation(
    limitation: ArbitrationLimitation, dispute: Dispute, known_on: date | None, today: date
) -> list[dict[str, Any]]:
    """The limitation for the arbitration the case goes to (劳动争议调解仲裁法 Art. 27: one year;
    农村土地承包经营纠纷调解仲裁法 Art. 18: two), from when the party knew of the infringement,
    interrupted by a request for relief (the application for mediation; for land contracts by
    民法典 Art. 195, 198) and counted afresh from that interruption. Warn when little of it is left or
    when it had run out before the application.
    A warning is kept with the handoff as its facts; its message is given in the reader's language
    (`warning_text`), and the Chinese one is kept with it for the event's readers.
    The period's last day, falling on a rest day or holiday, moves to the next working day (民法典
    Art. 203; 民事诉讼法 Art. 85): the period has not run out on a day it could not be acted on."""
    if (
        known_on is not None
        and (ran_out := years_end(known_on, limitation.years).last_day) < dispute.applied_on
    ):
        warning: dict[str, Any] = {
            "code": f"{limitation.code}_expired",
            "article": limitation.article,
            "runs_until": ran_out.isoformat(),
            "before_application": True,
        }
    else:
        runs_until = years_end(dispute.applied_on, limitation.years).last_day
        left = (runs_until - today).days
        if left > LIMITATION_WARNING_DAYS:
            return []
        warning = {
            "code": f"{limitation.code}_near" if left >= 0 else f"{limitation.code}_expired",
            "article": limitation.article,
            "runs_until": runs_until.isoformat(),
            "days_left": left,
        }
    warning["message"] = warning_text(warning).zh
    return [warning]


CONFIRMATION_WINDOW_UNCERTAIN = "confirmation_window_uncertain"


def confirmation_window_warning(counted_last_day: date) -> dict[str, Any]:
    """A confirmation applied for after the period's last day as counted on the days off known (the
    weekends and the statutory holidays), in a year whose holiday schedule is not published yet (民事诉讼法 Art. 205, 85): the service lets it go to
    the court, which judges whether it is in time; the court is told why."""
    warning: dict[str, Any] = {
        "code": CONFIRMATION_WINDOW_UNCERTAIN,
        "article": "民事诉讼法 第八十五条、第二百零五条",
        "runs_until": counted_last_day.isoformat(),
        "provisional": True,
    }
    warning["message"] = warning_text(warning).zh
    return warning


WITHDRAWAL_REQUESTED = "withdrawal_requested"

# What a withdrawal after acceptance is, by the kind of handoff: the court or commission rules on it
# (a confirmation: 民诉法解释 Art. 357, 裁定准许撤回; a suit: 民事诉讼法 Art. 148, 是否准许由人民法院
# 裁定; an arbitration: the commission decides on the applicant's withdrawal, after the parties
# settled, 劳动争议调解仲裁法 Art. 41, 仲裁法 Art. 49).
WITHDRAWAL_ARTICLES = {
    "judicial_confirmation": "民诉法解释 第三百五十七条",
    "litigation": "民事诉讼法 第一百四十八条",
    "labour_arbitration": "劳动争议调解仲裁法 第四十一条",
    "commercial_arbitration": "仲裁法 第四十九条",
    "rural_land_arbitration": "农村土地承包经营纠纷调解仲裁法 第三章第四节",
}


def withdrawal_request(handoff: Handoff, requested_on: date, party_id: uuid.UUID | None) -> dict[str, Any]:
    """The parties' withdrawal, asked through the mediation side once the target has accepted: kept
    on the handoff for the court or commission to rule on, until it closes the handoff."""
    request: dict[str, Any] = {
        "code": WITHDRAWAL_REQUESTED,
        "article": WITHDRAWAL_ARTICLES[handoff.kind],
        "requested_on": requested_on.isoformat(),
        "party_id": str(party_id) if party_id else None,
        "kind": handoff.kind,
    }
    request["message"] = warning_text(request).zh
    return request


# A court's request for more materials, by the step it is made at: before acceptance the application
# is incomplete and the court has it completed within a period (民诉法解释 Art. 354: 限期补交); after it
# the court may have statements or proofs that are insufficient, incomplete or doubtful supplemented
# within a period (Art. 356: 限期补充). Not supplied in time without good reason, the application may be
# treated as withdrawn (Art. 357): the court rules so (`/decision` `withdrawn`, or `not_accepted` with
# `materials_missing`), this service does not.
MATERIALS_ARTICLES = {"pending": "民诉法解释 第三百五十四条", "accepted": "民诉法解释 第三百五十六条"}
MATERIALS_LATE_ARTICLE = "民诉法解释 第三百五十七条"
# The law leaves the period to the court; a day further off than this is taken for a typing error (a
# year wrong), not a period a court sets. The center's bound, not law.
MATERIALS_LONGEST_DAYS = 90


def open_materials_request(handoff: Handoff) -> dict[str, Any] | None:
    """The court's request still waiting for the materials (at most one)."""
    return next((r for r in handoff.materials_requests if r.get("status") == "open"), None)


def materials_overdue(handoff: Handoff, today: date) -> bool:
    """Whether the open request's day has passed with nothing supplied. The materials are still taken
    late: whether the delay had good reason is the court's to judge (民诉法解释 Art. 357)."""
    return (
        handoff.status in OPEN and handoff.materials_due_on is not None and today > handoff.materials_due_on
    )


def warning_text(warning: dict[str, Any]) -> Text:
    """A handoff warning's message, from the facts kept with it. A warning kept without them (an
    earlier version's, or a code this one does not know) keeps the message it was stored with."""
    code = str(warning.get("code", ""))
    if code == WITHDRAWAL_REQUESTED and warning.get("requested_on"):
        if warning.get("kind") == "judicial_confirmation":
            return Text(
                "当事人于 {day} 申请撤回司法确认申请, 请人民法院裁定是否准许 ({article}); 裁定前案件仍由贵院审查",
                "On {day} the parties asked to withdraw the application: the court rules whether to allow "
                "it ({article}); until then the application stays before the court",
            ).format(day=warning["requested_on"], article=warning.get("article", ""))
        return Text(
            "当事人于 {day} 申请撤回, 请受理机构决定并登记结果 ({article}); 在此之前案件仍由贵单位办理",
            "On {day} the parties asked to withdraw: you decide and post the outcome ({article}); until "
            "then the matter stays with you",
        ).format(day=warning["requested_on"], article=warning.get("article", ""))
    if code == CONFIRMATION_WINDOW_UNCERTAIN and warning.get("runs_until"):
        counted = str(warning["runs_until"])
        return Text(
            "申请晚于暂按已知休息日推算的申请期限最后一日 {day}; {year} 年法定节假日安排尚未公布, 如该日为节假日, "
            "期限顺延至节假日后的第一个工作日 (民事诉讼法 第八十五条): 请法院审查申请是否在期限内",
            "Applied for after {day}, the period's last day counted on the days off known so far; the {year} public "
            "holidays are not published yet, and a holiday on that day carries the period to the next "
            "working day (民事诉讼法 Art. 85): the court judges whether the request is in time",
        ).format(day=counted, year=counted[:4])
    limitation = LIMITATIONS.get(code.removesuffix("_near").removesuffix("_expired"))
    day, left = warning.get("runs_until"), warning.get("days_left")
    if limitation is not None and warning.get("before_application"):
        return limitation.said(
            "申请调解时{name}已届满, 仲裁委员会可能不予支持",
            "The {name} had run out when mediation was applied for; the commission may not uphold the claim",
        )
    if limitation is not None and isinstance(left, int) and day:
        if left < 0:
            return limitation.said(
                "{name}已于 {day} 届满, 仲裁委员会可能不予支持",
                "The {name} ran out on {day}; the commission may not uphold the claim",
                day=day,
            )
        return limitation.said(
            "{name}将于 {day} 届满 (剩余 {left} 日), 请尽快申请仲裁",
            "The {name} runs out on {day} ({left} days left); apply for arbitration without delay",
            day=day,
            left=left,
        )
    message = str(warning.get("message", ""))
    return Text(message, message)


class Ledger:
    def __init__(self, session: AsyncSession, rules: ClockRules) -> None:
        self.session = session
        self.rules = rules

    def periods(self, kind: str) -> Periods:
        return periods(self.rules, kind)

    async def current(self, dispute_id: uuid.UUID) -> Handoff | None:
        """The case's open handoff (at most one at a time)."""
        return await self.session.scalar(
            select(Handoff)
            .where(Handoff.dispute_id == dispute_id, Handoff.status.in_(OPEN))
            .order_by(Handoff.created_at.desc())
            .limit(1)
        )

    async def competent_courts(self, dispute: Dispute) -> dict[str, list[Body]]:
        """民事诉讼法 Art. 205, by basis: for mediation a court invited, that court alone (item 1);
        otherwise the basic court covering where a party lives, where the subject matter is, or
        where the mediation body is (item 2)."""
        if dispute.court_delegated:
            inviting = (
                await self.session.get(Body, dispute.inviting_court_id) if dispute.inviting_court_id else None
            )
            return {
                ConfirmationCourtBasis.inviting_court: [inviting] if inviting and inviting.active else [],
                ConfirmationCourtBasis.party_domicile: [],
                ConfirmationCourtBasis.subject_matter_location: [],
                ConfirmationCourtBasis.body_location: [],
            }
        regions: dict[str, list[str]] = {
            ConfirmationCourtBasis.party_domicile: [p.region_code for p in dispute.parties if p.region_code],
            ConfirmationCourtBasis.subject_matter_location: [dispute.region_code],
        }
        if dispute.body_id is not None:
            body = await self.session.get(Body, dispute.body_id)
            regions[ConfirmationCourtBasis.body_location] = [body.region_code] if body else []
        out: dict[str, list[Body]] = {}
        for basis, codes in regions.items():
            out[basis] = await self._courts_covering(codes)
        out[ConfirmationCourtBasis.inviting_court] = []  # no court invited this mediation
        return out

    async def _courts_covering(self, codes: list[str]) -> list[Body]:
        if not codes:
            return []
        prefixes = {code[:n] for code in codes for n in (2, 4, 6, 9, 12)}
        rows = await self.session.scalars(
            select(Body)
            .join(BodyJurisdiction, BodyJurisdiction.body_id == Body.id)
            .where(
                Body.kind == BodyKind.court,
                Body.active.is_(True),
                # A basic court (县/区 tier) covering the place (民事诉讼法 Art. 205: 基层人民法院).
                Body.tier == "county",
                BodyJurisdiction.region_prefix.in_(prefixes),
            )
            .distinct()
            .order_by(Body.name)
        )
        return list(rows.all())

    async def open(
        self,
        dispute: Dispute,
        kind: str,
        target_id: uuid.UUID,
        payload: Any,
        principal_id: str,
        today: date,
        now: datetime,
        *,
        handoff_id: uuid.UUID,
    ) -> Handoff:
        clock = self.periods(kind)
        warnings: list[dict[str, Any]] = []
        known_on = getattr(payload, "rights_known_on", None)
        if kind == "labour_arbitration" or (kind == "litigation" and dispute.category == Category.labour):
            warnings = arbitration_limitation(LABOUR_LIMITATION, dispute, known_on, today)
        elif kind == "rural_land_arbitration":
            # Only for the commission: a land-contract suit runs on the three-year limitation.
            warnings = arbitration_limitation(LAND_LIMITATION, dispute, known_on, today)
        agreement_id = None
        if kind == "judicial_confirmation" and dispute.agreement:
            agreement_id = uuid.UUID(str(dispute.agreement["id"]))
        handoff = Handoff(
            id=handoff_id,
            seq=None,
            dispute_id=dispute.id,
            kind=kind,
            target_id=target_id,
            status="pending",
            agreement_id=agreement_id,
            basis=str(getattr(payload, "basis", None) or "") or None,
            applicant_party_ids=[str(i) for i in getattr(payload, "applicant_party_ids", [])],
            claims=getattr(payload, "claims", None),
            arbitration_agreement=getattr(payload, "arbitration_agreement", None),
            warnings=warnings,
            requested_on=today,
            extended_days=0,
            created_by=principal_id,
            created_at=now,
            updated_at=now,
            version=1,
        )
        handoff.accept_due_on = count_step(handoff, today, clock.accept_days, clock.accept_unit)
        self.session.add(handoff)
        if self.session.info.get(HOOKS_BEFORE_COMMIT):
            # Numbered last, under the journal lock, in commit order (number_handoffs).
            self.session.info.setdefault(NEW_HANDOFFS, []).append(handoff)
        else:
            await self._number_now(handoff)
        return handoff

    async def _number_now(self, handoff: Handoff) -> None:
        """Outside a request (demo data, maintenance commands) nothing numbers the handoff before
        the commit: it takes the highest number plus one now, under the journal head as a request
        does (`number_handoffs`), held from here until this transaction ends, so numbers are given
        one transaction at a time on both paths and become visible in the order given. Without it,
        on PostgreSQL, two such transactions at once, or one and a request committing meanwhile,
        would read the same highest number and take the same next one: one of them refused by the
        unique constraint, its work lost."""
        await lock_journal(self.session)
        handoff.seq = ((await self.session.scalar(select(func.max(Handoff.seq)))) or 0) + 1

    def accept(self, handoff: Handoff, case_number: str, accepted_on: date, now: datetime) -> None:
        clock = self.periods(handoff.kind)
        handoff.status = "accepted"
        handoff.accepted_on = accepted_on
        handoff.target_case_number = case_number
        if clock.decide_days is not None:
            handoff.decide_due_on = count_step(handoff, accepted_on, clock.decide_days, clock.decide_unit)
        else:
            no_step_count(handoff)  # no deadline to decide: nothing left to count
        handoff.overdue_flagged = None
        self.touch(handoff, now)

    def extend(self, handoff: Handoff, days: int, reason: str, now: datetime) -> None:
        """Extend the period to decide, still running (HandoffService.extend), by `days`.

        法释〔2011〕5号 Art. 5 (可以延长十日), 劳动争议调解仲裁法 Art. 43 (延长期限不得超过十五日),
        农村土地承包经营纠纷调解仲裁法 Art. 47 (不得超过三十日): the extension is added to the
        period as it stands, so it counts from the period's current last day, the one moved off a
        day off (民事诉讼法 Art. 85) or counted again on a schedule loaded since, not from its
        nominal end: counted again from the acceptance, an extension over a holiday would add
        fewer days than granted. Its own last day moves off a day off likewise. An overdue record
        stays as it is: a period that has run out is not extended."""
        clock = self.periods(handoff.kind)
        assert handoff.decide_due_on is not None and clock.decide_days is not None
        handoff.extended_days = days
        handoff.extension_reason = reason
        # Counted as a case clock's extension is (engine.extended_end): the same law, one count.
        last_day = handoff.decide_due_on
        _, end = engine.extended_end(last_day, days, clock.decide_unit)
        if clock.decide_unit == Unit.working_days:
            handoff.decide_due_on = _keep_count(handoff, last_day, days, end)
        else:
            handoff.decide_due_on = _in_days(handoff, end)
        self.touch(handoff, now)

    async def settle(
        self, handoff: Handoff, status: str, decision: dict[str, Any], decided_on: date, now: datetime
    ) -> None:
        handoff.status = status
        handoff.decision = decision
        handoff.decided_on = decided_on
        # Answered with the decision, a withdrawal request no longer waits for the target's ruling:
        # the case's timeline keeps it.
        handoff.warnings = [w for w in handoff.warnings if w.get("code") != WITHDRAWAL_REQUESTED]
        self.close_materials_request(handoff)
        # Settled, the handoff has no step open; a confirmation's period to apply for enforcement
        # takes the place of one, and is provisional as a step would be.
        if status == "confirmed":
            handoff.enforcement_deadline = _in_days(handoff, await self.enforcement_end(handoff, decided_on))
        else:
            no_step_count(handoff)
        self.touch(handoff, now)

    async def enforcement_end(self, handoff: Handoff, ruled_on: date) -> PeriodEnd:
        """民事诉讼法 Art. 250: two years, from the last day of the performance period the document
        sets (the last instalment's), or from the day it took effect when it sets none. Not sure
        (`calendar_known` False) while either last day lies in a year whose schedule is unknown."""
        last_due = None
        if handoff.agreement_id is not None:
            last_due = await self.session.scalar(
                select(Obligation.due_on)
                .where(Obligation.agreement_id == handoff.agreement_id)
                .order_by(Obligation.due_on.desc())
                .limit(1)
            )
        # The last day of performance is itself a period's last day: one falling on a rest day or
        # holiday is the next working day (民法典 Art. 203; 民事诉讼法 Art. 85), and the two
        # years count from that day.
        performed_by = period_end(last_due, 0) if last_due else None
        start = max(performed_by.last_day, ruled_on) if performed_by else ruled_on
        # A last day off moves to the next working day (民事诉讼法 Art. 85; 民法典 Art. 203).
        end = years_end(start, 2)
        if performed_by is not None and not performed_by.calendar_known:
            return PeriodEnd(end.last_day, end.extended, calendar_known=False)
        return end

    def request_materials(
        self,
        handoff: Handoff,
        items: list[str],
        codes: list[str],
        due_on: date,
        note: str | None,
        principal_id: str,
        today: date,
        now: datetime,
    ) -> dict[str, Any]:
        """Record the court's request for more materials (`MATERIALS_ARTICLES`), open until the
        mediation side supplies them or the court closes the handoff."""
        request: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "number": len(handoff.materials_requests) + 1,
            "article": MATERIALS_ARTICLES[handoff.status],
            "items": items,
            "codes": codes,
            "due_on": due_on.isoformat(),
            "note": note,
            "requested_on": today.isoformat(),
            "requested_by": principal_id,
            "status": "open",
            "supplied_on": None,
            "supplied_by": None,
            "document_ids": [],
            "supplied_note": None,
        }
        # A new list: the column is JSON, and only an assignment is seen as a change.
        handoff.materials_requests = [*handoff.materials_requests, request]
        handoff.materials_due_on = due_on
        handoff.materials_overdue_flagged = False
        self.touch(handoff, now)
        return request

    def supply_materials(
        self,
        handoff: Handoff,
        document_ids: list[uuid.UUID],
        note: str | None,
        principal_id: str,
        today: date,
        now: datetime,
    ) -> dict[str, Any]:
        """The open request answered with the documents supplied; late or not, as the court judges."""
        requests = [dict(r) for r in handoff.materials_requests]
        answered = next(r for r in requests if r.get("status") == "open")
        answered.update(
            status="supplied",
            supplied_on=today.isoformat(),
            supplied_by=principal_id,
            document_ids=[str(i) for i in document_ids],
            supplied_note=note,
        )
        handoff.materials_requests = requests
        handoff.materials_due_on = None
        handoff.materials_overdue_flagged = False
        self.touch(handoff, now)
        return answered

    @staticmethod
    def close_materials_request(handoff: Handoff) -> None:
        """A handoff settled (a ruling, a withdrawal) while a request was open: the request waits for
        nothing more; it stays in the record as not supplied."""
        if open_materials_request(handoff) is None:
            return
        handoff.materials_requests = [
            {**r, "status": "closed"} if r.get("status") == "open" else r for r in handoff.materials_requests
        ]
        handoff.materials_due_on = None
        handoff.materials_overdue_flagged = False

    async def materials_overdue(self, today: date) -> list[uuid.UUID]:
        """Open handoffs whose request for materials passed its day unanswered and that the clock has
        not flagged yet."""
        rows = await self.session.scalars(
            select(Handoff.id).where(
                Handoff.status.in_(OPEN),
                Handoff.materials_due_on < today,
                Handoff.materials_overdue_flagged.is_(False),
            )
        )
        return list(rows.all())

    def touch(self, handoff: Handoff, now: datetime) -> None:
        handoff.updated_at = now
        handoff.version += 1

    async def on_days_off(self, today: date) -> list[uuid.UUID]:
        """The handoffs whose deadline a loaded holiday schedule changes (HandoffService.recount):
        open ones whose step, counted in days, ends on a day the schedule takes off, confirmations
        whose enforcement period does (their last day was counted before the schedule was known),
        those provisional ones whose last day now lies in a known year (`known_until`: settled, or
        moved off a holiday), and open ones whose step counted in working days counts differently
        now (`counted_again`)."""
        off = select(CalendarDay.day).where(CalendarDay.working.is_(False))
        in_days = Handoff.counted_from.is_(None)
        known = calendar.known_until(today)
        pending = (Handoff.status == "pending") & in_days
        accepted = (Handoff.status == "accepted") & in_days
        confirmed = Handoff.status == "confirmed"
        rows = await self.session.scalars(
            select(Handoff.id).where(
                or_(
                    pending & Handoff.accept_due_on.in_(off),
                    accepted & Handoff.decide_due_on.in_(off),
                    confirmed & Handoff.enforcement_deadline.in_(off),
                    Handoff.provisional
                    & or_(
                        pending & (Handoff.accept_due_on < known),
                        accepted & (Handoff.decide_due_on < known),
                        confirmed & (Handoff.enforcement_deadline < known),
                    ),
                )
            )
        )
        return [*rows.all(), *await self.counted_again()]

    async def counted_again(self) -> list[uuid.UUID]:
        """Open steps counted in working days whose last day or provisional flag a count on today's
        calendar changes: the provisional ones, and those counted before the schedule of a year
        they reach was loaded or corrected (or just after: `COUNTED_BEFORE_LOAD`)."""
        loads = (await self.session.execute(select(CalendarYear.year, CalendarYear.loaded_at))).all()
        due_on = open_step_due_column()
        counted_before = [
            (due_on >= date(year, 1, 1)) & (Handoff.updated_at <= loaded_at + COUNTED_BEFORE_LOAD)
            for year, loaded_at in loads
        ]
        rows = await self.session.execute(
            select(Handoff.id, Handoff.counted_from, Handoff.working_days, due_on, Handoff.provisional)
            .where(
                Handoff.status.in_(OPEN),
                Handoff.counted_from.is_not(None),
                or_(Handoff.provisional, *counted_before),
            )
            .order_by(Handoff.id)
        )
        return [
            handoff_id
            for handoff_id, counted_from, working_days, last_day, provisional in rows.all()
            if counted_from is not None
            and working_days is not None
            and recounted(counted_from, working_days, last_day) != (last_day, provisional)
        ]

    def restore_count(self, handoff: Handoff) -> bool:
        """Give an open step counted in working days (农村土地承包经营纠纷调解仲裁法 Art. 23: 五个工作日)
        the count it was opened without, before the handoff kept one (migration 0025, which could
        not know the rules: they are configuration): from the day it was counted from (the request,
        or the acceptance) and its working days (an extension's added), as `count_step` would. Its
        last day stays as told; it is marked provisional when it reaches a year whose schedule is
        still unknown, or when the calendar as now loaded counts it differently (it was counted on
        weekends only before the schedule was loaded), so that the recount (`counted_again`) takes
        it from there. Returns whether it had no count."""
        if handoff.counted_from is not None:
            return False
        clock = self.periods(handoff.kind)
        if handoff.status == "pending" and clock.accept_unit == Unit.working_days:
            start, days = handoff.requested_on, clock.accept_days
        elif (
            handoff.status == "accepted"
            and clock.decide_unit == Unit.working_days
            and clock.decide_days is not None
            and handoff.accepted_on is not None
        ):
            start, days = handoff.accepted_on, clock.decide_days + handoff.extended_days
        else:
            return False
        given = open_step_due(handoff)
        if given is None:
            return False
        day, provisional = recounted(start, days, given)
        handoff.counted_from, handoff.working_days = start, days
        handoff.provisional = provisional or day != given
        return True

    async def uncounted(self, limit: int = 500) -> list[uuid.UUID]:
        """Open handoffs whose step counts working days under the rules in hand and that keep no
        count (`restore_count`): few, found through the index on the status."""
        accept_kinds, decide_kinds = [], []
        for kind in HandoffKind:
            clock = self.periods(kind.value)
            if clock.accept_unit == Unit.working_days:
                accept_kinds.append(kind.value)
            if clock.decide_unit == Unit.working_days and clock.decide_days is not None:
                decide_kinds.append(kind.value)
        if not accept_kinds and not decide_kinds:
            return []
        rows = await self.session.scalars(
            select(Handoff.id)
            .where(
                Handoff.counted_from.is_(None),
                or_(
                    and_(Handoff.status == "pending", Handoff.kind.in_(accept_kinds)),
                    and_(
                        Handoff.status == "accepted",
                        Handoff.kind.in_(decide_kinds),
                        Handoff.decide_due_on.is_not(None),
                    ),
                ),
            )
            .order_by(Handoff.id)
            .limit(limit)
        )
        return list(rows.all())

    async def overdue(self, today: date) -> list[Handoff]:
        """Open handoffs whose current step's deadline passed and that the clock has not flagged yet."""
        rows = await self.session.scalars(
            select(Handoff).where(
                or_(
                    (Handoff.status == "pending")
                    & (Handoff.accept_due_on < today)
                    & Handoff.overdue_flagged.is_(None),
                    (Handoff.status == "accepted")
                    & (Handoff.decide_due_on < today)
                    & or_(Handoff.overdue_flagged.is_(None), Handoff.overdue_flagged == "accept"),
                )
            )
        )
        return list(rows.all())


def summary(handoff: Handoff, today: date) -> dict[str, Any]:
    """What the case record shows of its handoff (`DisputeOut.handoff`)."""
    return {
        "id": str(handoff.id),
        "kind": handoff.kind,
        "target_id": str(handoff.target_id),
        "status": handoff.status,
        "basis": handoff.basis,
        "claims": handoff.claims,
        "arbitration_agreement": handoff.arbitration_agreement,
        "requested_on": handoff.requested_on.isoformat(),
        "accept_due_on": handoff.accept_due_on.isoformat(),
        "target_case_number": handoff.target_case_number,
        "accepted_on": handoff.accepted_on.isoformat() if handoff.accepted_on else None,
        "decide_due_on": handoff.decide_due_on.isoformat() if handoff.decide_due_on else None,
        "provisional": handoff.provisional,
        "extended_days": handoff.extended_days,
        "decision": handoff.decision,
        "decided_on": handoff.decided_on.isoformat() if handoff.decided_on else None,
        "enforcement_deadline": (
            handoff.enforcement_deadline.isoformat() if handoff.enforcement_deadline else None
        ),
        # As the handoff's own answer gives them, with the message in Chinese: the summary is kept
        # on the case as written, for every reader.
        "warnings": [
            {
                "code": w.get("code"),
                "message": warning_text(w).zh,
                "article": w.get("article"),
                "runs_until": w.get("runs_until"),
                "requested_on": w.get("requested_on"),
                "party_id": w.get("party_id"),
            }
            for w in handoff.warnings
        ],
    }
