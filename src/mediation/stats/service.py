"""Statistics for supervisors, from a rollup kept exact, or from the raw rows for narrow scopes.

Counting a million cases per request is too slow (a GROUPING SETS pass takes about a second on
PostgreSQL, percentiles twice that), so the statistics come from `stats_rollups`: one summary
(`stats.summary`) per local day, month and year of registration and per province, city and
county. A range is answered by a few of those rows added up, and taken away where that reads less
(`plan`): the last three years are four yearly rows, whatever the number of cases.

The rollup follows the cases by their `updated_at`, which the service stamps on every change
together with a version bump. `refresh` recomputes each local day that holds a case changed since
the high-water mark (minus `REFRESH_MARGIN`, since a stamp is taken before its transaction
commits), then moves the months and years holding those days by the difference, then the mark.
Every statistics request first checks, in one indexed query, whether anything changed in that
window and refreshes if so; the scheduler can call `refresh` as well.

A caller whose cases the rollup does not separate (center staff of a town, a mediation body, a
court) gets the same summary computed from the rows it can see (`disputes.scope.visible_to`):
such scopes hold few cases.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body
from mediation.core.clock import Clock
from mediation.core.db import Database, UTCDateTime
from mediation.core.errors import ServiceUnavailable, ValidationFailed
from mediation.core.i18n import Text, current_language
from mediation.core.principal import Principal
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute
from mediation.disputes.schemas import EARLIEST_DAY, LATEST_DAY
from mediation.disputes.scope import rule_for, visible_to
from mediation.stats import labels
from mediation.stats.models import StatsRefreshState, StatsRollup
from mediation.stats.schemas import (
    CountOut,
    Interval,
    OverviewOut,
    PeriodOut,
    RateOut,
    RatesOut,
    SatisfactionOut,
    Source,
    StageOut,
    TotalsOut,
    TrendOut,
)
from mediation.stats.summary import (
    NO_BODY,
    RESOLUTION_SECONDS,
    SATISFACTION_SCORES,
    STAGES,
    CaseFacts,
    Headline,
    Summary,
    accumulate,
    add_case,
    headline,
    merge,
    merged,
    ratio,
    stage_figures,
    summarise,
)

log = logging.getLogger(__name__)

# Longer than any transaction that changes a case can stay open (requests are cancelled after
# `request_timeout_seconds`), so a change stamped before the last refresh but committed after it
# is still inside the window the next refresh looks at.
REFRESH_MARGIN = timedelta(minutes=5)
# Region prefixes the rollup keeps a summary for: province, city, county. Everything at once (the
# system's view) is the sum of the provinces.
ROLLUP_REGION_LENGTHS = frozenset({2, 4, 6})
INLINE_BUILD_LIMIT = 50_000  # cases a first build may count inside a request: a few seconds
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660  # ten years
REFRESH_LOCK = 0x6D65645F73746174  # pg_advisory_xact_lock key held by a refresh
STATE_ID = 1
_IN_CHUNK = 500  # values per IN list
_KEYS_PER_QUERY = 200  # (period, region) pairs per statement
_RUNS_PER_QUERY = 20  # runs of consecutive days read per statement

FACT_COLUMNS = (
    Dispute.status,
    Dispute.category,
    Dispute.channel,
    Dispute.tier,
    Dispute.region_code,
    Dispute.body_id,
    Dispute.created_at,
    Dispute.closed_at,
    Dispute.accepted_at,
    Dispute.mediation_started_at,
    Dispute.mediation_ended_at,
    Dispute.mediation_result,
    Dispute.confirmation_requested_at,
    Dispute.confirmation_decided_at,
    Dispute.confirmation_result,
    Dispute.ever_overdue,
    Dispute.satisfaction,
)


def fact_columns(session: AsyncSession) -> tuple[Any, ...]:
    """FACT_COLUMNS as this database answers them fastest. asyncpg already gives timestamps as
    aware UTC datetimes, so they are read as they come rather than through `UTCDateTime`: a
    Python call per value is seven million calls in a first build over a million cases."""
    if session.get_bind().dialect.name != "postgresql":
        return FACT_COLUMNS
    return tuple(
        type_coerce(column, DateTime(timezone=True)).label(column.key)
        if isinstance(column.type, UTCDateTime)
        else column
        for column in FACT_COLUMNS
    )


# Core inserts: the ORM's bulk path costs several times more per row for no benefit here.
ROLLUP_TABLE = cast(Table, StatsRollup.__table__)
HEADLINE_COLUMNS = tuple(getattr(StatsRollup, name) for name in Headline._fields)

Key = tuple[date, str]  # (period start, region prefix)
_COUNT_LIST = TypeAdapter(list[CountOut])


# ---- periods -----------------------------------------------------------------------------------


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def month_of(day: date) -> date:
    return day.replace(day=1)


def year_of(day: date) -> date:
    return date(day.year, 1, 1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


Piece = tuple[str, date, int]  # (grain, period start, +1 to add the row or -1 to take it away)
# What reading a row costs, roughly its size: a month's or a year's summary holds nearly every
# code and duration of its region, a day's only those of one day's cases.
READ_COST = {"day": 1, "month": 4, "year": 6}
_CHILD = {"year": "month", "month": "day"}


def plan(first: date, last: date, stored: Collection[tuple[str, date]]) -> list[Piece]:
    """The rollup rows whose sum is exactly the cases registered in [first, last], cheapest to read.

    Summaries subtract as exactly as they add, so a year or month the range covers in part is
    either the sum of its parts inside the range or its own row minus its parts outside, whichever
    reads less; a period with no row (`stored` holds the rows there are) holds no cases and costs
    nothing. A range ending today thus reads this month's row instead of its days one by one, and
    3 May to 1 June is May minus two days, plus June.
    """
    pieces: list[Piece] = []
    for year in range(first.year, last.year + 1):
        start = date(year, 1, 1)
        pieces += _part("year", start, max(first, start), min(last, date(year, 12, 31)), stored)
    return pieces


def _period_end_of(grain: str, start: date) -> date:
    if grain == "year":
        return date(start.year, 12, 31)
    if grain == "month":
        return _next_month(start) - timedelta(days=1)
    return start


def _part(grain: str, start: date, lo: date, hi: date, stored: Collection[tuple[str, date]]) -> list[Piece]:
    """[lo, hi], inside the period of `grain` beginning at `start`."""
    end = _period_end_of(grain, start)
    row: list[Piece] = [(grain, start, 1)] if (grain, start) in stored else []
    if (lo, hi) == (start, end) or grain == "day":
        return row
    inside = _within(grain, lo, hi, stored)
    outside: list[Piece] = []
    if lo > start:
        outside += _within(grain, start, lo - timedelta(days=1), stored)
    if hi < end:
        outside += _within(grain, hi + timedelta(days=1), end, stored)
    less = row + [(g, period, -sign) for g, period, sign in outside]
    return min(inside, less, key=lambda pieces: sum(READ_COST[g] for g, _, _ in pieces))


def _within(grain: str, lo: date, hi: date, stored: Collection[tuple[str, date]]) -> list[Piece]:
    """[lo, hi] made of the periods one grain finer."""
    child = _CHILD[grain]
    pieces: list[Piece] = []
    start = lo if child == "day" else month_of(lo)
    while start <= hi:
        end = _period_end_of(child, start)
        pieces += _part(child, start, max(lo, start), min(hi, end), stored)
        start = end + timedelta(days=1)
    return pieces


def period_start(day: date, interval: Interval) -> date:
    if interval == Interval.week:
        return day - timedelta(days=day.weekday())
    if interval == Interval.month:
        return month_of(day)
    return day


def _period_end(start: date, interval: Interval) -> date:
    if interval == Interval.week:
        return start + timedelta(days=6)
    if interval == Interval.month:
        return _next_month(start) - timedelta(days=1)
    return start


def _period_label(start: date, interval: Interval) -> str:
    if interval == Interval.week:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if interval == Interval.month:
        return f"{start:%Y-%m}"
    return start.isoformat()


def resolve_range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The registration days asked for: by default the last 30 days up to today (from the earliest
    day, for a `to` close to it)."""
    # The days sent are checked before any default is counted from them: 29 days before
    # 0001-01-05 is no date at all, and a default must not fail on a `from` nobody sent.
    _check_day("from", first)
    _check_day("to", last)
    if last is None:
        last = today if first is None else max(today, first)
    if first is None:
        first = max(EARLIEST_DAY, last - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    if first > last:
        raise ValidationFailed.of_field(
            "from",
            "range_reversed",
            Text("起始日期晚于截止日期", "The range starts after it ends (from > to)"),
            location="query",
        )
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed.of_field(
            "to",
            "range_too_long",
            Text("统计区间不能超过十年 ({n} 天)", "The range may span at most ten years ({n} days)").format(
                n=MAX_RANGE_DAYS
            ),
            location="query",
        )
    return first, last


def _check_day(field: str, day: date | None) -> None:
    if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValidationFailed.of_field(
            field,
            "date_out_of_range",
            Text("日期须在 {a} 至 {b} 之间", "The date must lie between {a} and {b}").format(
                a=EARLIEST_DAY, b=LATEST_DAY
            ),
            location="query",
        )


# ---- scope ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatsScope:
    """Which cases a caller's statistics count, and whether the rollup holds exactly those."""

    region: str | None  # the region filter asked for
    prefix: str  # the region the figures cover ("" for all, or for a body's or court's own cases)
    rollup_region: str | None  # the rollup's region holding exactly the caller's cases ("": all), if any
    clause: ColumnElement[bool]  # the same cases, as a query clause over disputes


def scope_for(principal: Principal, region: str | None) -> StatsScope:
    """A center sees its region (the `region` filter must lie inside it); a body, court or
    commission its own cases, which the rollup does not separate."""
    rule = rule_for(principal)
    clause = visible_to(principal)
    if region is not None:
        clause = and_(clause, Dispute.region_code.startswith(region))
    rollup_region = None
    prefix = region or ""
    if rule[0] in ("all", "region"):
        own = rule[1] or ""
        if region is not None and not region.startswith(own):
            raise ValidationFailed.of_field(
                "region",
                "outside_region",
                Text("该地区不在本中心辖区内", "The region is outside your center's region"),
                location="query",
            )
        prefix = own if region is None else region
        if len(prefix) in ROLLUP_REGION_LENGTHS or not prefix:
            rollup_region = prefix
    return StatsScope(region, prefix, rollup_region, clause)


# ---- the rollup ------------------------------------------------------------------------------------


Seen = dict[str, int]  # case id -> the version the rollup has counted


async def _recent(session: AsyncSession, high_water: datetime) -> list[Any]:
    """The cases stamped within the look-back window: id, version, registration, stamp."""
    rows = await session.execute(
        select(Dispute.id, Dispute.version, Dispute.created_at, Dispute.updated_at).where(
            Dispute.updated_at > high_water - REFRESH_MARGIN
        )
    )
    return list(rows)


def _seen(recent: Iterable[Any], high_water: datetime) -> Seen:
    """What the next refresh will find already counted: the versions inside its window."""
    return {
        str(case_id): version
        for case_id, version, _, updated_at in recent
        if updated_at > high_water - REFRESH_MARGIN
    }


async def _is_current(session: AsyncSession, state: StatsRefreshState) -> bool:
    """Whether no case changed since the refresh that wrote `state`, without reading the window's
    rows: a case's stamp only moves forward and its version only grows, so no case leaves the
    window and every change raises the window's count (a case new to it) or its sum of versions
    (one already in it). The database adds them up; a busy deployment's window holds thousands of
    cases, and each statistics request used to fetch them all to compare in Python."""
    assert state.high_water is not None
    count, versions = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Dispute.version), 0)).where(
                Dispute.updated_at > state.high_water - REFRESH_MARGIN
            )
        )
    ).one()
    return (count, versions) == (len(state.seen), sum(state.seen.values()))


