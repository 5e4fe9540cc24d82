"""Counting legal periods the way Chinese procedure law counts them.

民事诉讼法 Art. 85: a period counted in days starts on the day after the triggering day, and when
its last day is a statutory rest day (法定休假日, which in practice includes weekends), it ends on the
first working day after it. Working days follow the State Council's holiday schedule, make-up
working days (调休) included, as published in `chinese-calendar`. A year the package does not
carry yet can be loaded from the State Council's notice (`install_schedules`, fed from the
`calendar_years` table by clocks.calendar); a loaded year takes precedence. Until then, the
statutory holidays themselves are known from the law (`statutory_holidays`); only the days the
notice joins to them, and its make-up working days, are not.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar
from lunardate import LunarDate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodEnd:
    last_day: date
    extended: bool  # the nominal last day was a rest day
    calendar_known: bool  # False: the holiday schedule for that year is not yet published


# The longest run of days off a State Council schedule gives (the Spring Festival's and National
# Day's holidays with the weekends joined to them: eight or nine days), with a day to spare. A last
# day counted on weekends and the statutory holidays only, in a year whose schedule is not known,
# can move no further.
LONGEST_HOLIDAY_RUN = timedelta(days=10)

# Loaded schedules, by year: the days the notice lists (a day off: False; a make-up working day on
# a weekend: True); any other day follows the weekday rule. Replaced whole, never mutated.
_loaded: Mapping[int, Mapping[date, bool]] = {}


def install_schedules(schedules: Mapping[int, Mapping[date, bool]]) -> bool:
    """Make `schedules` the loaded years of this process; True when that changed anything."""
    global _loaded
    fresh = {year: dict(days) for year, days in schedules.items()}
    if fresh == _loaded:
        return False
    _loaded = fresh
    is_working_day.cache_clear()
    _warn_unknown_year.cache_clear()
    return True


def loaded_years() -> frozenset[int]:
    return frozenset(_loaded)


def bundled_year_known(year: int) -> bool:
    """Whether `chinese-calendar` itself carries the year's schedule."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def year_known(year: int) -> bool:
    return year in _loaded or bundled_year_known(year)


@functools.lru_cache(maxsize=64)
def statutory_holidays(year: int) -> frozenset[date]:
    """The days every citizen has off by 全国年节及纪念日放假办法 Art. 2 (as revised in 2024, in
    force from 2025): 元旦 (1 January), 春节 (the lunar New Year's Eve and the first three days of the
    first lunar month), 清明节 (the day of the 清明 solar term), 劳动节 (1 and 2 May), 端午节 (the
    fifth of the fifth lunar month), 中秋节 (the fifteenth of the eighth) and 国庆节 (1 to 3 October).
    The State Council's yearly notice only adds to these (bridging days, weekends moved); it never
    makes one of them a working day. So a last day falling on one of them in a year whose notice is
    not out yet is still known to move (民事诉讼法 Art. 85)."""
    days = {date(year, 1, 1), date(year, 5, 1), date(year, 5, 2)}
    days |= {date(year, 10, day) for day in (1, 2, 3)}
    # Beyond the solar term tables' years (1900-2100), 清明 cannot be known: the other days still are.
    with contextlib.suppress(NotImplementedError):
        days |= {
            term_day
            for term_day, name in chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
            if name == "清明"
        }
    try:
        new_year = LunarDate(year, 1, 1).to_solar_date()
        days |= {new_year + timedelta(days=offset) for offset in (-1, 0, 1, 2)}
        days |= {LunarDate(year, 5, 5).to_solar_date(), LunarDate(year, 8, 15).to_solar_date()}
    except ValueError:
        pass  # beyond the lunar tables' years (1900-2099): the fixed dates only
    return frozenset(days)


@functools.lru_cache(maxsize=8192)
def is_working_day(day: date) -> tuple[bool, bool]:
    """(is it a working day, is the official schedule known for that year). Cached until the loaded
    schedules change: every deadline walks a few weeks of days."""
    loaded = _loaded.get(day.year)
    if loaded is not None:
        # A notice only adds to the statutory holidays: one it leaves out (a day missed when it was
        # typed in) is still a day off.
        return loaded.get(day, day.weekday() < 5 and day not in statutory_holidays(day.year)), True
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        # The State Council publishes each year's schedule in the preceding autumn; until the
        # library carries it or it is loaded, weekends and the statutory holidays are the only
        # rest days we can know of.
        return day.weekday() < 5 and day not in statutory_holidays(day.year), False


@functools.cache
def _warn_unknown_year(year: int) -> None:
    """Once per year and process: each deadline concerned is marked provisional in its own right."""
    log.warning(
        "holiday schedule for %d not known yet; periods ending then count weekends and statutory holidays only",
        year,
    )


def period_end(start: date, days: int) -> PeriodEnd:
    nominal = start + timedelta(days=days)
    day, known = nominal, True
    while True:
        working, day_known = is_working_day(day)
        known = known and day_known
        if working:
            break
        day += timedelta(days=1)
    if not known:
        _warn_unknown_year(nominal.year)
    return PeriodEnd(last_day=day, extended=day != nominal, calendar_known=known)


def working_days_end(start: date, days: int) -> PeriodEnd:
    """The day `days` working days after `start` (start itself not counted), 调休 included."""
    day, left, known = start, days, True
    while left > 0:
        day += timedelta(days=1)
        working, day_known = is_working_day(day)
        known = known and day_known
        if working:
            left -= 1
    return PeriodEnd(last_day=day, extended=False, calendar_known=known)


def add_working_days(start: date, days: int) -> date:
    return working_days_end(start, days).last_day


def working_days_between(first: date, end: date) -> int:
    """Working days in [first, end)."""
    count, day = 0, first
    while day < end:
        count += is_working_day(day)[0]
        day += timedelta(days=1)
    return count


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, or that month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def months_end(start: date, months: int) -> PeriodEnd:
    """A period in months ends on the corresponding day (民事诉讼法 Art. 85), off a rest day."""
    return period_end(add_months(start, months), 0)


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February falls on 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def years_end(start: date, years: int) -> PeriodEnd:
    """A period in years ends on the corresponding day (the month's last day when there is none),
    moved off a rest day to the next working day (民事诉讼法 Art. 85; 民法典 Art. 202, 203)."""
    return period_end(add_years(start, years), 0)
