"""Deadline arithmetic for the case clocks, free of the database so it can be tested alone.

A clock started on day D with a period of N units ends at the close of its last day (the start of
the following day, local time). Days and months end on a working day when the last one is a rest
day (民事诉讼法 Art. 85); working days follow the official calendar, make-up working days
included. A date beyond the years the calendar knows gives a provisional deadline (weekends and
the statutory holidays only) that is flagged as such, never a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from mediation.clocks.rules import Unit
from mediation.core.legal_time import (
    PeriodEnd,
    add_months,
    months_end,
    period_end,
    working_days_between,
    working_days_end,
)


class Level(StrEnum):
    normal = "normal"
    at_risk = "at_risk"  # yellow: most of the period used
    overdue = "overdue"  # red: the last day has passed


LEVEL_ORDER = {Level.normal: 0, Level.at_risk: 1, Level.overdue: 2}


def period(start: date, length: int, unit: Unit) -> PeriodEnd:
    if unit == Unit.working_days:
        return working_days_end(start, length)
    if unit == Unit.months:
        return months_end(start, length)
    return period_end(start, length)


def end_of(day: date, tz: ZoneInfo) -> datetime:
    """The instant the day is over: midnight at the start of the next day, local time."""
    return datetime.combine(day + timedelta(days=1), time(0), tz)


@dataclass(frozen=True, slots=True)
class Deadline:
    due_on: date
    due_at: datetime
    warn_at: datetime
    provisional: bool  # the calendar for some year in the period is not published yet


def deadline(started_at: datetime, due: PeriodEnd, share: float, tz: ZoneInfo) -> Deadline:
    due_at = end_of(due.last_day, tz)
    return Deadline(
        due_on=due.last_day,
        due_at=due_at,
        warn_at=started_at + (due_at - started_at) * share,
        provisional=not due.calendar_known,
    )


def level(now: datetime, warn_at: datetime, due_at: datetime) -> Level:
    if now >= due_at:
        return Level.overdue
    if now >= warn_at:
        return Level.at_risk
    return Level.normal


def skipped(paused_on: date, resumed_on: date, unit: Unit) -> int:
    """Units the clock stood still: the days from the pause up to (not including) the resumption;
    a clock paused and resumed on the same day loses nothing."""
    if unit == Unit.working_days:
        return working_days_between(paused_on, resumed_on)
    return max((resumed_on - paused_on).days, 0)


def counted(start: date, length: int, unit: Unit) -> tuple[date, PeriodEnd]:
    """The period's nominal last day (before any move off a rest day) and its end (`period`)."""
    if unit == Unit.working_days:
        end = working_days_end(start, length)
        return end.last_day, end
    nominal = add_months(start, length) if unit == Unit.months else start + timedelta(days=length)
    return nominal, period_end(nominal, 0)


def moved(nominal: date, units: int, unit: Unit, *, calendar_days: bool = False) -> tuple[date, PeriodEnd]:
    """The nominal last day and the end after adding `units` to `nominal`. A pause's skipped days
    are added to the period's nominal last day: the period stood still, and its last day off moves
    to the next working day once, for the period as it now stands (民法典 Art. 203; 民事诉讼法
    Art. 85): adding them to a day already moved would count the rest days it was moved over twice.
    An extension is a new period after the old one and is added to the day it ended
    (`extended_end`)."""
    if unit == Unit.working_days and not calendar_days:
        end = working_days_end(nominal, units)
        return end.last_day, end
    if unit == Unit.months and not calendar_days:
        day = add_months(nominal, units)
    else:
        day = nominal + timedelta(days=units)
    return day, period_end(day, 0)


def extended_end(last_day: date, units: int, unit: Unit) -> tuple[date, PeriodEnd]:
    """An extension of a period by `units`: the nominal last day and the end of the extended period.

    The extension runs from the day the period ended, that day as moved off a rest day or holiday
    (民法典 Art. 203; 民事诉讼法 Art. 85-86), not from the unmoved nominal last day nor again from the
    start: counted so, a holiday at the end of the period would eat into the days granted. So a
    court extends its period to decide a confirmation (法释〔2011〕5号 Art. 5), a commission its
    period for the award (劳动争议调解仲裁法 Art. 43; 农村土地承包经营纠纷调解仲裁法 Art. 47), and a
    body a case's mediation period with the parties' consent (人民调解工作若干规定 Art. 33;
    特邀调解规定 Art. 27): the handoffs (handoffs.ledger) and the case clocks (`replay`) both count
    through here. The extended period's own last day moves off a rest day likewise; one counted in
    working days always ends on a working day."""
    return moved(last_day, units, unit)


def replay(
    started_at: datetime, length: int, unit: Unit, history: list[dict[str, Any]], tz: ZoneInfo
) -> tuple[PeriodEnd, bool]:
    """The clock's last day counted afresh on the calendar as it now stands: its period from the
    start, then each pause (the units it stood still, counted again, added to the nominal last
    day) and each extension (from the last day as moved off a rest day: `extended_end`), in the
    order its history has them. With whether any of it reached a year not known (provisional)."""
    nominal, end = counted(started_at.astimezone(tz).date(), length, unit)
    provisional = not end.calendar_known
    paused_on: date | None = None
    for entry in history:
        what = entry["what"]
        if what == "paused":
            paused_on = datetime.fromisoformat(entry["at"]).astimezone(tz).date()
            continue
        if what == "resumed" and paused_on is not None:
            units = skipped(paused_on, datetime.fromisoformat(entry["at"]).astimezone(tz).date(), unit)
            paused_on = None
            if not units:
                continue
            nominal, end = moved(nominal, units, unit, calendar_days=unit == Unit.months)
        elif what == "extended":
            nominal, end = extended_end(end.last_day, int(entry["units"]), unit)
        else:
            continue
        provisional = provisional or not end.calendar_known
    return end, provisional