def _window_outlived(state: StatsRefreshState, now: datetime) -> bool:
    """Whether the look-back window still holds cases although every one of them committed long
    ago. Nothing changed since (or `_is_current` would have said so), but each check counts the
    window again, and after a bulk load stamped within minutes it holds every case loaded: 51,284
    of a million in one benchmark, 120-190 ms a check. A refresh now finds no day to recount and
    leaves an empty window behind (see `_catch_up`), once per quiet spell."""
    assert state.high_water is not None
    return bool(state.seen) and state.high_water <= now - REFRESH_MARGIN


async def ensure_current(db: Database, clock: Clock, settings: Settings) -> uuid.UUID | None:
    """Refresh the rollup if a case changed since the last refresh. The check is one indexed query
    in a read of its own; a refresh, when needed, commits in a transaction of its own too, so the
    request's session (opened afterwards) sees it, and a statistics read never holds the write lock.

    A first build over many cases outlasts a request (about 80 s for a million on a small server),
    and a request cut off by its time limit would roll it back only for the next one to start
    over. So it runs in the background, once per process, while requests answer 503 with
    Retry-After; the scheduler's `refresh` usually gets there first.

    Answers the rollup's generation, found current or committed by this call's refresh: an answer
    computed from the rollup may be kept under it (if the rollup moves on before the caller reads
    it, the answer kept is newer than its generation, never older). None when it has none yet.
    """
    async with db.reader() as session:
        state = await session.get(StatsRefreshState, STATE_ID)
        if state is not None and state.high_water is not None:
            # An outlived window is refreshed whatever the count says: no need to count it first.
            if not _window_outlived(state, clock.now()) and await _is_current(session, state):
                return state.generation
            cases = 0  # a refresh from here on: the changed days only
        else:
            cases = await session.scalar(select(func.count()).select_from(Dispute)) or 0
            if state is not None and cases == 0:
                return state.generation
    if cases <= INLINE_BUILD_LIMIT:
        return (await _refresh_committed(db, clock, ZoneInfo(settings.timezone)))[1]
    building = _first_builds.get(id(db))
    if building is None or building.done():
        task = asyncio.create_task(refresh(db, clock, settings), name="statistics-first-build")
        task.add_done_callback(_log_failure)
        _first_builds[id(db)] = task
    raise ServiceUnavailable(
        Text(
            "统计数据正在首次生成, 请稍后再试",
            "The statistics are being built for the first time; retry shortly",
        ),
        headers={"Retry-After": "60"},
    )


