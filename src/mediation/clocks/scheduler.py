"""The scheduler: what happens to cases by time alone. A clock that reaches its warning share or
its deadline is reported once (timeline entry and event), a party window's end (the judicial
confirmation window's) as the window closing, not as overdue; a clock counted before its year's
holiday schedule was known is counted again once it is, and a court's or commission's step that
ends on a day off the schedule names moves to the next working day (clocks.calendar), as does a
supervision order's or follow-up's date counted in working days (clocks.counted); a case not
signed for in time goes back to triage; an obligation past its due date raises a follow-up for the
body (人民调解法 Art. 31); a court or commission late with acceptance or decision is flagged on the
case, once per step, and so is a court's request for materials left unanswered past its day
(民诉法解释 Art. 357); an unanswered supervision order past its deadline is escalated; the
statistics rollup takes in the cases changed since the last pass.

It runs inside the API process by default and as `mediation scheduler`; several may run at once
(several API workers, a standalone one): every step is a conditional change under the case's
version check, so two schedulers never both report or act on the same thing.

The body that was assigned a case signs for it or returns it within the set working days (center
practice after 在线调解规则 Art. 12). When the last day has passed, the system returns the case
in the body's stead, the assignment is recorded as lapsed, re-triage leaves that body out, and a
case with no candidate left is flagged to a supervisor, as for any return.

Each case is its own transaction, so one failure (say, a clerk acting on the case at the same
moment: the version check refuses the older writer) never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mediation.agreements.service import AgreementService
from mediation.audit.chain import AuditEntry, append
from mediation.audit.recorder import record_system_changes
from mediation.audit.seal import SealKeys, seal
from mediation.clocks import calendar
from mediation.clocks.engine import Level
from mediation.clocks.models import CaseClock
from mediation.clocks.rules import CLOCK_LABELS
from mediation.core import metrics
from mediation.core.clock import Clock
from mediation.core.db import Database, utcnow
from mediation.core.errors import ProblemError, is_connection_problem
from mediation.core.http import etag_for
from mediation.core.outage import FailingTurns
from mediation.core.pii import PiiCipher
from mediation.core.principal import SYSTEM
from mediation.core.secrets import KeyVerdict, check_keys_once_answered
from mediation.core.settings import Settings
from mediation.disputes.lifecycle import Action
from mediation.disputes.models import Dispute
from mediation.disputes.schemas import ReturnPayload
from mediation.disputes.service import OVERDUE_WITHDRAWN, DisputeService
from mediation.events.sequencer import number_before_commit
from mediation.handoffs.service import HandoffService
from mediation.stats import service as stats
from mediation.supervision.service import SupervisionService

log = logging.getLogger(__name__)

LAPSE_REASON = "逾期未签收: 受指派组织未在签收期限 ({due}) 内签收或退回, 由系统退回重新分流"
LEVEL_REASONS = {
    Level.at_risk: "时限预警: {name}将于 {due} 届满",
    Level.overdue: "时限超期: {name}已于 {due} 届满",
}
# A party window's end is the parties' (人民调解法 Art. 33; 民事诉讼法 Art. 205), not the center's
# lateness: recorded as the window closing, never as overdue.
WINDOW_CLOSED = "clock_window_closed"
WINDOW_CLOSED_REASON = "期限届满: {name}已于 {due} 届满"


@dataclass(frozen=True, slots=True)
class TickReport:
    lapsed: int
    failed: int
    obligations_overdue: int = 0
    handoffs_overdue: int = 0
    materials_overdue: int = 0  # courts' requests for materials past their day, unanswered
    at_risk: int = 0
    overdue: int = 0
    windows_closed: int = 0  # party windows that ran out (the parties', not counted as overdue)
    orders_escalated: int = 0
    stats_days: int = 0
    clocks_recounted: int = 0
    handoff_deadlines_moved: int = 0
    orders_recounted: int = 0
    follow_ups_recounted: int = 0
    windows_unmarked: int = 0  # cases whose party windows still showed a level reported before
    handoff_counts_restored: int = 0  # handoff steps given back their working-day count
    set_aside_repaired: int = 0  # cases whose follow-ups of an agreement set aside were left open
    sealed_through: int | None = None


@dataclass(slots=True)
class _Repairs:
    """How far this process has come in putting right what was recorded before a rule change
    (`_repair_old_marks`). Which clocks are party windows and which handoff steps count working
    days is the rule file's, read at start, so each process looks once, from the start."""

    after: uuid.UUID | None = None  # the last party window clock looked at, in id order
    retry: set[uuid.UUID] = field(default_factory=set)  # cases a pass could not put right
    windows_done: bool = False
    handoffs_done: bool = False
    set_aside_done: bool = False


