"""The case clocks: started and stopped with the lifecycle, paused, resumed, extended, and moved to
at-risk and overdue by the scheduler exactly once. A party window (a rule's `party_window`: the
judicial confirmation window) is the parties' time to act, not the center's deadline: its end is
recorded as it closing, and it is never at risk or overdue.

Services add and flush; the caller's unit of work commits. Each change also refreshes the case's
`clock` summary (the most urgent running clock), which lists and the case page show.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple, NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body
from mediation.clocks import engine
from mediation.clocks.engine import LEVEL_ORDER, Level
from mediation.clocks.models import CaseClock
from mediation.clocks.rules import (
    CLOCK_LABELS,
    CLOCK_STATES,
    TRANSFER_STOPPED,
    UNIT_NAMES,
    CaseFacts,
    ClockName,
    ClockRule,
    ClockRules,
    CountsFrom,
    ExtensionConsent,
    OnTransfer,
    Unit,
    procedures_of,
)
from mediation.core.clock import Clock
from mediation.core.errors import Conflict, GuardFailed, NotFound
from mediation.core.i18n import Text
from mediation.core.legal_time import PeriodEnd
from mediation.core.refusal import Refusal, summary
from mediation.disputes.models import Dispute

# States that end a case's clocks without their stage being completed.
CANCELLING = frozenset({"withdrawn", "declined"})
# Levels a party window shows only when it was reported before windows were told apart.
MARKED_LEVELS = (Level.at_risk.value, Level.overdue.value)


def _refuse(code: str, message: Text, clock: CaseClock) -> NoReturn:
    refusal = Refusal(code, message, clock.source)
    raise GuardFailed(summary([refusal]), reasons=[refusal.as_dict()])


def facts_of(dispute: Dispute, body: Body | None) -> CaseFacts:
    return CaseFacts(
        category=dispute.category,
        channel=dispute.channel,
        complexity=dispute.complexity,
        body_kind=body.kind if body is not None else None,
        procedures=procedures_of(dispute.court_delegated, dispute.court_stage),
    )


def _counted_from(dispute: Dispute, rule: ClockRule) -> date | None:
    """The day the rule counts the period from, when it is not the day the case enters the state.
    Both are set by the transition before the clocks follow it (DisputeService._apply_effects)."""
    if rule.starts == CountsFrom.agreement_effective:
        return dispute.agreement_effective_on
    if rule.starts == CountsFrom.first_receipt:
        return dispute.mediation_started_on
    return None


def shown_level(reached: Level, party_window: bool) -> Level:
    """The level a clock shows. A party window sets the center no deadline (人民调解法 Art. 33;
    民事诉讼法 Art. 205: the parties may apply within it), so however much of it has run it stays
    normal: it neither colours the case nor lists it among the overdue."""
    return Level.normal if party_window else reached


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def clock_summary(clock: CaseClock) -> dict[str, Any]:
    return {
        "name": clock.name,
        "rule_id": clock.rule_id,
        "source": clock.source,
        "due_on": clock.due_on.isoformat(),
        "due_at": clock.due_at.isoformat(),
        "level": clock.level,
        "paused": clock.paused_at is not None,
        "paused_at": clock.paused_at.isoformat() if clock.paused_at else None,
        "provisional": clock.provisional,
    }


class DueLevel(NamedTuple):
    """A level a clock has reached and nobody has recorded yet (`ClockService.due_levels`)."""

    clock_id: uuid.UUID
    level: Level
    party_window: bool  # its end is the window closing, not the center's overdue


# Built once (every transition reads the case's running clocks); the case is the parameter.
_RUNNING = (
    select(CaseClock)
    .where(CaseClock.dispute_id == bindparam("dispute_id"), CaseClock.stopped_at.is_(None))
    .order_by(CaseClock.started_at, CaseClock.name)
)


def summarise_into(dispute: Dispute, running: list[CaseClock]) -> None:
    """The case shows its most urgent running clock: the worst level, then the earliest due."""
    if not running:
        dispute.clock, dispute.clock_level, dispute.clock_due_at = None, None, None
        return
    top = min(running, key=lambda c: (-LEVEL_ORDER[Level(c.level)], c.paused_at is not None, c.due_at))
    dispute.clock = clock_summary(top)
    dispute.clock_level = top.level
    dispute.clock_due_at = top.due_at


class ClockService:
    def __init__(self, session: AsyncSession, clock: Clock, rules: ClockRules) -> None:
        self.session = session
        self.clock = clock
        self.rules = rules

    # ---- following the lifecycle ----------------------------------------------------------------

    async def follow(self, dispute: Dispute, now: datetime, *, handed_on: bool = False) -> list[CaseClock]:
        """After a transition: stop the clocks whose stage the case left, start the ones its new
        state needs. Returns the clocks started. `handed_on`: the transition passes the case to
        another body (a transfer or an escalation); a period that is not the body's own runs on
        across it (`OnTransfer.runs_on`) when the next body signs for the case."""
        running = await self.running(dispute.id)
        for clock in running:
            if dispute.status not in CLOCK_STATES[ClockName(clock.name)]:
                self._stop(clock, now, cancelled=dispute.status in CANCELLING, handed_on=handed_on)
        still = [c for c in running if c.stopped_at is None]
        body = await self.session.get(Body, dispute.body_id) if dispute.body_id else None
        started = self._starting(dispute, facts_of(dispute, body), {c.name for c in still}, now)
        for clock in started:
            await self._run_on(dispute, clock, now)
        if any(c.warn_at <= now for c in started):
            await self._carry_reports(dispute.id, [c for c in started if c.warn_at <= now], now)
        self.session.add_all(started)
        # Everything running is in hand: no second read, and the caller's flush writes the clocks
        # and the case's summary in one go.
        summarise_into(dispute, [*still, *started])
        return started

    async def _carry_reports(self, dispute_id: uuid.UUID, started: list[CaseClock], now: datetime) -> None:
        """A clock started at or past its warning share runs for a period counted from an earlier
        day (the labour mediation period from the first receipt, 劳动争议调解仲裁法 Art. 14).
        Started again after its stage was left (a transfer to another body), it times the same
        legal deadline as the clock stopped before it when it ends on the same day: what was
        reported of that one is not reported again (one report per deadline). It carries the
        marks of the levels it has reached itself, so the scheduler leaves it alone there
        (`due_levels`), and its start names the clock whose history holds the reports."""
        rows = await self.session.scalars(
            select(CaseClock)
            .where(
                CaseClock.dispute_id == dispute_id,
                CaseClock.name.in_([c.name for c in started]),
                CaseClock.stopped_at.is_not(None),
            )
            .order_by(CaseClock.stopped_at.desc(), CaseClock.id)
        )
        last: dict[str, CaseClock] = {}
        for clock in rows.all():
            last.setdefault(clock.name, clock)
        for clock in started:
            before = last.get(clock.name)
            if before is None or before.due_on != clock.due_on:
                continue
            # Only a level the new clock has reached itself (it is at or past its warning share).
            if before.overdue_fired_at is not None and clock.due_at <= now:
                clock.overdue_fired_at = before.overdue_fired_at
            if before.at_risk_fired_at is not None:
                clock.at_risk_fired_at = before.at_risk_fired_at
            if clock.at_risk_fired_at is not None:
                # Where its reports are: on the clock it follows.
                clock.history = [{**clock.history[0], "reported_with": str(before.id)}, *clock.history[1:]]

    async def _run_on(self, dispute: Dispute, clock: CaseClock, now: datetime) -> None:
        """Make a mediation clock just started the continuation of the one a transfer stopped, when
        its rule says the period runs on across one (`OnTransfer.runs_on`): the referring court's
        period (特邀调解规定 Art. 27), the petition's (信访工作条例), the labour mediation period
        (劳动争议调解仲裁法 Art. 14) belong to no body, so the next body's sign-for neither starts
        them again nor gives back the extensions used. The period keeps its first start and runs
        on through the days the case waited for its next body; its pauses and extensions are
        counted again as they were (`engine.replay`), a pause still open at the transfer ending
        with it. A body's own period (人民调解工作若干规定 Art. 33) starts again."""
        rule = self._rule(clock.rule_id)
        if rule is None or rule.on_transfer != OnTransfer.runs_on or rule.clock not in TRANSFER_STOPPED:
            return
        before = await self.session.scalar(
            select(CaseClock)
            .where(
                CaseClock.dispute_id == dispute.id,
                CaseClock.name == clock.name,
                CaseClock.stopped_at.is_not(None),
            )
            .order_by(CaseClock.stopped_at.desc(), CaseClock.id)
            .limit(1)
        )
        # Only the period a transfer stopped, under the same rule; one that ended otherwise (an
        # agreement, then remediation after a rejected confirmation) is not taken up again.
        if before is None or before.rule_id != clock.rule_id:
            return
        stop: dict[str, Any] = next((e for e in reversed(before.history) if e.get("what") == "stopped"), {})
        if not stop.get("handed_on"):
            return
        assert before.stopped_at is not None
        carried = [e for e in before.history if e.get("what") in ("paused", "resumed", "extended")]
        if before.paused_at is not None:
            carried.append({"at": before.stopped_at.isoformat(), "what": "resumed", "handed_on": True})
        zone = self.clock.zone
        unit = Unit(before.unit)
        end, provisional = engine.replay(before.started_at, before.length, unit, carried, zone)
        due = engine.deadline(before.started_at, end, self.rules.share(rule), zone)
        clock.started_at, clock.length, clock.unit = before.started_at, before.length, before.unit
        clock.extended_by = before.extended_by
        clock.due_on, clock.due_at, clock.warn_at = due.due_on, due.due_at, due.warn_at
        clock.provisional = provisional
        clock.level = shown_level(engine.level(now, due.warn_at, due.due_at), rule.is_party_window).value
        started = {
            "at": now.isoformat(),
            "what": "started",
            "due_on": due.due_on.isoformat(),
            "counted_from": before.started_at.astimezone(zone).date().isoformat(),
            "runs_on_from": str(before.id),
        }
        clock.history = [started, *carried]

    def _rule(self, rule_id: str) -> ClockRule | None:
        return next((r for r in self.rules.rules if r.id == rule_id), None)

    def extension_left(self, clock: CaseClock) -> int:
        """How many units the running `clock` may still be extended by under its rule (0: none)."""
        rule = self._rule(clock.rule_id)
        if clock.stopped_at is not None or rule is None or rule.extension is None:
            return 0
        return max(0, rule.extension.max - clock.extended_by)

    def extension_needs_consent(self, clock: CaseClock) -> bool:
        rule = self._rule(clock.rule_id)
        return (
            rule is not None
            and rule.extension is not None
            and rule.extension.consent == ExtensionConsent.all_parties
        )

    def first_clocks(self, dispute: Dispute, now: datetime) -> list[CaseClock]:
        """The clocks of a case being registered, with its summary set; none runs yet and it has no
        body. The caller adds them once the case's row is written (they refer to it), so the case
        is inserted with its summary and never updated for it."""
        started = self._starting(dispute, facts_of(dispute, None), set(), now)
        summarise_into(dispute, started)
        return started

    def _starting(
        self, dispute: Dispute, facts: CaseFacts, running: set[str], now: datetime
    ) -> list[CaseClock]:
        started = []
        for name, states in CLOCK_STATES.items():
            if dispute.status in states and name not in running:
                rule = self.rules.for_(name, facts)
                if rule is not None:
                    started.append(self._start(dispute, rule, now))
        return started

    def _start(self, dispute: Dispute, rule: ClockRule, now: datetime) -> CaseClock:
        zone = self.clock.zone
        start_day = _counted_from(dispute, rule) or now.astimezone(zone).date()
        # A period counted from an earlier day (the agreement's taking effect, the first receipt)
        # runs from that day: its warning share and any later recount start there too.
        started_at = now if start_day == now.astimezone(zone).date() else _start_of(start_day, zone)
        due = engine.deadline(
            started_at, engine.period(start_day, rule.length, rule.unit), self.rules.share(rule), zone
        )
        started: dict[str, Any] = {"at": now.isoformat(), "what": "started", "due_on": due.due_on.isoformat()}
        if started_at != now:
            started["counted_from"] = start_day.isoformat()
        clock = CaseClock(
            id=uuid.uuid4(),
            dispute_id=dispute.id,
            name=rule.clock.value,
            rule_id=rule.id,
            source=rule.source,
            unit=rule.unit.value,
            length=rule.length,
            pausable=rule.pausable,
            started_at=started_at,
            due_on=due.due_on,
            due_at=due.due_at,
            warn_at=due.warn_at,
            provisional=due.provisional,
            extended_by=0,
            # Counted from an earlier day, it may be at risk or over already; the scheduler
            # reports it at its next pass.
            level=shown_level(engine.level(now, due.warn_at, due.due_at), rule.is_party_window).value,
            history=[started],
        )
        return clock

    def _stop(
        self, clock: CaseClock, now: datetime, *, cancelled: bool = False, handed_on: bool = False
    ) -> None:
        stopped: dict[str, Any] = {"at": now.isoformat(), "what": "stopped"}
        if handed_on:
            # Passed to another body: a period that is not the body's runs on (`_run_on`).
            stopped["handed_on"] = True
        due_at = clock.due_at
        if clock.paused_at is not None and not cancelled:
            # Stopped while paused, it never ran again: the days it stood still count as a
            # resumption at the stop would count them, and it is judged against that end.
            end = self._replayed(clock, {"at": now.isoformat(), "what": "resumed"})
            due_at = engine.end_of(end.last_day, self.clock.zone)
            if end.last_day != clock.due_on:
                stopped["due_on"] = end.last_day.isoformat()
        clock.stopped_at = now
        clock.outcome = "cancelled" if cancelled else "met" if now < due_at else "missed"
        clock.history = [*clock.history, {**stopped, "outcome": clock.outcome}]

    async def running(self, dispute_id: uuid.UUID) -> list[CaseClock]:
        rows = await self.session.scalars(_RUNNING, {"dispute_id": dispute_id})
        return list(rows.all())

    async def of_case(self, dispute_id: uuid.UUID) -> list[CaseClock]:
        rows = await self.session.scalars(
            select(CaseClock)
            .where(CaseClock.dispute_id == dispute_id)
            .order_by(CaseClock.started_at.desc(), CaseClock.name)
        )
        return list(rows.all())

    async def summarise(self, dispute: Dispute) -> None:
        """The case shows its most urgent running clock: the worst level, then the earliest due."""
        summarise_into(dispute, [c for c in await self.running(dispute.id) if c.stopped_at is None])

    # ---- pause, resume, extend ------------------------------------------------------------------

    async def running_named(self, dispute: Dispute, name: ClockName) -> CaseClock:
        for clock in await self.running(dispute.id):
            if clock.name == name:
                return clock
        raise NotFound(
            Text(
                f"案件当前没有计时中的{CLOCK_LABELS.get(name, name)}", f"The case has no running {name} clock"
            )
        )

    async def pause(self, dispute: Dispute, name: ClockName, reason: str, now: datetime) -> CaseClock:
        clock = await self.running_named(dispute, name)
        if not clock.pausable:
            _refuse(
                "clock_not_pausable",
                Text("该时限依规定不能中止计算", "This period cannot be paused under its rule"),
                clock,
            )
        if clock.paused_at is not None:
            raise Conflict(Text("该时限已中止计算", "The clock is already paused"), code="clock_paused")
        clock.paused_at = now
        clock.pause_reason = reason
        clock.history = [*clock.history, {"at": now.isoformat(), "what": "paused", "reason": reason}]
        await self.session.flush()
        await self.summarise(dispute)
        return clock

    async def resume(self, dispute: Dispute, name: ClockName, now: datetime) -> tuple[CaseClock, int]:
        """The days the clock stood still are added to its period (in its own unit)."""
        clock = await self.running_named(dispute, name)
        if clock.paused_at is None:
            raise Conflict(Text("该时限未中止", "The clock is not paused"), code="clock_not_paused")
        zone = self.clock.zone
        unit = Unit(clock.unit)
        skipped = engine.skipped(clock.paused_at.astimezone(zone).date(), now.astimezone(zone).date(), unit)
        resumed: dict[str, Any] = {"at": now.isoformat(), "what": "resumed", "skipped": skipped}
        if skipped:
            # Counted as a recount would count it (the skipped days added to the nominal last day,
            # then moved off a rest day once), so the two never disagree.
            self._move(clock, self._replayed(clock, resumed), now)
        clock.paused_at = None
        clock.pause_reason = None
        clock.history = [*clock.history, {**resumed, "due_on": clock.due_on.isoformat()}]
        await self.session.flush()
        await self.summarise(dispute)
        return clock, skipped

    def _replayed(self, clock: CaseClock, entry: dict[str, Any]) -> PeriodEnd:
        """The clock's end with `entry` (a resumption or an extension) added to its history."""
        end, _ = engine.replay(
            clock.started_at, clock.length, Unit(clock.unit), [*clock.history, entry], self.clock.zone
        )
        return end

    def party_window(self, clock: CaseClock) -> bool:
        """Whether the clock is the parties' window, under the rule it was started under."""
        return self.rules.party_window(clock.rule_id, clock.name)

    async def rule_of(self, dispute: Dispute, name: ClockName) -> ClockRule | None:
        """The rule the running clock was started under."""
        clock = await self.running_named(dispute, name)
        return self._rule(clock.rule_id)

    async def extend(
        self, dispute: Dispute, name: ClockName, units: int, reason: str, now: datetime
    ) -> CaseClock:
        clock = await self.running_named(dispute, name)
        rule = await self.rule_of(dispute, name)
        if rule is None or rule.extension is None:
            _refuse(
                "clock_not_extendable",
                Text("该时限依规定不能延长", "This period cannot be extended under its rule"),
                clock,
            )
        if clock.extended_by + units > rule.extension.max:
            left = rule.extension.max - clock.extended_by
            _refuse(
                "clock_extension_limit",
                Text(
                    f"延长总计不得超过 {rule.extension.max} {UNIT_NAMES[rule.unit]}, 尚可延长 {left} {UNIT_NAMES[rule.unit]}",
                    f"Extensions may total at most {rule.extension.max} {rule.unit.value}; {left} left",
                ),
                clock,
            )
        extended: dict[str, Any] = {
            "at": now.isoformat(),
            "what": "extended",
            "units": units,
            "reason": reason,
        }
        self._move(clock, self._replayed(clock, extended), now)
        clock.extended_by += units
        clock.history = [*clock.history, {**extended, "due_on": clock.due_on.isoformat()}]
        await self.session.flush()
        await self.summarise(dispute)
        return clock

    def recount(self, clock: CaseClock, now: datetime) -> date | None:
        """Count the clock again on the calendar as it now stands (`engine.replay`). Returns the
        last day it had when that changed the last day or the provisional flag, else None."""
        end, provisional = engine.replay(
            clock.started_at, clock.length, Unit(clock.unit), clock.history, self.clock.zone
        )
        if (end.last_day, provisional) == (clock.due_on, clock.provisional):
            return None
        before = clock.due_on
        clock.provisional = False  # `_move` keeps a provisional flag; this count replaces it
        self._move(clock, end, now)
        clock.provisional = provisional
        clock.history = [
            *clock.history,
            {
                "at": now.isoformat(),
                "what": "recounted",
                "due_on": clock.due_on.isoformat(),
                "was": before.isoformat(),
                "provisional": provisional,
            },
        ]
        return before

    def _move(self, clock: CaseClock, end: PeriodEnd, now: datetime) -> None:
        """A new last day keeps the warning at the same share of the (longer) period. A level the
        clock falls back below may be reached again, and is then reported again."""
        share = (clock.warn_at - clock.started_at) / (clock.due_at - clock.started_at)
        due = engine.deadline(clock.started_at, end, share, self.clock.zone)
        clock.due_on, clock.due_at, clock.warn_at = due.due_on, due.due_at, due.warn_at
        clock.provisional = clock.provisional or due.provisional
        reached = engine.level(now, clock.warn_at, clock.due_at)
        clock.level = shown_level(reached, self.party_window(clock)).value
        if reached != Level.overdue:
            clock.overdue_fired_at = None
        if reached == Level.normal:
            clock.at_risk_fired_at = None

    # ---- levels (the scheduler) -----------------------------------------------------------------

    async def due_levels(self, now: datetime, limit: int = 500) -> list[DueLevel]:
        """Running, unpaused clocks whose next level is due and not yet recorded."""
        red = and_(CaseClock.overdue_fired_at.is_(None), CaseClock.due_at <= now)
        yellow = and_(CaseClock.at_risk_fired_at.is_(None), CaseClock.warn_at <= now)
        rows = await self.session.execute(
            select(CaseClock.id, CaseClock.due_at, CaseClock.rule_id, CaseClock.name)
            .where(CaseClock.stopped_at.is_(None), CaseClock.paused_at.is_(None), or_(red, yellow))
            .order_by(CaseClock.due_at)
            .limit(limit)
        )
        return [
            DueLevel(
                clock_id,
                Level.overdue if due_at <= now else Level.at_risk,
                self.rules.party_window(rule_id, name),
            )
            for clock_id, due_at, rule_id, name in rows.all()
        ]

    async def claim(self, clock_id: uuid.UUID, level: Level, now: datetime) -> CaseClock | None:
        """Record the move to `level` if the clock, as it now stands, has reached it and nobody has
        recorded it: a conditional UPDATE on the row as last committed, so a clock extended, paused,
        recounted or stopped since the scheduler looked is left alone, and of two schedulers racing
        on PostgreSQL the second waits for the first, re-reads the row and updates nothing. The
        caller holds the case's lock (the case first, then its clock, as every change takes them)
        and writes the timeline entry only when this returns the clock. A party window's end is
        recorded as it closing; it reaches no level (`shown_level`)."""
        fired = CaseClock.overdue_fired_at if level == Level.overdue else CaseClock.at_risk_fired_at
        reached = CaseClock.due_at if level == Level.overdue else CaseClock.warn_at
        values: dict[str, Any] = {fired.key: now}
        if level == Level.overdue:
            # A clock that jumps straight to red (e.g. the scheduler was down) reports red only.
            values["at_risk_fired_at"] = now
        result = await self.session.execute(
            update(CaseClock)
            .where(
                CaseClock.id == clock_id,
                fired.is_(None),
                reached <= now,
                CaseClock.stopped_at.is_(None),
                CaseClock.paused_at.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        clock = await self.session.get(CaseClock, clock_id, populate_existing=True)
        assert clock is not None
        window = self.party_window(clock)
        clock.level = shown_level(level, window).value
        if not window:
            clock.history = [*clock.history, {"at": now.isoformat(), "what": level.value}]
        elif level == Level.overdue:
            clock.history = [*clock.history, {"at": now.isoformat(), "what": "closed"}]
        return clock

    # ---- party windows reported as the center's lateness (before windows were told apart) -------

    def _marked_window(self) -> ColumnElement[bool]:
        """Clocks of a party window that still show a level: reported at risk or overdue before the
        rule file told party windows apart (it never happens since: `shown_level`). Which rules are
        windows is the rule file's, so this is asked of the rules in hand, as `party_window` is."""
        known = [r.id for r in self.rules.rules]
        windows = [r.id for r in self.rules.rules if r.is_party_window]
        return and_(
            CaseClock.level.in_(MARKED_LEVELS),
            or_(
                CaseClock.rule_id.in_(windows),
                and_(CaseClock.name == ClockName.confirmation_window.value, CaseClock.rule_id.not_in(known)),
            ),
        )

    async def marked_windows(
        self, after: uuid.UUID | None, limit: int = 500
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(clock, case) of such windows after `after` in id order, at most `limit`: the scheduler
        walks them once per process (clocks.scheduler), a batch per pass."""
        query = select(CaseClock.id, CaseClock.dispute_id).where(self._marked_window())
        if after is not None:
            query = query.where(CaseClock.id > after)
        rows = await self.session.execute(query.order_by(CaseClock.id).limit(limit))
        return [(clock_id, dispute_id) for clock_id, dispute_id in rows.all()]

    async def marked_windows_of(self, dispute_id: uuid.UUID) -> list[CaseClock]:
        """The case's such windows, running or not, locked (the caller holds the case)."""
        rows = await self.session.scalars(
            select(CaseClock)
            .where(CaseClock.dispute_id == dispute_id, self._marked_window())
            .order_by(CaseClock.started_at, CaseClock.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list(rows.all())

    async def has_marked_windows(self, dispute_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(CaseClock.id).where(CaseClock.dispute_id == dispute_id, self._marked_window()).limit(1)
        )
        return found is not None

    def unmark_window(self, clock: CaseClock, now: datetime) -> bool:
        """Show the window's level as it is shown today: normal (人民调解法 Art. 33; 民事诉讼法
        Art. 205: the parties may apply within it; its end is no lateness of the center's). One
        reported overdue had closed: its history records the closing as `claim` now does. The
        fired marks stay, so the scheduler does not report the same end again. Returns whether it
        had been reported overdue."""
        closed = clock.overdue_fired_at is not None and clock.level == Level.overdue.value
        was = clock.level
        clock.level = Level.normal.value
        entry: dict[str, Any] = {"at": now.isoformat(), "what": "closed" if closed else "level_corrected"}
        clock.history = [*clock.history, {**entry, "level_was": was}]
        return closed

    async def reported_overdue(self, dispute_id: uuid.UUID) -> bool:
        """Whether a clock of the case other than a party window was reported overdue and that
        report still stands (`Dispute.ever_overdue`, the statistics' overdue rate). A report stands
        once made, an extension or pause after it notwithstanding; only a recount that moved the
        very last day reported to after the report's moment withdraws it (DisputeService.
        recount_clock). A recount of a later last day (one an extension or a resumption set after
        the report) leaves the report standing: the day reported was not counted again."""
        clocks = await self.session.scalars(select(CaseClock).where(CaseClock.dispute_id == dispute_id))
        for clock in clocks.all():
            if self.party_window(clock):
                continue
            if clock.overdue_fired_at is not None and clock.level == Level.overdue.value:
                return True
            standing = False
            # The clock's last day as its history goes, and the one reported (unknown in a history
            # recorded without last days: any recount then judges the report, as it always did).
            last_day = reported_day = None
            for entry in clock.history:
                what = entry.get("what")
                if what == Level.overdue.value:
                    standing, reported_day = True, last_day
                elif what == "recounted" and standing and reported_day in (None, entry.get("was")):
                    due_at = engine.end_of(date.fromisoformat(entry["due_on"]), self.clock.zone)
                    standing = due_at <= datetime.fromisoformat(entry["at"])
                    reported_day = entry["due_on"]
                if "due_on" in entry and what != "stopped":
                    last_day = entry["due_on"]
            if standing:
                return True
        return False
