"""Dates set a number of working days ahead that are not clocks: a supervision order's default
answer date, the follow-up raised when an obligation is overdue. Each keeps the day it was counted
from and its working days, so that when the holiday schedule of its year is loaded (or corrected)
after it was set, the scheduler counts it again (clocks.calendar, the same as the running clocks).

Counted again, such a date only moves later: the body was told a day, and it keeps at least that
long. A count across a year whose schedule is unknown takes weekends and the statutory holidays
only (core.legal_time), so a holiday loaded later is the usual case and moves it later; a make-up
working day would move it earlier, and is not applied to a date already given.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mediation.clocks.models import CalendarYear
from mediation.core.legal_time import working_days_end

PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"  # as SQLAlchemy spells a true boolean there


class WorkingDaysDue:
    """Columns for a `due_on` counted in working days. Null `counted_from`: a date someone chose,
    never counted again."""

    due_on: Mapped[date]
    counted_from: Mapped[date | None]
    working_days: Mapped[int | None]
    provisional: Mapped[bool] = mapped_column(default=False, server_default=false())

    def count_due(self, start: date, days: int) -> None:
        """Set `due_on` to `days` working days after `start` (start itself not counted)."""
        end = working_days_end(start, days)
        self.due_on, self.counted_from, self.working_days = end.last_day, start, days
        self.provisional = not end.calendar_known

    def recount(self) -> date | None:
        """Count again on the calendar as it now stands; returns the last day before, when the
        last day or the provisional flag changed."""
        if self.counted_from is None or self.working_days is None:
            return None
        due_on, provisional = recounted(self.counted_from, self.working_days, self.due_on)
        if (due_on, provisional) == (self.due_on, self.provisional):
            return None
        before = self.due_on
        self.due_on, self.provisional = due_on, provisional
        return before


def recounted(counted_from: date, working_days: int, given: date) -> tuple[date, bool]:
    """The last day and provisional flag of a count on today's calendar, never before the day
    already given."""
    end = working_days_end(counted_from, working_days)
    return max(end.last_day, given), not end.calendar_known


def recount_concerns(model: Any, open_: ColumnElement[bool], recent_years: list[int]) -> ColumnElement[bool]:
    """Which open dates a pass looks at: the provisional ones, and for a while after a year is
    loaded, every counted one reaching it (clocks.calendar.due_for_recount says why)."""
    if not recent_years:  # the usual pass: spelled as the partial index is, so it is used
        return and_(open_, model.provisional)
    reaching = or_(*(model.due_on >= date(year, 1, 1) for year in recent_years))
    return and_(open_, or_(model.provisional, model.counted_from.is_not(None) & reaching))


async def due_for_recount(
    session: AsyncSession, model: Any, open_: ColumnElement[bool], recent_years: list[int], limit: int = 500
) -> list[uuid.UUID]:
    """The open rows of `model` whose date a count on today's calendar changes. Few rows: the
    provisional ones are those counted in the weeks before a year's schedule was loaded."""
    rows = await session.execute(
        select(model.id, model.counted_from, model.working_days, model.due_on, model.provisional)
        .where(recount_concerns(model, open_, recent_years))
        .order_by(model.id)
    )
    found: list[uuid.UUID] = []
    for row_id, counted_from, working_days, due_on, provisional in rows:
        if counted_from is None or working_days is None:
            continue
        if recounted(counted_from, working_days, due_on) != (due_on, provisional):
            found.append(row_id)
            if len(found) == limit:
                break
    return found


async def recount_reason(what: str, before: date, after: date, session: AsyncSession) -> str:
    """The timeline's words for a deadline counted again: `what` (e.g. 督办答复期限) moved, or
    confirmed where it was provisional; citing the loaded notice when there is one."""
    source = await notice_of(session, after.year)
    if after == before:
        return f"节假日安排已公布{source}: {what}届满日 {after} 确定"
    return f"节假日安排已公布{source}: {what}届满日由 {before} 改为 {after}"


async def notice_of(session: AsyncSession, year: int) -> str:
    """The loaded notice's reference in brackets, to cite in a recount's words; empty for a year
    whose schedule ships with the calendar package or is unknown."""
    loaded = await session.get(CalendarYear, year)
    return f" ({loaded.reference})" if loaded is not None else ""