# Per database (a process has one; the tests make one per test).
_REPAIRS: weakref.WeakKeyDictionary[Database, _Repairs] = weakref.WeakKeyDictionary()
REPAIR_BATCH = 500


async def tick(
    db: Database, clock: Clock, settings: Settings, cipher: PiiCipher, seal_keys: SealKeys | None = None
) -> TickReport:
    """One pass over everything the clocks do; with `seal_keys`, the audit chain is sealed last
    when its newest seal is `audit_seal_seconds` old (audit/seal.py)."""
    started = time.monotonic()
    try:
        report = await _clock_pass(db, clock, settings, cipher)
    except Exception:
        metrics.SCHEDULER_PASSES.labels("failed").inc()
        raise
    else:
        metrics.SCHEDULER_PASSES.labels("partial" if report.failed else "ok").inc()
        if not report.failed:
            metrics.SCHEDULER_LAST_OK.set_to_current_time()
    finally:
        metrics.SCHEDULER_DURATION.observe(time.monotonic() - started)
        # Also when a step of the pass failed: verification fails a chain left unsealed for long
        # (seal.check_overdue), and a step failing pass after pass must not take the seals with it.
        sealed = None
        if seal_keys is not None:
            # After this pass's own audit records, so the seal covers them.
            sealed = await seal(db, seal_keys, clock.now(), timedelta(seconds=settings.audit_seal_seconds))
    return dataclasses.replace(report, sealed_through=sealed.seq if sealed is not None else None)