_first_builds: dict[int, asyncio.Task[int]] = {}


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("statistics first build failed", exc_info=error)


async def refresh(target: Database | AsyncSession, clock: Clock, settings: Settings) -> int:
    """Bring the statistics rollup up to date with the cases; answers how many local days were
    recomputed (0 when it was current).

    Given the `Database` it runs as a unit of work of its own and commits (the scheduler's job,
    the statistics endpoints); given a session it works inside the caller's transaction and
    leaves the commit to the caller. Concurrent refreshers queue: on PostgreSQL on an advisory
    lock, on SQLite on the write lock its writers take up front.
    """
    zone = ZoneInfo(settings.timezone)
    if isinstance(target, AsyncSession):
        return await _Refresh(target, clock, zone).run()
    return (await _refresh_committed(target, clock, zone))[0]


async def _refresh_committed(db: Database, clock: Clock, zone: ZoneInfo) -> tuple[int, uuid.UUID | None]:
    """A refresh in a transaction of its own: the days recomputed and the generation committed."""
    async with db.writer() as session:
        run = _Refresh(session, clock, zone)
        days = await run.run()
        await session.commit()
    return days, run.generation


class _Refresh:
    def __init__(self, session: AsyncSession, clock: Clock, zone: ZoneInfo) -> None:
        self.session = session
        self.clock = clock
        self.zone = zone
        self.generation: uuid.UUID | None = None  # the rollup's, once run

    async def run(self) -> int:
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(select(func.pg_advisory_xact_lock(literal(REFRESH_LOCK, BigInteger))))
        state = await self.session.get(StatsRefreshState, STATE_ID)
        if state is None:
            state = StatsRefreshState(id=STATE_ID, seen={})
            self.session.add(state)
        elif (
            state.high_water is not None
            and not _window_outlived(state, self.clock.now())
            and await _is_current(self.session, state)
        ):
            self.generation = state.generation
            return 0  # another refresher got here first
        if state.high_water is None:
            days, high_water, seen = await self._rebuild()
            changed = True
        else:
            days, high_water, seen = await self._catch_up(state.high_water, state.seen)
            changed = days > 0
        state.high_water, state.seen = high_water, seen
        state.refreshed_at = self.clock.now()
        if changed or state.generation is None:
            state.generation = uuid.uuid4()
        # else only the window moved: the rollup, and every answer read from it, stay as they were.
        self.generation = state.generation
        await self.session.flush()
        return days

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    async def _rebuild(self) -> tuple[int, datetime | None, Seen]:
        """Everything from scratch: the first refresh, or one after the rollup was emptied."""
        # The mark and the window before the cases are read: a change committed in between is
        # both counted and seen as new by the next check, which counts its day again (harmless).
        high_water = await self.session.scalar(select(func.max(Dispute.updated_at)))
        seen = {} if high_water is None else _seen(await _recent(self.session, high_water), high_water)
        counties: dict[Key, Summary] = {}
        async for case in self._every_case():
            key = (self.local_day(case.created_at), case.region_code[:6])
            summary = counties.get(key)
            if summary is None:
                summary = counties[key] = {}
            add_case(summary, case)
        days = _widen(counties)
        months = _roll_up(days, month_of)
        years = _roll_up(months, year_of)
        await self.session.execute(delete(StatsRollup))
        for grain, summaries in (("day", days), ("month", months), ("year", years)):
            await _insert(self.session, grain, summaries)
        return len({day for day, _ in counties}), high_water, seen

    async def _every_case(self) -> AsyncIterator[CaseFacts]:
        stmt = select(*fact_columns(self.session))
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            # Through the driver's cursor, inside this transaction: the result layer's per-row
            # work is a third of a first build's time over a million cases.
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            sql = str(stmt.compile(dialect=connection.dialect))
            async for record in driver.cursor(sql, prefetch=10_000):
                yield CaseFacts._make(record)
            return
        result = await self.session.stream(stmt)
        async for partition in result.partitions(10_000):
            for row in partition:
                yield CaseFacts._make(row)

    async def _catch_up(self, high_water: datetime, counted: Seen) -> tuple[int, datetime, Seen]:
        """Recompute the days of the cases changed since they were last counted; move their months
        and years by the difference."""
        # The refresh's own time counts as a stamp, taken before the read: whatever was stamped more
        # than REFRESH_MARGIN before it has committed, and this read sees it. So the next window
        # starts from here, not from the latest change, which may be long past.
        now = self.clock.now()
        recent = await _recent(self.session, high_water)
        new_mark = max([high_water, now, *(updated_at for *_, updated_at in recent)])
        # The next window, from this same read: whatever commits later makes the next check differ.
        seen = _seen(recent, new_mark)
        days = {
            self.local_day(created_at)
            for case_id, version, created_at, _ in recent
            if counted.get(str(case_id)) != version
        }
        if not days:
            return 0, new_mark, seen
        # Each changed day is counted again whole, county by county; where a county's day differs
        # from its row, the difference moves that row and the rows above it (city, province;
        # month, year). A refresh costs the changed days and the few rows above them.
        fresh = await self._summarise_days(days)
        stale = await _county_days(self.session, days)
        deltas: dict[str, dict[Key, Summary]] = {"day": {}, "month": {}, "year": {}}
        for day, county in fresh.keys() | stale.keys():
            before, after = stale.get((day, county), {}), fresh.get((day, county), {})
            if before == after:
                continue
            change = merge(merge({}, after), before, -1)
            for grain, period in (("day", day), ("month", month_of(day)), ("year", year_of(day))):
                for length in (6, 4, 2):
                    merge(deltas[grain].setdefault((period, county[:length]), {}), change)
        for grain, changes in deltas.items():
            changes = {key: change for key, change in changes.items() if change}
            current = await _load_rows(self.session, grain, changes)
            for key, change in changes.items():
                merge(current.setdefault(key, {}), change)
            await _replace_rows(self.session, grain, current)
        return len(days), new_mark, seen

    async def _summarise_days(self, days: set[date]) -> dict[Key, Summary]:
        """The county summaries of these days, counted from the cases."""
        runs = _runs(sorted(days))
        counties: dict[Key, Summary] = {}
        for i in range(0, len(runs), _RUNS_PER_QUERY):
            spans = [
                and_(
                    Dispute.created_at >= day_start(first, self.zone),
                    Dispute.created_at < day_start(last + timedelta(days=1), self.zone),
                )
                for first, last in runs[i : i + _RUNS_PER_QUERY]
            ]
            for row in await self.session.execute(select(*fact_columns(self.session)).where(or_(*spans))):
                case = CaseFacts._make(row)
                add_case(
                    counties.setdefault((self.local_day(case.created_at), case.region_code[:6]), {}), case
                )
        return counties


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _widen(counties: Mapping[Key, Summary]) -> dict[Key, Summary]:
    """County summaries, plus their city's and province's."""
    out: dict[Key, Summary] = dict(counties)
    for (period, county), summary in counties.items():
        for length in (4, 2):
            accumulate(out.setdefault((period, county[:length]), {}), summary)
    return out


