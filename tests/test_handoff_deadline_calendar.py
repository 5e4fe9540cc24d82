"""A court's or commission's deadline counted in days across a year whose holiday schedule is not
known yet: it is moved off weekends and the statutory holidays only, so it is provisional (as a case
clock's is), and once the schedule is loaded, or the calendar package carries the year, it is settled
or moved off the holiday it lands on (民事诉讼法 Art. 85). 1 January is a holiday every year
(全国年节及纪念日放假办法 Art. 2), so a period ending on it is moved off it even before the notice.
The acceptance, the decision (with its extension) and the period to apply for enforcement alike."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from mediation.core import legal_time
from tests.support import Api
from tests.test_handoff_deadlines import NEW_YEAR_2027, _load_2027
from tests.test_handoffs import _accepted_on, _actions, _confirm, _on, _post, _tick

pytestmark = pytest.mark.usefixtures("calendar_package_until_2026")

NOTICE = "国办发明电〔2026〕7号"


async def test_an_extension_ending_on_new_years_day_of_an_unknown_year_moves_past_it_and_is_provisional(
    api: Api,
) -> None:
    """Accepted on Monday 7 December 2026, the 15 days end on Tuesday 22 December; ten more end
    on Friday 1 January 2027, New Year's Day: the period runs past it and the weekend to Monday
    4 January, provisionally, as the schedule around it is not known yet."""
    dispute = await _accepted_on(api, "judicial_confirmation", date(2026, 12, 7))
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["decide_due_on"], handoff["provisional"]) == ("2026-12-22", False)

    response = await _post(api, handoff, "extension", {"days": 10, "reason": "案情复杂"})
    assert response.status_code == 200, response.text
    extended = response.json()
    assert (extended["decide_due_on"], extended["provisional"]) == ("2027-01-04", True)
    assert (await api.get(dispute))["handoff"]["provisional"] is True
    # The service's own count of the same period says as much: it cannot be known yet.
    counted = await api.client.get("/v1/calendar/deadline", params={"start": "2026-12-22", "length": 10})
    assert counted.status_code == 422 and counted.json()["errors"][0]["code"] == "calendar_unknown"

    await _load_2027(api, NEW_YEAR_2027, NOTICE)
    _on(api, date(2026, 12, 30))
    assert (await _tick(api)).handoff_deadlines_moved == 1

    # 1-3 January off: the period ends on Monday 4 January, for sure now.
    settled = (await api.handoff(dispute))["handoff"]
    assert (settled["decide_due_on"], settled["provisional"]) == ("2027-01-04", False)
    assert (await api.get(dispute))["handoff"]["provisional"] is False
    [entry] = _actions(await api.timeline(dispute), "clock_recounted")
    assert entry["payload"]["clock"] == "handoff_decide"
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-01-04", "2027-01-04")
    assert entry["payload"]["provisional"] is False
    assert NOTICE in entry["reason"]

    # Not late on the holiday, late the day after the moved last day.
    _on(api, date(2027, 1, 4))
    assert (await _tick(api)).handoffs_overdue == 0
    _on(api, date(2027, 1, 5))
    assert (await _tick(api)).handoffs_overdue == 1


@pytest.mark.parametrize(
    ("kind", "accepted_on"),
    [
        # 法释〔2011〕5号 Art. 4: 15 days from 17 December.
        ("judicial_confirmation", date(2026, 12, 17)),
        # 劳动争议调解仲裁法 Art. 43: 45 days from 17 November.
        ("labour_arbitration", date(2026, 11, 17)),
        # 农村土地承包经营纠纷调解仲裁法 Art. 47: 60 days from 2 November.
        ("rural_land_arbitration", date(2026, 11, 2)),
    ],
)
async def test_a_decision_period_ending_in_an_unknown_year_is_provisional_until_the_schedule_is_loaded(
    api: Api, kind: str, accepted_on: date
) -> None:
    # Each period's nominal last day is New Year's Day 2027: moved past it and the weekend, for now.
    dispute = await _accepted_on(api, kind, accepted_on)
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["decide_due_on"], handoff["provisional"]) == ("2027-01-04", True)

    await _load_2027(api, NEW_YEAR_2027, NOTICE)
    assert (await _tick(api)).handoff_deadlines_moved == 1

    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["decide_due_on"], handoff["provisional"]) == ("2027-01-04", False)
    assert (await _tick(api)).handoff_deadlines_moved == 0  # settled once


async def test_a_decision_period_ending_in_a_known_year_moves_off_its_holiday_for_sure(api: Api) -> None:
    await _load_2027(api, NEW_YEAR_2027, NOTICE)
    dispute = await _accepted_on(api, "judicial_confirmation", date(2026, 12, 17))
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["decide_due_on"], handoff["provisional"]) == ("2027-01-04", False)
    assert (await _tick(api)).handoff_deadlines_moved == 0


async def test_a_provisional_acceptance_period_is_settled_when_the_calendar_package_carries_the_year(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The court's 3 days from Tuesday 29 December end on 1 January 2027, New Year's Day: Monday
    4 January for now. No schedule is loaded: the year becomes known with a release of the calendar
    package that carries it, and the last day is settled then, as it would be for a loaded one."""
    _on(api, date(2026, 12, 29))
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-01-04", True)
    [requested] = [
        h for h in (await api.client.get("/v1/handoffs", headers=api.auth("court"))).json()["items"]
    ]
    assert requested["provisional"] is True

    until_2026 = chinese_calendar.is_workday

    def carries_2027(day: date) -> bool:
        if day.year == 2027:
            return day not in {date(2027, 1, d) for d in (1, 2, 3)} and day.weekday() < 5
        return bool(until_2026(day))

    monkeypatch.setattr(chinese_calendar, "is_workday", carries_2027)
    legal_time.is_working_day.cache_clear()
    assert (await _tick(api)).handoff_deadlines_moved == 1

    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-01-04", False)
    [entry] = _actions(await api.timeline(dispute), "clock_recounted")
    assert (entry["payload"]["clock"], entry["payload"]["due_on"]) == ("handoff_accept", "2027-01-04")