async def _clock_pass(db: Database, clock: Clock, settings: Settings, cipher: PiiCipher) -> TickReport:
    now = clock.now()
    # First, so a clock is recounted on the schedules as loaded (by any process) before its level
    # is looked at: a holiday may move its deadline past today.
    await calendar.refresh(db)
    # Before the recounts, so a handoff step given its count back is counted again in this pass.
    windows_unmarked, handoff_counts_restored, set_aside_repaired, failed_repairs = await _repair_old_marks(
        db, clock, settings, cipher
    )
    settle = calendar.settle_window(
        settings.calendar_refresh_seconds, settings.clock_interval_seconds, settings.request_timeout_seconds
    )
    async with db.reader() as session:
        recent = await calendar.recently_loaded(session, now - settle)
        stale = await calendar.due_for_recount(session, clock.today(), recent, clock.zone)
    recounted, failed_recounts = await _each(
        db, clock, settings, cipher, "clocks to recount", None, lambda s, i: s.recount_clock(i), stale
    )
    handoffs_moved, failed_moves = await _each(
        db,
        clock,
        settings,
        cipher,
        "handoff deadlines on a day off",
        lambda s: s.ledger.on_days_off(clock.today()),
        lambda s, i: HandoffService(s).recount(i),
    )
    orders_recounted, failed_orders_recounted = await _each(
        db,
        clock,
        settings,
        cipher,
        "supervision orders to recount",
        lambda s: SupervisionService(s).provisional(recent),
        lambda s, i: SupervisionService(s).recount(i),
    )
    follow_ups_recounted, failed_follow_ups_recounted = await _each(
        db,
        clock,
        settings,
        cipher,
        "follow-ups to recount",
        lambda s: AgreementService(s).provisional_follow_ups(recent),
        lambda s, i: AgreementService(s).recount_follow_up(i),
    )
    async with db.reader() as session:
        levels = await DisputeService(session, clock, settings, cipher).clocks.due_levels(now)
    due = {d.clock_id: d.level for d in levels}
    # A party window's end is recorded apart: it is not the center's overdue. One that reached its
    # warning share goes there too, and is claimed without a report.
    groups = (
        ("at_risk clocks", [d.clock_id for d in levels if d.level == Level.at_risk and not d.party_window]),
        ("overdue clocks", [d.clock_id for d in levels if d.level == Level.overdue and not d.party_window]),
        ("party windows", [d.clock_id for d in levels if d.party_window]),
    )
    reported = []
    failed_levels = 0
    for what, ids in groups:
        done, failed_now = await _each(
            db, clock, settings, cipher, what, None, lambda s, i: _report_level(s, i, due[i]), ids
        )
        reported.append(done)
        failed_levels += failed_now
    at_risk, overdue_clocks, windows_closed = reported
    async with db.reader() as session:
        overdue = await DisputeService(session, clock, settings, cipher).overdue_assignments()
    lapsed = failed = 0
    for dispute_id, version, due_on in overdue:
        reason = ReturnPayload(reason=LAPSE_REASON.format(due=due_on.isoformat() if due_on else "-"))
        try:
            async with db.writer() as session, session.begin():
                service = DisputeService(session, clock, settings, cipher)
                await service.apply(dispute_id, Action.return_, reason, SYSTEM, etag_for(version))
                await record_system_changes(session, "assignments not signed for in time")
                await number_before_commit(session, utcnow())
            lapsed += 1
        except ProblemError as exc:
            # Someone acted on the case meanwhile (signed for it, returned it): nothing to do.
            log.info("case %s not returned by the clock: %s", dispute_id, exc.slug)
            failed += 1
    if lapsed:
        log.info("clock returned %d case(s) not signed for in time", lapsed)
    overdue_obligations, failed_obligations = await _each(
        db,
        clock,
        settings,
        cipher,
        "overdue obligations",
        lambda s: AgreementService(s).overdue_obligations(),
        lambda s, i: AgreementService(s).raise_overdue(i, SYSTEM),
    )
    async with db.reader() as session:
        ledger = DisputeService(session, clock, settings, cipher).ledger
        late = [h.id for h in await ledger.overdue(clock.today())]
    overdue_handoffs, failed_handoffs = await _each(
        db,
        clock,
        settings,
        cipher,
        "overdue handoffs",
        None,
        lambda s, i: HandoffService(s).flag_overdue(i, SYSTEM),
        late,
    )
    async with db.reader() as session:
        ledger = DisputeService(session, clock, settings, cipher).ledger
        unsupplied = await ledger.materials_overdue(clock.today())
    materials_overdue, failed_materials = await _each(
        db,
        clock,
        settings,
        cipher,
        "materials not supplied",
        None,
        lambda s, i: HandoffService(s).flag_materials_overdue(i, SYSTEM),
        unsupplied,
    )
    async with db.reader() as session:
        orders = await SupervisionService(DisputeService(session, clock, settings, cipher)).overdue_orders()
    escalated, failed_orders = await _each(
        db,
        clock,
        settings,
        cipher,
        "overdue supervision orders",
        None,
        lambda s, i: SupervisionService(s).escalate(i),
        orders,
    )
    # Last, so the statistics take in what this pass changed (overdue flags above all).
    stats_days = await stats.refresh(db, clock, settings)
    return TickReport(
        stats_days=stats_days,
        lapsed=lapsed,
        failed=failed
        + failed_obligations
        + failed_handoffs
        + failed_materials
        + failed_levels
        + failed_orders
        + failed_recounts
        + failed_moves
        + failed_orders_recounted
        + failed_follow_ups_recounted
        + failed_repairs,
        clocks_recounted=recounted,
        handoff_deadlines_moved=handoffs_moved,
        orders_recounted=orders_recounted,
        follow_ups_recounted=follow_ups_recounted,
        obligations_overdue=overdue_obligations,
        handoffs_overdue=overdue_handoffs,
        materials_overdue=materials_overdue,
        at_risk=at_risk,
        overdue=overdue_clocks,
        windows_closed=windows_closed,
        orders_escalated=escalated,
        windows_unmarked=windows_unmarked,
        handoff_counts_restored=handoff_counts_restored,
        set_aside_repaired=set_aside_repaired,
    )


