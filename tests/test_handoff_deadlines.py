"""A court's or commission's deadlines on the handoff list and across a holiday schedule loaded
later: a step counted in working days (the rural land commission's acceptance, 农村土地承包经营纠纷
调解仲裁法 Art. 23: five working days) is counted again once the schedule of a year it reaches is
loaded or corrected, shown provisional until then, and only ever moves later."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from mediation.clocks.scheduler import TickReport, tick
from tests.support import Api

NEW_YEAR_2027 = [{"date": f"2027-01-0{d}", "name": "元旦"} for d in (1, 2, 3)]
# Made up for these tests: the Spring Festival's days off by law (全国年节及纪念日放假办法 Art. 2) are
# 5-8 February 2027 (New Year's Eve a Friday); a notice adds days to them, here to Thursday the 11th.
SPRING_FESTIVAL_2027 = [{"date": f"2027-02-{d:02d}", "name": "春节"} for d in range(5, 12)]


async def test_overdue_false_lists_an_accepted_referral_with_no_deadline_to_decide(api: Api) -> None:
    """A suit once registered has no deadline for its judgment here: never late, so it is on the
    `overdue=false` list, and every handoff is on exactly one of the two lists."""
    referred = await api.target_accepts(
        await api.step(await api.drive("mediation_failed"), "refer_litigation")
    )
    referral = (await api.handoff(referred))["handoff"]
    assert (referral["status"], referral["decide_due_on"], referral["overdue"]) == ("accepted", None, None)
    late_request = await api.drive("confirmation_pending")
    api.app.state.clock.at = datetime(2026, 6, 10, 2, tzinfo=UTC)  # the request's 3 days are past

    def ids(response: Any) -> set[str]:
        assert response.status_code == 200, response.text
        return {h["id"] for h in response.json()["items"]}

    court = api.auth("court")
    every = ids(await api.client.get("/v1/handoffs", headers=court))
    late = ids(await api.client.get("/v1/handoffs", params={"overdue": "true"}, headers=court))
    on_time = ids(await api.client.get("/v1/handoffs", params={"overdue": "false"}, headers=court))

    assert late == {late_request["handoff"]["id"]}
    assert on_time == {referral["id"]}
    assert every == late | on_time


async def _referred_on_29_december(api: Api) -> dict[str, Any]:
    """A land dispute referred to the rural land commission on Tuesday 29 December 2026."""
    return await _referred_on(api, date(2026, 12, 29))


async def _referred_on(api: Api, day: date) -> dict[str, Any]:
    """A land dispute referred to the rural land commission on `day`."""
    commission = await api.add_rural_land_commission()
    api.app.state.clock.at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
    dispute = await api.drive(
        "mediation_failed", category="land_forest", description="村民之间因承包地边界发生争议, 申请调解。"
    )
    dispute = await api.step(dispute, "refer_arbitration", {"commission_id": str(commission)})
    assert dispute["handoff"]["kind"] == "rural_land_arbitration"
    return dispute


async def _load_2027(
    api: Api, holidays: list[dict[str, str]], reference: str, workdays: list[dict[str, str]] | None = None
) -> None:
    loaded = await api.client.put(
        "/v1/calendar/years/2027",
        headers=api.auth("admin"),
        json={"reference": reference, "holidays": holidays, "workdays": workdays or []},
    )
    assert loaded.status_code == 200, loaded.text


async def _accept_due(api: Api, dispute: dict[str, Any]) -> tuple[str, bool]:
    handoff = (await api.handoff(dispute))["handoff"]
    return handoff["accept_due_on"], handoff["provisional"]


async def _tick(api: Api) -> TickReport:
    state = api.app.state
    return await tick(state.db, state.clock, state.settings, state.identity.cipher)


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_rural_land_acceptance_is_counted_again_when_the_schedule_is_loaded(api: Api) -> None:
    dispute = await _referred_on(api, date(2027, 2, 2))
    # 3 and 4 February, then 2027 on weekends and the statutory holidays only: past the Spring
    # Festival's days off by law (5-8 February), 9, 10 and 11 February.
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-02-11", True)

    await _load_2027(api, [*NEW_YEAR_2027, *SPRING_FESTIVAL_2027], "国办发明电〔2026〕7号")
    report = await _tick(api)

    # 3, 4, 12, 15 and 16 February: the notice takes 9-11 February off as well.
    assert (report.handoff_deadlines_moved, report.failed) == (1, 0)
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-02-16", False)
    case = await api.get(dispute)
    assert case["handoff"]["accept_due_on"] == "2027-02-16"
    entry = (await api.timeline(dispute))[-1]
    assert entry["action"] == "clock_recounted"
    assert entry["payload"]["clock"] == "handoff_accept"
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-02-11", "2027-02-16")
    assert entry["payload"]["provisional"] is False
    assert "国办发明电〔2026〕7号" in entry["reason"]
    # Counted once: the next pass finds nothing to do.
    assert (await _tick(api)).handoff_deadlines_moved == 0


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_rural_land_acceptance_is_counted_again_when_the_schedule_is_corrected(api: Api) -> None:
    await _load_2027(api, NEW_YEAR_2027, "国办发明电〔2026〕7号")
    dispute = await _referred_on_29_december(api)
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-01-06", False)

    # The notice corrected: 4 and 5 January off as well.
    corrected = [*NEW_YEAR_2027, *({"date": f"2027-01-0{d}", "name": "元旦"} for d in (4, 5))]
    await _load_2027(api, corrected, "国办发明电〔2026〕8号")
    report = await _tick(api)

    assert (report.handoff_deadlines_moved, report.failed) == (1, 0)
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["accept_due_on"], handoff["provisional"]) == ("2027-01-08", False)
    assert (await _tick(api)).handoff_deadlines_moved == 0


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_rural_land_acceptance_counted_again_never_moves_earlier(api: Api) -> None:
    """A make-up working day in the schedule would end the count earlier than the commission was
    told: the day it was told stands, and is no longer provisional."""
    dispute = await _referred_on_29_december(api)
    # Told 30, 31 December, then past New Year's Day: 4, 5 and 6 January.
    assert await _accept_due(api, dispute) == ("2027-01-06", True)
    # This schedule leaves 1 January a working day and makes Saturday the 2nd one: its count would
    # end on Monday 4 January.
    spring_festival = [{"date": f"2027-02-{d:02d}", "name": "春节"} for d in range(6, 13)]
    await _load_2027(api, spring_festival, "国办发明电〔2026〕7号", [{"date": "2027-01-02", "name": "春节"}])

    await _tick(api)

    assert await _accept_due(api, dispute) == ("2027-01-06", False)