async def test_a_confirmations_enforcement_period_ending_in_an_unknown_year_is_provisional(api: Api) -> None:
    """民事诉讼法 Art. 250: two years from the agreement's last day of performance, 30 December
    2025, end on Thursday 30 December 2027. The 2027 schedule loaded, that day stays a working day:
    the last day is settled where it was."""
    _on(api, date(2025, 12, 15))
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _post(api, handoff, "decision", _confirm(api))
    assert response.status_code == 200, response.text
    confirmed = response.json()
    assert (confirmed["enforcement_deadline"], confirmed["provisional"]) == ("2027-12-30", True)

    await _load_2027(api, NEW_YEAR_2027, NOTICE)
    assert (await _tick(api)).handoff_deadlines_moved == 1

    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["enforcement_deadline"], handoff["provisional"]) == ("2027-12-30", False)
    [entry] = _actions(await api.timeline(dispute), "clock_recounted")
    assert entry["payload"]["clock"] == "handoff_enforcement"
    assert entry["payload"]["due_on"] == entry["payload"]["previous_due_on"] == "2027-12-30"
    assert "2027-12-30 确定" in entry["reason"]
    assert (await _tick(api)).handoff_deadlines_moved == 0


async def test_a_settled_handoff_is_not_provisional(api: Api) -> None:
    """Rejected, the request has no deadline left to run: nothing about it is provisional."""
    dispute = await _accepted_on(api, "judicial_confirmation", date(2026, 12, 17))
    handoff = (await api.handoff(dispute))["handoff"]
    assert handoff["provisional"] is True
    response = await _post(
        api,
        handoff,
        "decision",
        {
            "decision": "rejected",
            "ground": "unclear_content",
            "ruling_number": "(2026)浙0681民特2号",
            "ruled_on": api.today.isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["provisional"] is False


async def test_an_archived_cases_enforcement_period_is_settled_without_reopening_its_file(api: Api) -> None:
    """The schedule loaded, the last day stays where it was: an archived case's timeline stays as
    the file was closed; the handoff shows the day as certain, and the case's version moves with
    what it shows of it, so a copy held is read in full again, not answered 304."""
    _on(api, date(2025, 12, 15))
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _post(api, handoff, "decision", _confirm(api))
    assert response.status_code == 200, response.text
    dispute = await api.get(dispute)
    for action in ("close", "archive"):
        dispute = await api.step(dispute, action)
    assert dispute["status"] == "archived" and dispute["handoff"]["provisional"] is True
    entries = await api.timeline_count(dispute["id"])
    path = f"/v1/disputes/{dispute['id']}"
    held = await api.client.get(path, headers=api.auth())
    assert held.status_code == 200 and held.json()["handoff"]["provisional"] is True
    unchanged = await api.client.get(path, headers={**api.auth(), "If-None-Match": held.headers["etag"]})
    assert unchanged.status_code == 304

    await _load_2027(api, NEW_YEAR_2027, NOTICE)
    assert (await _tick(api)).handoff_deadlines_moved == 1

    reread = await api.client.get(path, headers={**api.auth(), "If-None-Match": held.headers["etag"]})
    assert reread.status_code == 200, reread.text
    after = reread.json()
    assert reread.headers["etag"] == f'"{dispute["version"] + 1}"' == f'"{after["version"]}"'
    assert await api.timeline_count(dispute["id"]) == entries
    assert (after["status"], after["handoff"]["enforcement_deadline"], after["handoff"]["provisional"]) == (
        "archived",
        "2027-12-30",
        False,
    )
