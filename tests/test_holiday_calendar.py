"""Loading a year's holiday schedule before the calendar package carries it: the deadlines counted
on weekends and the statutory holidays only are counted again on it and recorded on their cases; every process comes to count
on it; bad schedules are refused whole."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import chinese_calendar
import httpx
import pytest
from sqlalchemy import select, text

from mediation.agreements.models import FollowUp
from mediation.agreements.service import OPEN_PERFORMANCE
from mediation.audit.models import AuditRecord
from mediation.clocks import calendar, counted
from mediation.clocks.models import CaseClock
from mediation.core import legal_time
from mediation.disputes.models import Dispute
from mediation.supervision.models import SupervisionOrder
from mediation.supervision.service import UNANSWERED
from tests.support import Api
from tests.test_agreements import _two_obligations
from tests.test_deadlines import _at, _clocks, _events, _tick
from tests.test_handoff_deadlines import SPRING_FESTIVAL_2027

pytestmark = pytest.mark.usefixtures("calendar_package_until_2026")

# A schedule for 2027 made up for these tests (`calendar_package_until_2026`: the package, as these
# tests know it, carries none for 2027); it is not the State Council's. New Year's Day is a Friday,
# taken with the weekend after it. The Spring Festival's days off by law (全国年节及纪念日放假办法
# Art. 2) are New Year's Eve, Friday 5 February, to Monday 8 February, two of them on the weekend:
# the notice adds days to them, to Thursday 11 February, and Saturday 20 February is worked. Until
# it is loaded, a period is known to run past 5-8 February, not past 9-11 February.
NEW_YEAR = [
    {"date": "2027-01-01", "name": "元旦"},
    {"date": "2027-01-02", "name": "元旦"},
    {"date": "2027-01-03", "name": "元旦"},
]
SCHEDULE: dict[str, Any] = {
    "reference": "测试用节假日安排 (一)",
    "holidays": [*NEW_YEAR, *SPRING_FESTIVAL_2027],
    "workdays": [{"date": "2027-02-20", "name": "春节"}],
}
# The days off of SCHEDULE, as a process that has read it holds them.
SCHEDULE_DAYS_OFF = {date.fromisoformat(d["date"]): False for d in SCHEDULE["holidays"]}


async def _load(api: Api, body: dict[str, Any], year: int = 2027, language: str = "zh-CN") -> Any:
    headers = {**api.auth("admin"), "Accept-Language": language}
    return await api.client.put(f"/v1/calendar/years/{year}", json=body, headers=headers)


async def _case_page(api: Api, case: dict[str, Any]) -> str:
    """The case as the window clerk sees it on the front-end."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://mediation.test"
    ) as web:
        web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
        response = await web.get(f"/cases/{case['id']}")
    assert response.status_code == 200
    return response.text


async def _assigned(api: Api) -> dict[str, Any]:
    dispute = await api.step(await api.intake(), "accept")
    return await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})