def _roll_up(summaries: Mapping[Key, Summary], period_of: Callable[[date], date]) -> dict[Key, Summary]:
    out: dict[Key, Summary] = {}
    for (period, region), summary in summaries.items():
        accumulate(out.setdefault((period_of(period), region), {}), summary)
    return out


def _chunks(values: Iterable[date]) -> list[list[date]]:
    ordered = sorted(values)
    return [ordered[i : i + _IN_CHUNK] for i in range(0, len(ordered), _IN_CHUNK)]


async def _county_days(session: AsyncSession, days: Iterable[date]) -> dict[Key, Summary]:
    """The stored county summaries of these days."""
    out: dict[Key, Summary] = {}
    for chunk in _chunks(days):
        rows = await session.execute(
            select(StatsRollup.period, StatsRollup.region, StatsRollup.summary).where(
                StatsRollup.grain == "day",
                StatsRollup.period.in_(chunk),
                func.length(StatsRollup.region) == 6,
            )
        )
        for period, region, summary in rows:
            out[(period, region)] = summary
    return out


def _batches(keys: Iterable[Key]) -> list[list[Key]]:
    ordered = sorted(keys)
    return [ordered[i : i + _KEYS_PER_QUERY] for i in range(0, len(ordered), _KEYS_PER_QUERY)]


