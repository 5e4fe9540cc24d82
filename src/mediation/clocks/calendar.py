"""The holiday calendar: the schedules an administrator loads for the years `chinese-calendar`
does not carry yet, kept the same in every process, and the deadlines they settle.

The State Council publishes each year's schedule (国务院办公厅关于部分节假日安排的通知) in the
autumn before it; the package carries it only from a later release. Until then, a period reaching
that year counts weekends and the statutory holidays only, and its deadline is flagged
provisional (core.legal_time). Loading the notice's days here makes every process count them (at
startup, then every `calendar_refresh_seconds`, and at each scheduler pass), and the scheduler
recomputes the running clocks they concern (`due_for_recount`, DisputeService.recount_clock), and
the other dates counted in working days (clocks.counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.clocks import engine
from mediation.clocks.models import CalendarDay, CalendarYear, CaseClock
from mediation.clocks.rules import Unit
from mediation.clocks.schemas import CalendarDayOut, CalendarIn, CalendarOut
from mediation.core import legal_time
from mediation.core.db import Database, insert_of
from mediation.core.errors import Conflict, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.principal import Principal

log = logging.getLogger(__name__)

_SCAN_BATCH = 1000

_CHINESE_NAMES: dict[str, str] = {h.value: h.chinese for h in chinese_calendar.Holiday}


async def read_schedules(session: AsyncSession) -> dict[int, dict[date, bool]]:
    years = (await session.scalars(select(CalendarYear.year))).all()
    schedules: dict[int, dict[date, bool]] = {year: {} for year in years}
    for day, year, working in (
        await session.execute(select(CalendarDay.day, CalendarDay.year, CalendarDay.working))
    ).all():
        schedules[year][day] = working
    return schedules


async def refresh(db: Database) -> bool:
    """Install the loaded schedules in this process; True when they changed."""
    async with db.reader() as session:
        schedules = await read_schedules(session)
    changed = legal_time.install_schedules(schedules)
    if changed:
        log.info("holiday schedules loaded for %s", ", ".join(map(str, sorted(schedules))) or "no year")
    return changed


async def watch(db: Database, interval: float, stop: asyncio.Event) -> None:
    """Pick up a schedule another process loaded; a failed read is tried again at the next turn."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await refresh(db)
        except Exception:
            log.exception("could not read the holiday schedules; keeping the ones in hand")


def known_until(today: date) -> date:
    """The first day of the first year from this one whose schedule nobody knows."""
    year = today.year
    while legal_time.year_known(year):
        year += 1
    return date(year, 1, 1)


def recount_concerns(today: date, recent_years: list[int]) -> ColumnElement[bool]:
    """Which running clocks a pass looks at (`due_for_recount`). Outside the minutes after a load,
    only the provisional ones, spelled as their partial index is (models: RUNNING_PROVISIONAL)."""
    reaching = [CaseClock.due_on >= date(year, 1, 1) for year in recent_years]
    return and_(
        CaseClock.stopped_at.is_(None),
        or_(CaseClock.provisional & (CaseClock.due_on < known_until(today)), *reaching),
    )


async def recently_loaded(session: AsyncSession, since: datetime) -> list[int]:
    """The years loaded (or corrected) since `since`: within the settle window, every deadline
    reaching one of them is looked at, not only the provisional ones."""
    return list(
        (await session.scalars(select(CalendarYear.year).where(CalendarYear.loaded_at >= since))).all()
    )


async def due_for_recount(
    session: AsyncSession, today: date, recent_years: list[int], tz: ZoneInfo, limit: int = 500
) -> list[uuid.UUID]:
    """Running clocks whose last day or provisional flag a count on today's calendar changes
    (`engine.replay`), up to `limit`. Looked at: the provisional ones whose period now lies on
    known years, and every one reaching a year of `recent_years`, those loaded within the settle
    window (`recently_loaded`: a correction; a process that had not read the load yet may have
    counted on the schedule before). Read in batches of columns, so a province's clocks are looked
    at without loading entities."""
    concerned = recount_concerns(today, recent_years)
    columns = (
        CaseClock.id,
        CaseClock.started_at,
        CaseClock.length,
        CaseClock.unit,
        CaseClock.history,
        CaseClock.due_on,
        CaseClock.provisional,
    )
    found: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while len(found) < limit:
        query = select(*columns).where(concerned)
        if after is not None:
            query = query.where(CaseClock.id > after)
        rows = (await session.execute(query.order_by(CaseClock.id).limit(_SCAN_BATCH))).all()
        for clock_id, started_at, length, unit, history, due_on, provisional in rows:
            end, still_provisional = engine.replay(started_at, length, Unit(unit), history, tz)
            if (end.last_day, still_provisional) != (due_on, provisional):
                found.append(clock_id)
        if len(rows) < _SCAN_BATCH:
            break
        after = rows[-1][0]
    return found[:limit]