async def test_a_loaded_schedule_settles_the_provisional_deadlines_and_each_case_records_it(api: Api) -> None:
    # Accepted on Wednesday 30 December 2026 (its acceptance counted on the known year), assigned on
    # Tuesday 2 February 2027: three working days to sign for it, counted on weekends and the
    # statutory holidays only while 2027 is unknown (3, 4 and Tuesday 9 February) and flagged
    # provisional.
    _at(api, date(2026, 12, 30))
    accepted = await api.step(await api.intake(), "accept")
    _at(api, date(2027, 2, 2))
    assigned = await api.step(accepted, "assign", {"body_id": str(api.bodies["village"])})
    assert (assigned["sign_for_due_on"], assigned["clock"]["provisional"]) == ("2027-02-09", True)
    response = await api.client.get("/v1/calendar/years/2027")
    assert (response.status_code, response.json()["source"]) == (200, "unpublished")
    assert "(暂定)" in await _case_page(api, assigned)

    response = await _load(api, SCHEDULE)
    assert response.status_code == 200, response.text
    loaded = response.json()
    assert (loaded["source"], loaded["version"], loaded["reference"]) == ("loaded", 1, SCHEDULE["reference"])
    assert [d["date"] for d in loaded["holidays"]] == [d["date"] for d in SCHEDULE["holidays"]]
    assert loaded["workdays"] == [{"date": "2027-02-20", "name": "春节"}]
    async with api.app.state.db.reader() as session:
        audited = await session.scalar(
            select(AuditRecord).where(
                AuditRecord.object_type == "calendar_year", AuditRecord.object_id == "2027"
            )
        )
    assert audited is not None and (audited.action, audited.actor_role) == ("put_calendar", "admin")
    # The calculator counts on it at once: 29-31 December, then 4-8 and 11-12 January.
    response = await api.client.get(
        "/v1/calendar/deadline", params={"start": "2026-12-28", "length": 10, "unit": "working_days"}
    )
    assert (response.status_code, response.json()["last_day"]) == (200, "2027-01-12")

    report = await _tick(api)
    assert report.clocks_recounted == 1 and report.failed == 0
    case = await api.get(assigned)
    assert case["version"] == assigned["version"] + 1
    assert (case["sign_for_due_on"], case["clock"]["due_on"], case["clock"]["provisional"]) == (
        "2027-02-12",
        "2027-02-12",
        False,
    )
    entry = (await api.timeline(case))[-1]
    assert entry["action"] == "clock_recounted"
    assert (
        SCHEDULE["reference"] in entry["reason"]
        and "签收期限届满日由 2027-02-09 改为 2027-02-12" in entry["reason"]
    )
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-02-09", "2027-02-12")
    assert await _events(api, case["id"], "clock_recounted") == 1
    clock = (await _clocks(api, case))["sign_for"]
    assert clock["history"][-1]["what"] == "recounted"
    page = await _case_page(api, case)
    assert "(暂定)" not in page and "时限按节假日安排重算" in page
    # Counted once: the next pass finds nothing to do.
    assert (await _tick(api)).clocks_recounted == 0
    assert (await api.get(case))["version"] == case["version"]


async def test_a_process_that_counted_on_an_older_schedule_is_caught_up_by_the_next_pass(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calendar, "_SCAN_BATCH", 1)  # the scan pages through the clocks one by one
    _at(api, date(2027, 2, 2))
    assert (await _load(api, SCHEDULE)).status_code == 200
    # Another process has not read the schedule yet: it counts on weekends and the statutory
    # holidays only.
    legal_time.install_schedules({})
    first = await _assigned(api)
    assert (first["sign_for_due_on"], first["clock"]["provisional"]) == ("2027-02-09", True)
    report = await _tick(api)  # the pass reads the schedules first
    assert report.clocks_recounted == 1
    assert (await api.get(first))["sign_for_due_on"] == "2027-02-12"

    # A correction: Friday 12 February becomes a day off too. A process still on the first load
    # counts a new case on it, and nothing marks that deadline provisional.
    old = legal_time.loaded_years()
    assert old == frozenset({2027})
    corrected = {
        **SCHEDULE,
        "reference": "测试用节假日安排 (二)",
        "holidays": [*NEW_YEAR, *SPRING_FESTIVAL_2027, {"date": "2027-02-12", "name": "春节"}],
    }
    response = await _load(api, corrected)
    assert (response.status_code, response.json()["version"]) == (200, 2)
    legal_time.install_schedules({2027: SCHEDULE_DAYS_OFF})
    second = await _assigned(api)
    assert (second["sign_for_due_on"], second["clock"]["provisional"]) == ("2027-02-12", False)
    # The pass after a load counts every running clock reaching the year again.
    report = await _tick(api)
    assert report.clocks_recounted == 2
    for case in (first, second):
        current = await api.get(case)
        assert (current["sign_for_due_on"], current["clock"]["provisional"]) == ("2027-02-15", False)
        assert "测试用节假日安排 (二)" in (await api.timeline(current))[-1]["reason"]
    # Once every process has had time to read it, only provisional clocks are looked at again.
    _at(api, date(2027, 2, 3))
    assert (await _tick(api)).clocks_recounted == 0