async def _repair_old_marks(
    db: Database, clock: Clock, settings: Settings, cipher: PiiCipher
) -> tuple[int, int, int, int]:
    """Put right, once per process and a bounded batch per pass, what was recorded before three rule
    changes (the first two of which the database cannot tell by itself: the rule file is
    configuration):

    - party windows (a rule's `party_window`: the judicial confirmation window, 人民调解法 Art. 33,
      民事诉讼法 Art. 205) reported at risk or overdue as if they were the center's deadline: they
      show normal, a closed one is recorded as closed, and the case counts as overdue in the
      statistics only if another of its clocks was (`_unmark_windows`);
    - handoff steps counted in working days (农村土地承包经营纠纷调解仲裁法 Art. 23) opened before
      the handoff kept its count (migration 0025): given their count back, so the recount below
      counts them on the holiday schedules loaded (HandoffService.restore_count);
    - performance follow-ups of an agreement set aside by re-mediation (民事诉讼法 Art. 206) that
      `remediate` left open before it closed them: closed as it closes them now, on the case's
      timeline (AgreementService.close_set_aside), so they leave the body's inbox and go overdue
      no more.

    Each is a change by the system, audited as the scheduler's others are. Nothing new is ever
    marked so (`clocks.service.shown_level`, `handoffs.ledger.count_step`,
    `AgreementService.set_aside`), so a process stops looking once it has found nothing more."""
    repairs = _REPAIRS.setdefault(db, _Repairs())
    unmarked = restored = set_aside = failed = 0
    if not repairs.set_aside_done:
        async with db.reader() as session:
            cases = await AgreementService(
                DisputeService(session, clock, settings, cipher)
            ).set_aside_left_open(REPAIR_BATCH)
        set_aside, failed_now = await _each(
            db,
            clock,
            settings,
            cipher,
            "follow-ups of set-aside agreements closed",
            None,
            lambda s, i: AgreementService(s).close_set_aside(i),
            cases,
        )
        failed += failed_now
        # A case that failed (a user acting on it at the moment) is found again by the next pass.
        repairs.set_aside_done = failed_now == 0 and len(cases) < REPAIR_BATCH
    if not repairs.handoffs_done:
        restored, failed_now = await _each(
            db,
            clock,
            settings,
            cipher,
            "handoff counts restored",
            lambda s: s.ledger.uncounted(REPAIR_BATCH),
            lambda s, i: HandoffService(s).restore_count(i),
        )
        failed += failed_now
        # Done when a pass found nothing to do, or did all it found (a full batch may leave more).
        repairs.handoffs_done = failed_now == 0 and restored < REPAIR_BATCH
    if not repairs.windows_done:
        async with db.reader() as session:
            found = await DisputeService(session, clock, settings, cipher).clocks.marked_windows(
                repairs.after, REPAIR_BATCH
            )
        # A case once, however many of its windows (each request after a rejection has its own).
        cases = list(dict.fromkeys([*sorted(repairs.retry), *(d for _, d in found)]))
        unmarked, failed_now = await _each(
            db, clock, settings, cipher, "party windows unmarked", None, _unmark_windows, cases
        )
        failed += failed_now
        # Cases that failed (a clerk acting on the case at the moment) are tried again next pass.
        repairs.retry = set()
        if failed_now:
            async with db.reader() as session:
                clocks = DisputeService(session, clock, settings, cipher).clocks
                repairs.retry = {d for d in cases if await clocks.has_marked_windows(d)}
        if found:
            repairs.after = found[-1][0]
        repairs.windows_done = len(found) < REPAIR_BATCH and not repairs.retry
    return unmarked, restored, set_aside, failed


async def _unmark_windows(service: DisputeService, dispute_id: uuid.UUID) -> bool:
    """The case's party windows still showing a level reported before windows were told apart."""
    now = service.clock.now()
    # The case first, then its clocks, as every change to a clock takes them.
    dispute = await service.session.get(Dispute, dispute_id, with_for_update=True, populate_existing=True)
    if dispute is None:
        return False
    windows = await service.clocks.marked_windows_of(dispute_id)
    if not windows:
        return False
    closed = [w for w in windows if service.clocks.unmark_window(w, now)]
    await service.session.flush()
    await service.clocks.summarise(dispute)
    if closed and dispute.ever_overdue:
        dispute.ever_overdue = await service.clocks.reported_overdue(dispute_id)
    for window in closed:
        name = CLOCK_LABELS.get(window.name, window.name)
        due = window.due_on.isoformat()
        # Recorded as the window closing, as it is recorded today, saying the overdue report is
        # withdrawn: the case's readers saw `clock_overdue` for it.
        await service.record_work(
            dispute,
            WINDOW_CLOSED,
            SYSTEM,
            WINDOW_CLOSED_REASON.format(name=name, due=due) + OVERDUE_WITHDRAWN,
            {"clock": window.name, "due_on": due, "source": window.source},
            WINDOW_CLOSED,
        )
    if len(closed) < len(windows):
        # A window only warned of (still open, or closing at the next level pass) was reported to
        # nobody but the case's colour: no event for it, but the change is audited all the same.
        if not closed:
            # No window closed, no timeline entry moved the version: the case's colour changed all
            # the same, and a copy held of it is stale.
            await service.record_correction(dispute)
        await append(
            service.session,
            [
                AuditEntry.by(
                    SYSTEM,
                    "scheduler.clock_level_corrected",
                    object_type="dispute",
                    object_id=str(dispute_id),
                    details={
                        "job": "party windows unmarked",
                        "clocks": [str(w.id) for w in windows if w not in closed],
                        "level_was": Level.at_risk.value,
                    },
                )
            ],
            utcnow(),
        )
    return True