def _rows_of(grain: str, keys: Iterable[Key]) -> ColumnElement[bool]:
    return and_(
        StatsRollup.grain == grain,
        or_(*(and_(StatsRollup.period == period, StatsRollup.region == region) for period, region in keys)),
    )


async def _load_rows(session: AsyncSession, grain: str, keys: Iterable[Key]) -> dict[Key, Summary]:
    out: dict[Key, Summary] = {}
    for batch in _batches(keys):
        rows = await session.execute(
            select(StatsRollup.period, StatsRollup.region, StatsRollup.summary).where(_rows_of(grain, batch))
        )
        for period, region, summary in rows:
            out[(period, region)] = summary
    return out


async def _replace_rows(session: AsyncSession, grain: str, summaries: Mapping[Key, Summary]) -> None:
    """These rows of `grain` become `summaries` (an empty one is deleted)."""
    for batch in _batches(summaries):
        await session.execute(delete(StatsRollup).where(_rows_of(grain, batch)))
    await _insert(session, grain, summaries)


async def _insert(session: AsyncSession, grain: str, summaries: Mapping[Key, Summary]) -> None:
    rows: list[dict[str, Any]] = [
        {
            "grain": grain,
            "period": period,
            "region": region,
            "summary": summary,
            **headline(summary)._asdict(),
        }
        for (period, region), summary in summaries.items()
        if summary
    ]
    for i in range(0, len(rows), 1000):
        await session.execute(insert(ROLLUP_TABLE), rows[i : i + 1000])