async def test_pauses_and_extensions_are_replayed_on_the_loaded_schedule(api: Api) -> None:
    """A clock counted before the load ends where the same clock started after it ends."""
    holidays = {**SCHEDULE, "holidays": [*NEW_YEAR, {"date": "2027-01-06", "name": "测试"}]}

    async def mediate_with_a_pause() -> dict[str, Any]:
        _at(api, date(2026, 12, 2))
        dispute = await api.drive("mediating")
        _at(api, date(2026, 12, 10))
        for action in ("pause", "resume"):
            if action == "resume":
                _at(api, date(2026, 12, 14))
            dispute = await api.get(dispute)
            response = await api.client.post(
                f"/v1/disputes/{dispute['id']}/clocks/mediation/{action}",
                json={"reason": "appraisal"} if action == "pause" else {},
                headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
            )
            assert response.status_code == 200, response.text
        return await api.get(dispute)

    before = await mediate_with_a_pause()
    counted_before = (await _clocks(api, before))["mediation"]
    # One month from 2 December is Saturday 2 January; four days paused: Wednesday 6 January (the
    # pause is added to the nominal last day, which moves off a rest day only once: 民法典 Art. 203).
    assert (counted_before["due_on"], counted_before["provisional"]) == ("2027-01-06", True)
    assert (await _load(api, holidays)).status_code == 200
    assert (await _tick(api)).clocks_recounted >= 1
    recounted = (await _clocks(api, before))["mediation"]

    after = await mediate_with_a_pause()
    counted_after = (await _clocks(api, after))["mediation"]
    assert counted_after["provisional"] is False
    assert (recounted["due_on"], recounted["due_at"], recounted["provisional"]) == (
        counted_after["due_on"],
        counted_after["due_at"],
        False,
    )
    assert recounted["due_on"] != counted_before["due_on"]


async def test_a_bad_schedule_is_refused_whole_with_every_reason(api: Api) -> None:
    bad = {
        "reference": "国办发明电",
        "holidays": [
            *NEW_YEAR,
            {"date": "2026-12-31", "name": "元旦"},
            {"date": "2027-01-01", "name": "元旦"},
        ],
        "workdays": [{"date": "2027-01-05", "name": "调休"}],
    }
    response = await _load(api, bad, language="en")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {(e["field"], e["code"]) for e in problem["errors"]} == {
        ("holidays.3.date", "outside_year"),
        ("holidays.4.date", "listed_twice"),
        ("workdays.0.date", "not_a_weekend"),
    }
    assert problem["detail"] == "The holiday schedule is not valid"
    response = await _load(api, bad)
    assert response.json()["detail"] == "节假日安排有误"
    for body in (
        {**SCHEDULE, "holidays": []},
        {**SCHEDULE, "reference": ""},
        {**SCHEDULE, "extra": True},
        {**SCHEDULE, "holidays": [{"date": "2027-02-30", "name": "春节"}]},
    ):
        response = await _load(api, body)
        assert response.status_code == 422, body
    assert (await _load(api, SCHEDULE, year=1999)).status_code == 422
    too_many = [
        {"date": (date(2027, 3, 1) + timedelta(days=n)).isoformat(), "name": "春节"} for n in range(61)
    ]
    assert (await _load(api, {**SCHEDULE, "holidays": too_many})).status_code == 422
    url, admin = "/v1/calendar/years/2027", api.auth("admin")
    as_json = {**admin, "Content-Type": "application/json"}
    for response, status in (
        (await api.client.put(url, content=b'{"reference": "x", "holidays": [', headers=as_json), 422),
        (await api.client.put(url, content=b'{"reference": "x"}', headers=admin), 415),  # not labelled
        (await api.client.put(url, json=SCHEDULE, headers={"Authorization": ""}), 401),
        (await api.client.put(url, content=b'{"note": "' + b"x" * 2_000_000 + b'"}', headers=admin), 413),
    ):
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    # Only an administrator loads a schedule; a year that ships with the service is not loaded over.
    response = await api.client.put("/v1/calendar/years/2027", json=SCHEDULE, headers=api.auth("supervisor"))
    assert response.status_code == 403
    response = await _load(
        api, {**SCHEDULE, "holidays": [{"date": "2026-10-01", "name": "国庆节"}]}, year=2026
    )
    assert (response.status_code, response.json()["code"]) == (409, "calendar_published")
    # Nothing of it was kept.
    assert (await api.client.get("/v1/calendar/years/2027")).json()["source"] == "unpublished"
    assert legal_time.loaded_years() == frozenset()


