"""The statutory holidays (全国年节及纪念日放假办法 Art. 2, as revised in 2024) are known from the law
before the State Council's notice of a year is out: a period whose last day falls on one of them
in such a year runs on past it (民事诉讼法 Art. 85), still provisional, as the notice may add days."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from mediation.core.legal_time import install_schedules, is_working_day, period_end, statutory_holidays
from tests.support import Api
from tests.test_handoffs import _on
from tests.test_holiday_calendar import SCHEDULE, SCHEDULE_DAYS_OFF, _load


def _fixed_dates(year: int) -> set[date]:
    """元旦, 劳动节 and 国庆节: the days the law fixes by the solar calendar."""
    return {date(year, 1, 1), date(year, 5, 1), date(year, 5, 2), *(date(year, 10, d) for d in (1, 2, 3))}


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_statutory_holidays_are_days_off_in_every_published_schedule(year: int) -> None:
    """The rule checked against the State Council's schedules since the 2024 revision: all 13 days
    are days off there, none a working day."""
    days = statutory_holidays(year)
    assert len(days) == 13
    assert all(chinese_calendar.is_holiday(day) and not chinese_calendar.is_workday(day) for day in days)


def test_the_statutory_holidays_of_2027_are_known_before_its_notice() -> None:
    assert statutory_holidays(2027) == {
        *_fixed_dates(2027),
        # 春节: New Year's Eve (Friday 5 February) and the first three days of the first lunar month.
        date(2027, 2, 5),
        date(2027, 2, 6),
        date(2027, 2, 7),
        date(2027, 2, 8),
        date(2027, 4, 5),  # 清明
        date(2027, 6, 9),  # 端午
        date(2027, 9, 15),  # 中秋
    }


def test_beyond_the_lunar_tables_only_the_days_that_can_be_known_count() -> None:
    """The lunar calendar's tables end with 2099 and the solar terms' with 2100: past them, the
    holidays fixed by the solar calendar still count, and nothing fails."""
    beyond_lunar = statutory_holidays(2100)
    assert _fixed_dates(2100) < beyond_lunar
    [qingming] = beyond_lunar - _fixed_dates(2100)
    assert (qingming.month, qingming.day) in {(4, 4), (4, 5)}
    assert statutory_holidays(2103) == _fixed_dates(2103)
    assert is_working_day(date(2103, 10, 1)) == (False, False)
    # Monday 1 October 2103: past National Day's three days to Thursday the 4th, provisional.
    ends = period_end(date(2103, 9, 1), 30)
    assert (ends.last_day, ends.extended, ends.calendar_known) == (date(2103, 10, 4), True, False)


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_a_deadline_on_national_day_of_an_unknown_year_runs_past_it_provisionally(api: Api) -> None:
    """Requested on Tuesday 28 September 2027: the court's three days to accept end on Friday
    1 October, National Day; 1-3 October are days off by law, so the last day is Monday 4 October,
    provisional until the 2027 schedule is known."""
    _on(api, date(2027, 9, 28))
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-10-04", True)
    assert (await api.get(dispute))["handoff"]["accept_due_on"] == "2027-10-04"


async def test_a_loaded_schedule_keeps_the_statutory_holidays_off_and_works_none_of_them(api: Api) -> None:
    """A notice only adds to the statutory holidays: one typed in without National Day leaves those
    days off, and one that would work a statutory holiday falling on a weekend is refused."""
    worked = {**SCHEDULE, "workdays": [*SCHEDULE["workdays"], {"date": "2027-10-02", "name": "国庆节"}]}
    refused = await _load(api, worked, language="en")
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("workdays.1.date", "statutory_holiday")
    ]
    assert (await _load(api, SCHEDULE)).status_code in (200, 201)
    install_schedules({2027: SCHEDULE_DAYS_OFF | {date(2027, 2, 20): True}})
    assert date(2027, 10, 1) not in SCHEDULE_DAYS_OFF
    assert is_working_day(date(2027, 10, 1)) == (False, True)  # off, and the year's schedule known
    assert is_working_day(date(2027, 9, 30)) == (True, True)
    assert period_end(date(2027, 9, 1), 30).last_day == date(2027, 10, 4)