class CalendarService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def year(self, year: int) -> CalendarOut:
        loaded = await self.session.get(CalendarYear, year)
        if loaded is not None:
            days = (
                await self.session.scalars(
                    select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
                )
            ).all()
            return CalendarOut(
                year=year,
                source="loaded",
                reference=loaded.reference,
                note=loaded.note,
                version=loaded.version,
                loaded_at=loaded.loaded_at,
                holidays=[CalendarDayOut(date=d.day, name=d.name) for d in days if not d.working],
                workdays=[CalendarDayOut(date=d.day, name=d.name) for d in days if d.working],
            )
        if not legal_time.bundled_year_known(year):
            return CalendarOut(year=year, source="unpublished")
        first, last = date(year, 1, 1), date(year, 12, 31)
        off = chinese_calendar.get_holidays(first, last, include_weekends=False)
        worked = [
            d for d in chinese_calendar.get_workdays(first, last, include_weekends=True) if d.weekday() >= 5
        ]
        return CalendarOut(
            year=year,
            source="bundled",
            holidays=[CalendarDayOut(date=d, name=_name_of(d)) for d in off],
            workdays=[CalendarDayOut(date=d, name=_name_of(d)) for d in worked],
        )

    async def replace(self, year: int, data: CalendarIn, principal: Principal, now: datetime) -> CalendarYear:
        """Store the year's schedule whole (a second load replaces the first: a correction). A year
        the package carries is not loaded over, unless it was loaded before the package carried it
        (the loaded one counts, so it must stay correctable)."""
        if legal_time.bundled_year_known(year) and await self.session.get(CalendarYear, year) is None:
            raise Conflict(
                Text(
                    "{y} 年的节假日安排已随系统发布, 不能另行导入",
                    "The {y} holiday schedule ships with the service and cannot be loaded over",
                ).format(y=year),
                code="calendar_published",
            )
        _check(year, data)
        # The year's row first, if new: of two first loads at once, the second waits for the first
        # and then replaces it, as a second load does.
        insert = insert_of(self.session)
        await self.session.execute(
            insert(CalendarYear)
            .values(year=year, reference=data.reference, version=0, loaded_by=principal.id, loaded_at=now)
            .on_conflict_do_nothing(index_elements=["year"])
        )
        current = await self.session.get(CalendarYear, year, with_for_update=True, populate_existing=True)
        assert current is not None
        current.reference, current.note = data.reference, data.note
        current.version += 1
        current.loaded_by, current.loaded_at = principal.id, now
        await self.session.execute(delete(CalendarDay).where(CalendarDay.year == year))
        self.session.add_all(
            [CalendarDay(day=d.date, year=year, working=False, name=d.name) for d in data.holidays]
            + [CalendarDay(day=d.date, year=year, working=True, name=d.name) for d in data.workdays]
        )
        await self.session.flush()
        return current


def _name_of(day: date) -> str:
    name: str | None = chinese_calendar.get_holiday_detail(day)[1]
    return _CHINESE_NAMES.get(name or "", name or "")


def _check(year: int, data: CalendarIn) -> None:
    """Every day in the year, listed once; a make-up working day is a weekend day, and not one of
    the statutory holidays."""
    errors: list[dict[str, str]] = []

    def refuse(field: str, code: str, message: Text) -> None:
        errors.append({"field": field, "location": "body", "code": code, "message": message.get()})

    seen: set[date] = set()
    for kind, days in (("holidays", data.holidays), ("workdays", data.workdays)):
        for n, listed in enumerate(days):
            field = f"{kind}.{n}.date"
            if listed.date.year != year:
                refuse(field, "outside_year", Text(f"日期不在 {year} 年内", f"The date is not in {year}"))
            if listed.date in seen:
                refuse(field, "listed_twice", Text("该日期已列出", "The date is listed already"))
            seen.add(listed.date)
            if kind == "workdays" and listed.date.weekday() < 5:
                refuse(
                    field,
                    "not_a_weekend",
                    Text("调休上班日应为周六或周日", "A make-up working day is a Saturday or Sunday"),
                )
            if kind == "workdays" and listed.date in legal_time.statutory_holidays(year):
                # 全国年节及纪念日放假办法 Art. 2: the statutory holidays are days off; a notice
                # moves weekends around them, never onto them.
                refuse(
                    field,
                    "statutory_holiday",
                    Text(
                        "该日为法定节假日, 不能调为上班日",
                        "The date is a statutory holiday; it is not worked",
                    ),
                )
    if errors:
        raise ValidationFailed(Text("节假日安排有误", "The holiday schedule is not valid"), errors=errors)


def settle_window(refresh_seconds: float, interval_seconds: float, request_seconds: float) -> timedelta:
    """How long after a load a process may still count on the schedule before it: until its next
    refresh, plus a request already under way, plus one scheduler pass to catch what it wrote."""
    return timedelta(seconds=2 * refresh_seconds + request_seconds + interval_seconds)