async def test_a_shipped_year_lists_its_holidays_and_make_up_working_days(api: Api) -> None:
    response = await api.client.get("/v1/calendar/years/2026")
    assert response.status_code == 200
    year = response.json()
    assert (year["source"], year["reference"], year["version"]) == ("bundled", None, None)
    holidays = {d["date"]: d["name"] for d in year["holidays"]}
    assert holidays["2026-10-01"] == "国庆节" and holidays["2026-10-07"] == "国庆节"
    assert {"date": "2026-10-10", "name": "国庆节"} in year["workdays"]
    # Every day off of a holiday is listed, its weekend days too (3 October 2026 is a Saturday);
    # only weekend days are make-up working days.
    assert holidays["2026-10-03"] == "国庆节"
    assert all(date.fromisoformat(d["date"]).weekday() >= 5 for d in year["workdays"])


async def test_loading_the_same_schedule_again_changes_no_deadline(api: Api) -> None:
    """A retried load (the same body again) stores it once more and moves nothing."""
    _at(api, date(2026, 12, 29))
    assert (await _load(api, SCHEDULE)).status_code == 200
    case = await _assigned(api)
    assert case["clock"]["provisional"] is False
    for _ in range(3):
        response = await _load(api, SCHEDULE)
        assert response.status_code == 200
    assert response.json()["version"] == 4
    assert (await _tick(api)).clocks_recounted == 0
    _at(api, date(2026, 12, 29) + timedelta(days=1))
    assert (await api.get(case))["version"] == case["version"]


async def test_a_courts_step_ending_on_a_loaded_day_off_moves_to_the_next_working_day(api: Api) -> None:
    # Requested on Tuesday 2 February 2027: the court decides on acceptance within 3 days, to
    # Friday 5 February, New Year's Eve, moved past the Spring Festival's days off by law to
    # Tuesday 9 February, and is flagged late the day after.
    _at(api, date(2027, 2, 2))
    dispute = await api.drive("confirmation_pending")
    assert dispute["handoff"]["accept_due_on"] == "2027-02-09"
    _at(api, date(2027, 2, 10))
    assert (await _tick(api)).handoffs_overdue == 1

    assert (await _load(api, SCHEDULE)).status_code == 200
    report = await _tick(api)
    assert (report.handoff_deadlines_moved, report.handoffs_overdue, report.failed) == (1, 0, 0)
    case = await api.get(dispute)
    assert case["handoff"]["accept_due_on"] == "2027-02-12"
    entry = next(
        e for e in reversed(await api.timeline(case)) if e["payload"].get("clock") == "handoff_accept"
    )
    assert entry["action"] == "clock_recounted"
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-02-09", "2027-02-12")
    assert entry["payload"]["overdue_withdrawn"] and entry["reason"].endswith("此前的超期提示不再成立")
    assert (await _tick(api)).handoff_deadlines_moved == 0
    # Late again only after the new last day, and flagged once more.
    _at(api, date(2027, 2, 12))
    assert (await _tick(api)).handoffs_overdue == 0
    _at(api, date(2027, 2, 13))
    assert (await _tick(api)).handoffs_overdue == 1
    assert (await _tick(api)).handoffs_overdue == 0