# ---- reading -------------------------------------------------------------------------------------


# The overviews this process computed lately, under the rollup generation they were read at. A
# supervisors' dashboard polls the same few ranges, and while no case changes neither does the
# answer, which at a province's scale lists thousands of places. Exact, not timed: any refresh,
# in any process, writes a new generation, and the next request computes the overview again.
OVERVIEWS_KEPT = 32
_OVERVIEWS: OrderedDict[tuple[Any, ...], tuple[Mapping[str, int], OverviewOut]] = OrderedDict()


class StatsService:
    """Reads for the statistics endpoints. The request's session only reads; the rollup refresh
    runs as a unit of work of its own before it (see `ensure_current`)."""

    def __init__(self, session: AsyncSession, db: Database, clock: Clock, settings: Settings) -> None:
        self.session = session
        self.db = db
        self.clock = clock
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)

    def range(self, first: date | None, last: date | None) -> tuple[date, date]:
        return resolve_range(first, last, self.clock.today())

    async def overview(
        self, principal: Principal, first: date | None, last: date | None, region: str | None
    ) -> OverviewOut:
        first, last = self.range(first, last)
        scope = scope_for(principal, region)
        as_of, source, generation = await self._prepare(scope)
        key = None
        if generation is not None and scope.rollup_region is not None:
            key = (generation, scope.rollup_region, scope.prefix, region, first, last, current_language())
            kept = _OVERVIEWS.get(key)
            if kept is not None:
                _OVERVIEWS.move_to_end(key)
                body_counts, out = kept
                # A body's name is the one thing shown that can change without a refresh.
                return out.model_copy(update={"as_of": as_of, "by_body": await self._bodies(body_counts)})
        if scope.rollup_region is not None:
            summary = await self._rollup_summary(scope.rollup_region, first, last)
        else:
            summary = summarise(await self._cases(scope, first, last))
        out = await self._describe(summary, first, last, region, as_of, source, scope.prefix)
        if key is not None:
            _OVERVIEWS[key] = (summary.get("body", {}), out)
            while len(_OVERVIEWS) > OVERVIEWS_KEPT:
                _OVERVIEWS.popitem(last=False)
        return out

    async def trend(
        self,
        principal: Principal,
        first: date | None,
        last: date | None,
        region: str | None,
        interval: Interval,
    ) -> TrendOut:
        first, last = self.range(first, last)
        scope = scope_for(principal, region)
        as_of, source, _ = await self._prepare(scope)
        by_day: dict[date, Headline] = {}
        if scope.rollup_region is not None:
            rows = await self.session.execute(
                select(StatsRollup.period, *HEADLINE_COLUMNS).where(
                    StatsRollup.grain == "day",
                    _rollup_rows_of(scope.rollup_region),
                    StatsRollup.period.between(first, last),
                )
            )
            for period, *values in rows:
                by_day[period] = by_day.get(period, Headline()).plus(Headline(*values))
        else:
            per_day: dict[date, Summary] = {}
            for case in await self._cases(scope, first, last):
                add_case(per_day.setdefault(case.created_at.astimezone(self.zone).date(), {}), case)
            by_day = {day: headline(summary) for day, summary in per_day.items()}
        sums: dict[date, Headline] = {}
        for day, figures in by_day.items():
            start = period_start(day, interval)
            sums[start] = sums.get(start, Headline()).plus(figures)
        periods = []
        start = period_start(first, interval)
        while start <= last:
            end = _period_end(start, interval)
            periods.append(
                _period_out(
                    _period_label(start, interval), max(start, first), min(end, last), sums.get(start)
                )
            )
            start = end + timedelta(days=1)
        total = Headline()
        for figures in sums.values():
            total = total.plus(figures)
        return TrendOut(
            from_=first,
            to=last,
            region=region,
            interval=interval,
            as_of=as_of,
            source=source,
            periods=periods,
            total=_period_out(f"{first}/{last}", first, last, total),
        )

    async def _prepare(self, scope: StatsScope) -> tuple[datetime, Source, uuid.UUID | None]:
        """When the figures are as of, where they come from, and the rollup's generation when
        they come from a rollup that was current already (see `ensure_current`)."""
        as_of = self.clock.now()
        if scope.rollup_region is None:
            return as_of, "cases", None
        return as_of, "rollup", await ensure_current(self.db, self.clock, self.settings)

    async def _rollup_summary(self, region: str, first: date, last: date) -> Summary:
        rows = await self.session.execute(
            select(StatsRollup.grain, StatsRollup.period).where(
                _rollup_rows_of(region),
                StatsRollup.period.between(year_of(first), date(last.year, 12, 31)),
            )
        )
        stored = {(grain, period) for grain, period in rows}
        signs = {(grain, period): sign for grain, period, sign in plan(first, last, stored)}
        if not signs:
            return {}
        wanted: dict[str, list[date]] = {}
        for grain, period in signs:
            wanted.setdefault(grain, []).append(period)
        summaries = (
            await self.session.execute(
                select(StatsRollup.grain, StatsRollup.period, StatsRollup.summary).where(
                    _rollup_rows_of(region),
                    or_(
                        *(and_(StatsRollup.grain == g, StatsRollup.period.in_(p)) for g, p in wanted.items())
                    ),
                )
            )
        ).all()
        total = merged(summary for grain, period, summary in summaries if signs[(grain, period)] > 0)
        for grain, period, summary in summaries:
            if signs[(grain, period)] < 0:
                merge(total, summary, -1)
        return total

    async def _cases(self, scope: StatsScope, first: date, last: date) -> list[CaseFacts]:
        rows = await self.session.execute(
            select(*fact_columns(self.session)).where(
                scope.clause,
                Dispute.created_at >= day_start(first, self.zone),
                Dispute.created_at < day_start(last + timedelta(days=1), self.zone),
            )
        )
        return [CaseFacts._make(row) for row in rows]

    async def _describe(
        self,
        summary: Summary,
        first: date,
        last: date,
        region: str | None,
        as_of: datetime,
        source: Source,
        prefix: str,
    ) -> OverviewOut:
        figures = headline(summary)
        regions: dict[str, int] = summary.get("region", {})
        return OverviewOut(
            from_=first,
            to=last,
            region=region,
            as_of=as_of,
            source=source,
            duration_resolution_seconds=RESOLUTION_SECONDS,
            totals=TotalsOut(
                cases=figures.cases,
                closed=figures.closed,
                mediations_concluded=figures.mediations_concluded,
                agreements=figures.agreements,
                confirmations_decided=figures.confirmations_decided,
                confirmed=figures.confirmed,
                overdue=figures.overdue,
            ),
            by_status=_coded(summary.get("status", {}), labels.STATUS),
            by_category=_coded(summary.get("category", {}), labels.CATEGORY),
            by_channel=_coded(summary.get("channel", {}), labels.CHANNEL),
            by_tier=_coded(summary.get("tier", {}), labels.TIER),
            # Thousands of village codes over a province: validated as one list, in pydantic-core.
            by_region=_COUNT_LIST.validate_python(
                [{"key": code, "label": code, "count": n} for code, n in sorted(regions.items())]
            ),
            by_area=[
                CountOut(key=area, label=area, count=n) for area, n in sorted(areas(regions, prefix).items())
            ],
            by_body=await self._bodies(summary.get("body", {})),
            mediation_results=_coded(summary.get("mediation", {}), labels.MEDIATION_RESULT),
            confirmation_results=_coded(summary.get("confirmation", {}), labels.CONFIRMATION_RESULT),
            rates=RatesOut(
                success=_rate(figures.agreements, figures.mediations_concluded),
                confirmation=_rate(figures.confirmed, figures.confirmations_decided),
                overdue=_rate(figures.overdue, figures.cases),
            ),
            stages=[_stage_out(summary, stage.name) for stage in STAGES],
            satisfaction=SatisfactionOut(
                count=figures.satisfaction_count,
                average=ratio(figures.satisfaction_sum, figures.satisfaction_count),
                distribution=[
                    CountOut(
                        key=score,
                        label=labels.SATISFACTION.format(score=score).get(),
                        count=summary.get("satisfaction", {}).get(score, 0),
                    )
                    for score in SATISFACTION_SCORES
                ],
            ),
        )

    async def _bodies(self, counts: Mapping[str, int]) -> list[CountOut]:
        ids = [uuid.UUID(key) for key in counts if key != NO_BODY]
        names: dict[str, str] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            rows = await self.session.execute(
                select(Body.id, Body.name).where(Body.id.in_(ids[i : i + _IN_CHUNK]))
            )
            names.update((str(body_id), name) for body_id, name in rows)
        no_body = labels.NO_BODY.get()
        out: list[dict[str, Any]] = [
            {"key": None, "label": no_body, "count": n}
            if key == NO_BODY
            else {"key": key, "label": names.get(key, key), "count": n}
            for key, n in counts.items()
        ]
        out.sort(key=lambda c: (-c["count"], c["label"]))
        # Every request reads the names afresh (a kept overview included): one pass in pydantic-core.
        return _COUNT_LIST.validate_python(out)