async def _report_level(service: DisputeService, clock_id: uuid.UUID, level: Level) -> bool:
    """Record that a clock reached `level`: once, even with several schedulers (see `claim`)."""
    now = service.clock.now()
    # The case first, then its clock: the order every change to a clock takes them in (a transition,
    # a pause, a resumption, an extension, a recount). Claiming the clock first and writing the case
    # after would deadlock with a clerk changing the same clock at the same moment.
    dispute_id = await service.session.scalar(select(CaseClock.dispute_id).where(CaseClock.id == clock_id))
    if dispute_id is None:
        return False
    dispute = await service.session.get(Dispute, dispute_id, with_for_update=True, populate_existing=True)
    if dispute is None:
        return False
    case_clock = await service.clocks.claim(clock_id, level, now)
    if case_clock is None:
        return False
    window = service.clocks.party_window(case_clock)
    if window and level != Level.overdue:
        return False  # a party window warns the center of nothing (clocks.service.shown_level)
    if not window and level == Level.overdue:
        dispute.ever_overdue = True
    await service.clocks.summarise(dispute)
    name = CLOCK_LABELS.get(case_clock.name, case_clock.name)
    due = case_clock.due_on.isoformat()
    payload = {"clock": case_clock.name, "due_on": due, "source": case_clock.source}
    if window:
        action, reason = WINDOW_CLOSED, WINDOW_CLOSED_REASON.format(name=name, due=due)
    else:
        action, reason = f"clock_{level.value}", LEVEL_REASONS[level].format(name=name, due=due)
        payload["level"] = level.value
    await service.record_work(dispute, action, SYSTEM, reason, payload, action)
    return True


async def _each(
    db: Database,
    clock: Clock,
    settings: Settings,
    cipher: PiiCipher,
    what: str,
    find: Callable[[DisputeService], Awaitable[list[uuid.UUID]]] | None,
    step: Callable[[DisputeService, uuid.UUID], Awaitable[bool]],
    ids: list[uuid.UUID] | None = None,
) -> tuple[int, int]:
    """Run `step` on each id in its own transaction; a conflict with a user skips that one."""
    if ids is None:
        assert find is not None
        async with db.reader() as session:
            ids = await find(DisputeService(session, clock, settings, cipher))
    done = failed = 0
    for item in ids:
        try:
            async with db.writer() as session, session.begin():
                if await step(DisputeService(session, clock, settings, cipher), item):
                    await record_system_changes(session, what)
                    await number_before_commit(session, utcnow())
                    done += 1
        except ProblemError as exc:
            log.info("clock skipped %s %s: %s", what, item, exc.slug)
            failed += 1
        except (DBAPIError, PoolTimeout, ConnectionError) as exc:
            if not is_connection_problem(exc):
                raise
            # Rolled back to let a user's request go on (a deadlock's victim), or the database is
            # briefly away: this one waits for the next pass, the rest of this pass goes on.
            log.warning("clock deferred %s %s: %s", what, item, type(exc).__name__)
            failed += 1
    if done:
        log.info("clock handled %d %s", done, what)
    return done, failed


async def run(
    db: Database,
    clock: Clock,
    settings: Settings,
    cipher: PiiCipher,
    stop: asyncio.Event,
    seal_keys: SealKeys | None = None,
    *,
    keys: KeyVerdict | None = None,
) -> None:
    """Ticks until `stop` is set. `keys`: the personal-data keys are to be checked once the
    database answers, before the first tick (the server's scheduler, or one whose database did not
    answer at its start), and KeysRefused is raised if they do not open the data (core/secrets.py)."""
    if keys is not None:
        checking = FailingTurns(log, "personal-data key check", settings.clock_interval_seconds, 60.0)
        await check_keys_once_answered(db, keys, stop, checking)
    # While ticks fail (the database away), the pause grows from the interval to a minute at most
    # (a tick per minute is the usual already), and each failure after the first is one line.
    failing = FailingTurns(log, "clock tick", settings.clock_interval_seconds, 60.0)
    while not stop.is_set():
        try:
            await tick(db, clock, settings, cipher, seal_keys)
        except Exception as exc:
            pause = failing.failed(exc)
        else:
            failing.succeeded()
            pause = settings.clock_interval_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
    if seal_keys is not None:
        # A service stopped leaves its chain sealed to the last record: verified while it is down,
        # the records of its last minutes would otherwise go unsealed past the time verification
        # allows them (seal.check_overdue), and fail it.
        try:
            await seal(db, seal_keys, clock.now(), None)
        except Exception:
            log.exception("could not seal the audit chain on stopping")