async def test_an_enforcement_period_ending_on_a_loaded_day_off_moves_to_the_next_working_day(
    api: Api,
) -> None:
    # Two years to apply for enforcement (民事诉讼法 Art. 250), counted before 2028's schedule is
    # known: weekends only. A schedule that takes that last day off moves it to the next working day.
    dispute = await api.drive("confirmation_pending")
    dispute = await api.target_accepts(dispute)
    handoff_id = dispute["handoff"]["id"]
    court = api.auth("court", uuid.UUID(str(dispute["handoff_target_id"])))
    current = (await api.client.get(f"/v1/handoffs/{handoff_id}", headers=court)).json()["handoff"]
    ruling = {
        "decision": "confirmed",
        "ruling_number": "(2026)浙0681民特7号",
        "ruled_on": api.today.isoformat(),
    }
    response = await api.client.post(
        f"/v1/handoffs/{handoff_id}/decision",
        json=ruling,
        headers={**court, "If-Match": f'"{current["version"]}"'},
    )
    assert response.status_code == 200, response.text
    counted = date.fromisoformat(response.json()["enforcement_deadline"])
    assert counted.year == 2028 and counted.weekday() < 5
    moved = counted + timedelta(days=1)
    while moved.weekday() >= 5:
        moved += timedelta(days=1)

    day_off = {
        "reference": "测试用节假日安排 (2028)",
        "holidays": [{"date": counted.isoformat(), "name": "测试假日"}],
    }
    assert (await _load(api, {**day_off, "workdays": []}, year=2028)).status_code == 200
    report = await _tick(api)
    assert (report.handoff_deadlines_moved, report.failed) == (1, 0)
    case = await api.get(dispute)
    assert case["handoff"]["enforcement_deadline"] == moved.isoformat()
    entry = (await api.timeline(case))[-1]
    assert (entry["action"], entry["payload"]["clock"]) == ("clock_recounted", "handoff_enforcement")
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == (
        counted.isoformat(),
        moved.isoformat(),
    )
    assert "申请执行期限届满日" in entry["reason"]
    assert (await _tick(api)).handoff_deadlines_moved == 0


async def _ever_overdue(api: Api, case: dict[str, Any]) -> bool:
    async with api.app.state.db.reader() as session:
        return bool(
            await session.scalar(select(Dispute.ever_overdue).where(Dispute.id == uuid.UUID(case["id"])))
        )


async def _overdue_rate(api: Api) -> tuple[int, int]:
    response = await api.client.get("/v1/stats/overview", headers=api.auth("supervisor"))
    assert response.status_code == 200, response.text
    rate = response.json()["rates"]["overdue"]
    return rate["numerator"], rate["denominator"]


async def test_an_overdue_report_on_a_provisional_day_is_withdrawn_when_the_real_day_is_later(
    api: Api,
) -> None:
    # Registered on Thursday 4 February 2027: one working day to decide on acceptance, counted on
    # weekends and the statutory holidays only (5-8 February) to Tuesday 9 February; on the 10th it
    # is reported overdue.
    _at(api, date(2027, 2, 4))
    case = await api.intake()
    _at(api, date(2027, 2, 10))
    before_overdue = await _overdue_rate(api)
    report = await _tick(api)
    assert report.overdue == 1 and await _ever_overdue(api, case)
    assert (await api.get(case))["clock"]["level"] == "overdue"
    late = await _overdue_rate(api)
    assert late == (before_overdue[0] + 1, before_overdue[1])

    # The Spring Festival off to the 11th: the last day is Friday 12 February, and it was never late.
    assert (await _load(api, SCHEDULE)).status_code == 200
    assert (await _tick(api)).clocks_recounted == 1
    current = await api.get(case)
    assert (current["clock"]["due_on"], current["clock"]["level"]) == ("2027-02-12", "normal")
    entry = (await api.timeline(current))[-1]
    assert (entry["action"], entry["payload"]["overdue_withdrawn"]) == ("clock_recounted", True)
    assert entry["reason"].endswith("此前的超期提示不再成立")
    assert not await _ever_overdue(api, case)
    assert await _overdue_rate(api) == before_overdue

    # Late for real after the 12th: reported again, and counted again.
    _at(api, date(2027, 2, 13))
    assert (await _tick(api)).overdue == 1
    assert await _ever_overdue(api, case)
    assert await _overdue_rate(api) == late