# GB/T 2260 levels by code length: province, city, county; then town (乡镇) and village (村/社区).
REGION_LEVELS = (2, 4, 6, 9, 12)


def areas(regions: Mapping[str, int], prefix: str) -> dict[str, int]:
    """Counts by full region code summed to the level below `prefix` (a county's towns, a city's
    counties), so a province-wide overview lists its cities rather than thousands of villages."""
    level = next((n for n in REGION_LEVELS if n > len(prefix)), REGION_LEVELS[-1])
    out: dict[str, int] = {}
    for code, n in regions.items():
        out[code[:level]] = out.get(code[:level], 0) + n
    return out


def _rollup_rows_of(region: str) -> ColumnElement[bool]:
    """The rollup rows holding a region's cases: its own, or every province's for everything."""
    return StatsRollup.region == region if region else func.length(StatsRollup.region) == 2


def _coded(counts: Mapping[str, int], names: Mapping[str, Text]) -> list[CountOut]:
    """Every code of the list in its order, zeros included (stable columns for charts and
    spreadsheets), then any code counted that the list no longer has."""
    known = [CountOut(key=code, label=name.get(), count=counts.get(code, 0)) for code, name in names.items()]
    unknown = [
        CountOut(key=code, label=code, count=n) for code, n in sorted(counts.items()) if code not in names
    ]
    return known + unknown