async def _change_clock(
    api: Api, case: dict[str, Any], name: str, step: str, role: str, body: dict[str, Any]
) -> dict[str, Any]:
    case = await api.get(case)
    response = await api.client.post(
        f"/v1/disputes/{case['id']}/clocks/{name}/{step}",
        json=body,
        headers={**api.acting(role, case), "If-Match": f'"{case["version"]}"'},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_withdrawn_overdue_report_leaves_the_case_overdue_when_an_extended_clocks_report_stands(
    api: Api,
) -> None:
    # Mediating from Tuesday 15 December 2026, the center's handling deadline paused at once: the
    # month of mediation runs out on Friday 15 January 2027 and is reported overdue on the 16th.
    _at(api, date(2026, 12, 15))
    case = await api.drive("mediating", complexity="general")
    await _change_clock(api, case, "handling", "pause", "clerk", {"reason": "waiting_party"})
    _at(api, date(2027, 1, 16))
    assert (await _tick(api)).overdue == 1 and await _ever_overdue(api, case)
    # The parties agree to a month more: the period is no longer over, but it was, and was reported.
    case = await api.get(case)
    everyone = [p["id"] for p in case["parties"]]
    extension = {"units": 1, "reason": "双方同意延长", "consenting_party_ids": everyone}
    extended = await _change_clock(api, case, "mediation", "extension", "body_mediator", extension)
    assert (extended["due_on"], extended["level"]) == ("2027-02-15", "normal")

    # The handling deadline, resumed on 2 February, runs (on weekends and the statutory holidays
    # only) to Tuesday 9 February, and is reported overdue on the 10th; the year's schedule then
    # puts it on the 12th.
    _at(api, date(2027, 2, 2))
    resumed = await _change_clock(api, case, "handling", "resume", "clerk", {})
    assert (resumed["due_on"], resumed["provisional"]) == ("2027-02-09", True)
    _at(api, date(2027, 2, 10))
    assert (await _tick(api)).overdue == 1
    assert (await _load(api, SCHEDULE)).status_code == 200
    await _tick(api)
    handling = (await _clocks(api, case))["handling"]
    assert (handling["due_on"], handling["level"]) == ("2027-02-12", "at_risk")
    recounted = {
        e["payload"]["clock"]: e for e in await api.timeline(case) if e["action"] == "clock_recounted"
    }
    assert recounted["handling"]["payload"]["overdue_withdrawn"] is True
    # That report is withdrawn; the mediation period's stands, and the case still counts as overdue.
    assert await _ever_overdue(api, case)


async def _issue(api: Api, dispute: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请报告调解进展", **extra},
        headers={**api.auth("supervisor"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _order(api: Api, order: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get(f"/v1/supervision-orders/{order['id']}", headers=api.auth("supervisor"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_supervision_orders_default_date_is_counted_again_and_unescalated_while_not_late(
    api: Api,
) -> None:
    # Issued on Tuesday 2 February 2027 with the default three working days: counted on weekends
    # and the statutory holidays only to Tuesday 9 February. An order given its date by the
    # supervisor keeps it.
    _at(api, date(2027, 2, 2))
    dispute = await api.drive("mediating")
    counted = await _issue(api, dispute)
    assert (counted["due_on"], counted["provisional"]) == ("2027-02-09", True)
    dispute = await api.get(dispute)
    # Another order, not a repeat of the first (an order repeating an open one is refused).
    chosen = await _issue(api, dispute, due_on="2027-02-09", instruction="请书面报告调解进展")
    assert (chosen["due_on"], chosen["provisional"]) == ("2027-02-09", False)
    assert '2027-02-09 前答复<abbr class="provisional"' in await _case_page(api, dispute)
    _at(api, date(2027, 2, 10))
    assert (await _tick(api)).orders_escalated == 2
    assert (await api.get(dispute))["attention"] == "supervision_overdue"

    assert (await _load(api, SCHEDULE)).status_code == 200
    report = await _tick(api)
    assert (report.orders_recounted, report.orders_escalated, report.failed) == (1, 0, 0)
    # 3, 4 and Friday 12 February. No longer late: waiting for its answer again. The other order
    # is still escalated, so the case still calls for attention.
    order = await _order(api, counted)
    assert (order["due_on"], order["provisional"], order["status"], order["escalated_at"]) == (
        "2027-02-12",
        False,
        "issued",
        None,
    )
    assert order["version"] == counted["version"] + 2  # escalated, then counted again
    assert (await _order(api, chosen))["due_on"] == "2027-02-09"
    case = await api.get(dispute)
    assert case["attention"] == "supervision_overdue"
    entry = (await api.timeline(case))[-1]
    assert (entry["action"], entry["payload"]["clock"], entry["payload"]["order_id"]) == (
        "clock_recounted",
        "supervision_response",
        counted["id"],
    )
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-02-09", "2027-02-12")
    assert SCHEDULE["reference"] in entry["reason"] and entry["payload"]["overdue_withdrawn"]
    # One event for the order, one for the case's own clock that runs into the unknown months.
    assert [e["payload"]["clock"] for e in await api.timeline(case) if e["action"] == "clock_recounted"] == [
        "mediation",
        "supervision_response",
    ]
    assert await _events(api, case["id"], "clock_recounted") == 2
    page = await _case_page(api, case)
    assert "2027-02-12 前答复 · 待答复" in page
    assert (await _tick(api)).orders_recounted == 0

    # The other order answered: nothing is late any more, and the flag goes.
    answered = await api.client.post(
        f"/v1/supervision-orders/{chosen['id']}/response",
        json={"response": "已约见双方"},
        headers={
            **api.acting("body_mediator", case),
            "If-Match": f'"{(await _order(api, chosen))["version"]}"',
        },
    )
    assert answered.status_code == 200, answered.text
    assert (await api.get(case))["attention"] is None
    # Late again only after the new last day, and escalated once more.
    _at(api, date(2027, 2, 12))
    assert (await _tick(api)).orders_escalated == 0
    _at(api, date(2027, 2, 13))
    assert (await _tick(api)).orders_escalated == 1
    assert (await api.get(case))["attention"] == "supervision_overdue"


async def test_an_overdue_obligations_follow_up_date_is_counted_again(api: Api) -> None:
    _at(api, date(2027, 1, 22))
    dispute = await api.drive("mediating")
    agreement = await api.signed_agreement(dispute, obligations=_two_obligations(api, dispute, 10, 30))
    dispute = await api.step(dispute, "agree")
    # Due Monday 1 February and not performed: on the 2nd the body is given three working days to
    # follow it up, counted on weekends and the statutory holidays only to Tuesday 9 February.
    _at(api, date(2027, 2, 2))
    assert (await _tick(api)).obligations_overdue == 1
    path = f"/v1/bodies/{api.bodies['village']}/follow-ups"
    (task,) = (await api.client.get(path, headers=api.auth("body_mediator", "village"))).json()["items"]
    assert (task["due_on"], task["provisional"], task["obligation_id"]) == (
        "2027-02-09",
        True,
        agreement["obligations"][0]["id"],
    )

    assert (await _load(api, SCHEDULE)).status_code == 200
    report = await _tick(api)
    assert (report.follow_ups_recounted, report.failed) == (1, 0)
    (task,) = (await api.client.get(path, headers=api.auth("body_mediator", "village"))).json()["items"]
    assert (task["due_on"], task["provisional"]) == ("2027-02-12", False)
    entry = next(
        e
        for e in reversed(await api.timeline(dispute))
        if e["payload"].get("clock") == "performance_follow_up"
    )
    assert (entry["action"], entry["payload"]["follow_up_id"], entry["payload"]["previous_due_on"]) == (
        "clock_recounted",
        task["id"],
        "2027-02-09",
    )
    assert (await _tick(api)).follow_ups_recounted == 0


async def test_a_correction_never_moves_a_date_already_given_earlier(api: Api) -> None:
    # Loaded with 4 January off by mistake, then corrected: the order keeps the later day it was
    # given (the body was told it), and is not provisional.
    _at(api, date(2026, 12, 29))
    wrong = {**SCHEDULE, "holidays": [*NEW_YEAR, {"date": "2027-01-04", "name": "元旦"}]}
    assert (await _load(api, wrong)).status_code == 200
    dispute = await api.drive("mediating")
    order = await _issue(api, dispute)
    assert (order["due_on"], order["provisional"]) == ("2027-01-05", False)
    assert (await _load(api, SCHEDULE)).status_code == 200
    assert (await _tick(api)).orders_recounted == 0
    assert (await _order(api, order))["due_on"] == "2027-01-05"
    # A correction that makes its count end later moves it, once: 30, 31 December, 6 January.
    off = [{"date": f"2027-01-0{d}", "name": "元旦"} for d in (4, 5)]
    later = {**SCHEDULE, "reference": "测试用节假日安排 (三)", "holidays": [*NEW_YEAR, *off]}
    assert (await _load(api, later)).status_code == 200
    assert (await _tick(api)).orders_recounted == 1
    assert (await _order(api, order))["due_on"] == "2027-01-06"
    assert (await _tick(api)).orders_recounted == 0


async def test_two_first_loads_at_once_both_land_one_after_the_other(api: Api) -> None:
    second = {**SCHEDULE, "reference": "测试用节假日安排 (二)"}
    first_answer, second_answer = await asyncio.gather(_load(api, SCHEDULE), _load(api, second))
    assert (first_answer.status_code, second_answer.status_code) == (200, 200)
    assert sorted([first_answer.json()["version"], second_answer.json()["version"]]) == [1, 2]
    kept = (await api.client.get("/v1/calendar/years/2027")).json()
    last = max((first_answer, second_answer), key=lambda r: r.json()["version"]).json()
    assert (kept["version"], kept["reference"]) == (2, last["reference"])
    assert len(kept["holidays"]) == len(SCHEDULE["holidays"])


@pytest.mark.parametrize("table", ["case_clocks", "supervision_orders", "follow_ups"])
async def test_each_pass_finds_the_provisional_dates_by_their_index(api: Api, table: str) -> None:
    """Every scheduler pass asks for the provisional deadlines, a few among many: each query is
    spelled as its partial index is (migrations 0016 and 0017), so each database can answer from it."""
    query, index = {
        "case_clocks": (
            select(CaseClock.id).where(calendar.recount_concerns(date(2026, 12, 29), [])),
            "ix_case_clocks_provisional_due_on",
        ),
        "supervision_orders": (
            select(SupervisionOrder.id).where(counted.recount_concerns(SupervisionOrder, UNANSWERED, [])),
            "ix_supervision_orders_provisional",
        ),
        "follow_ups": (
            select(FollowUp.id).where(counted.recount_concerns(FollowUp, OPEN_PERFORMANCE, [])),
            "ix_follow_ups_provisional",
        ),
    }[table]
    async with api.app.state.db.writer() as session:
        dialect = session.get_bind().dialect
        compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        if dialect.name == "postgresql":
            # Too few rows for the planner to prefer any index of its own accord, and on so few rows
            # the other indexes look as good: they are dropped for this transaction (rolled back).
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            for (name,) in await driver.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u'", table
            ):
                await session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            for (name,) in await driver.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexname NOT IN ($2, $3)",
                table,
                index,
                f"pk_{table}",
            ):
                await session.execute(text(f'DROP INDEX "{name}"'))
            plan = "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN {compiled}"))
            await session.rollback()
            assert index in plan, plan
        else:
            # SQLite refuses an INDEXED BY that the query's conditions cannot use.
            forced = str(compiled).replace(f"FROM {table}", f"FROM {table} INDEXED BY {index}")
            async with driver.execute(f"EXPLAIN QUERY PLAN {forced}") as cursor:
                plan = "\n".join(str(r[-1]) for r in await cursor.fetchall())
            assert index in plan, plan


async def test_a_loaded_year_stays_correctable_once_the_package_carries_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await _load(api, SCHEDULE)).status_code == 200
    # A later release of the package carries 2027 and 2028; the loaded 2027 still counts.
    carried = chinese_calendar.is_workday

    def release(day: date) -> bool:
        return day.weekday() < 5 if day.year in (2027, 2028) else bool(carried(day))

    monkeypatch.setattr(chinese_calendar, "is_workday", release)
    legal_time.is_working_day.cache_clear()
    assert legal_time.is_working_day(date(2027, 1, 1)) == (False, True)
    corrected = {**SCHEDULE, "reference": "测试用节假日安排 (二)"}
    response = await _load(api, corrected)
    assert (response.status_code, response.json()["version"]) == (200, 2)
    response = await _load(api, SCHEDULE, year=2028)
    assert (response.status_code, response.json()["code"]) == (409, "calendar_published")