def _rate(numerator: int, denominator: int) -> RateOut:
    return RateOut(numerator=numerator, denominator=denominator, rate=ratio(numerator, denominator))


def _stage_out(summary: Summary, name: str) -> StageOut:
    stage = next(s for s in STAGES if s.name == name)
    figures = stage_figures(summary, name)
    average = figures.average_seconds
    return StageOut(
        stage=name,
        label=stage.label.get(),
        starts=stage.starts,
        ends=stage.ends,
        count=figures.cases,
        average_seconds=average,
        average_hours=None if average is None else average / 3600,
        p90_hours=figures.p90_hours,
    )


def _period_out(label: str, start: date, end: date, figures: Headline | None) -> PeriodOut:
    f = figures or Headline()
    return PeriodOut(
        period=label,
        start=start,
        end=end,
        registered=f.cases,
        closed=f.closed,
        mediations_concluded=f.mediations_concluded,
        agreements=f.agreements,
        success_rate=ratio(f.agreements, f.mediations_concluded),
        confirmations_decided=f.confirmations_decided,
        confirmed=f.confirmed,
        confirmation_rate=ratio(f.confirmed, f.confirmations_decided),
        overdue=f.overdue,
        overdue_rate=ratio(f.overdue, f.cases),
        satisfaction_count=f.satisfaction_count,
        satisfaction_average=ratio(f.satisfaction_sum, f.satisfaction_count),
    )
