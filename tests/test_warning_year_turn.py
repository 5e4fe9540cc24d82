"""Early warning at the turn of the year: intakes of one county take its case-number counters in
turn, also when one is dated 31 December and the other 1 January (counters are per county and
year), so the waves that span the new year lose no case from their alerts."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event
from stdnum.cn import uscc

from mediation.alerts.service import AlertService
from mediation.disputes.service import counter_years
from tests.support import (
    Api,
    at_beijing,
    first_intake_waits_after_looking,
    pause_after,
    person,
    waits_on_a_lock,
)

NEW_YEARS_EVE = date(2025, 12, 31)
NEW_YEARS_DAY = date(2026, 1, 1)


def _employer() -> dict[str, Any]:
    first17 = "91330681MA2C00077"
    return {
        "role": "respondent",
        "kind": "organisation",
        "name": "诸暨市某建筑劳务有限公司",
        "id_type": "uscc",
        "id_number": first17 + uscc.calc_check_digit(first17),
    }


async def _wage_claim(api: Api, worker: int) -> dict[str, Any]:
    """A worker's claim against the one employer: five claimants in seven days are a wave."""
    return await api.intake(
        category="labour",
        description="工人追讨拖欠工资, 申请调解。",
        parties=[person("applicant", f"工人{worker}", 2100 + worker), _employer()],
    )


async def _claims_before_the_new_year(api: Api) -> list[dict[str, Any]]:
    """Three claims on 29-31 December: a wave two claimants short of its alert."""
    cases = []
    for n, day in enumerate((date(2025, 12, 29), date(2025, 12, 30), NEW_YEARS_EVE)):
        at_beijing(api, day, 10)
        cases.append(await _wage_claim(api, n))
    return cases


def _first_raising_intake_waits_under_the_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[asyncio.Event, asyncio.Event]:
    """The next intake that raises an alert stops once it has, still holding the county's counters
    and not committed."""
    return pause_after(monkeypatch, AlertService, "apply", when=lambda alerts, *_: bool(alerts))


async def _wave_alert(api: Api) -> dict[str, Any]:
    listed = await api.client.get("/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor"))
    [alert] = listed.json()["items"]
    full = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))).json()
    return dict(full)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_wave_two_intakes_each_saw_short_across_midnight_is_raised(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three claims; a fourth, dated 31 December, looks (four) and stops; a fifth, dated
    1 January, looks (four: the other had not committed), takes 2026's counter and raises nothing.
    The first goes on: an intake was numbered since it looked, on the new year's counter, so it
    reads the wave again and raises it with all five claims."""
    before = await _claims_before_the_new_year(api)
    looked, go_on = first_intake_waits_after_looking(monkeypatch)
    at_beijing(api, NEW_YEARS_EVE, 23, 59)
    waiting = asyncio.create_task(_wage_claim(api, 3))
    await asyncio.wait_for(looked.wait(), 10)
    at_beijing(api, NEW_YEARS_DAY, 0, 1)
    other = await _wage_claim(api, 4)
    assert other["case_number"].startswith("330681-2026-")
    assert "alert_raised" not in [e["action"] for e in await api.timeline(other)], "it saw four"
    go_on.set()
    last = await asyncio.wait_for(waiting, 10)
    assert last["case_number"].startswith("330681-2025-")

    alert = await _wave_alert(api)
    assert alert["case_count"] == 5
    assert {c["dispute_id"] for c in alert["cases"]} == {c["id"] for c in [*before, last, other]}
    [noted] = [e for e in await api.timeline(last) if e["action"] == "alert_raised"]
    assert noted["reason"] == alert["title"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_new_years_eve_intake_waits_for_the_new_years_day_intake_raising_its_wave(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three claims; a fourth, dated 31 December, looks (four) and stops. Two claims on 1 January:
    the second of them sees five and raises the wave, and stops before committing. The first goes
    on: it takes its counter only after the raising intake has committed, and joins its alert
    (taking 2025's counter alone, it would have found no alert, the other's being uncommitted, and
    been left out of the wave)."""
    before = await _claims_before_the_new_year(api)
    looked, go_on = first_intake_waits_after_looking(monkeypatch)
    at_beijing(api, NEW_YEARS_EVE, 23, 58)
    eve = asyncio.create_task(_wage_claim(api, 3))
    await asyncio.wait_for(looked.wait(), 10)
    at_beijing(api, NEW_YEARS_DAY, 0, 1)
    quiet = await _wage_claim(api, 4)
    raised, raiser_goes_on = _first_raising_intake_waits_under_the_counter(monkeypatch)
    at_beijing(api, NEW_YEARS_DAY, 0, 2)
    raising = asyncio.create_task(_wage_claim(api, 5))
    await asyncio.wait_for(raised.wait(), 10)
    go_on.set()
    waited = await waits_on_a_lock(api, eve)
    raiser_goes_on.set()
    raiser = await asyncio.wait_for(raising, 10)
    joined = await asyncio.wait_for(eve, 10)

    alert = await _wave_alert(api)
    assert alert["case_count"] == 6
    assert {c["dispute_id"] for c in alert["cases"]} == {c["id"] for c in [*before, quiet, raiser, joined]}
    assert "alert_raised" in [e["action"] for e in await api.timeline(joined)]
    assert waited, "the eve's intake waited for the counters the other held"


async def test_case_numbers_start_again_with_the_year_and_stay_gapless(api: Api) -> None:
    """The intakes of 31 December hold 2026's counter too, without taking a number of it: the
    first case of the new year is its number 1, and 2025's numbers run on without a gap."""
    numbers = []
    for day, hour in ((date(2025, 12, 30), 10), (NEW_YEARS_EVE, 10), (NEW_YEARS_EVE, 23)):
        at_beijing(api, day, hour)
        numbers.append((await api.intake())["case_number"])
    for day, hour in ((NEW_YEARS_DAY, 0), (NEW_YEARS_DAY, 9), (date(2026, 1, 2), 9)):
        at_beijing(api, day, hour)
        numbers.append((await api.intake())["case_number"])
    assert numbers == [
        "330681-2025-000001",
        "330681-2025-000002",
        "330681-2025-000003",
        "330681-2026-000001",
        "330681-2026-000002",
        "330681-2026-000003",
    ]


async def test_only_intakes_at_the_turn_of_the_year_take_two_counters(api: Api) -> None:
    """Two intakes can run at once only within a day of each other: those of 31 December and
    1 January take both years' counters, oldest first, so every pair of them shares one; any other
    intake takes its own year's counter alone, in the one statement that numbers it."""
    assert counter_years(date(2026, 6, 1)) == (2026,)
    assert counter_years(date(2025, 12, 30)) == (2025,)
    assert counter_years(NEW_YEARS_EVE) == (2025, 2026)
    assert counter_years(NEW_YEARS_DAY) == (2025, 2026)
    assert counter_years(date(2026, 1, 2)) == (2026,)

    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "case_number_counters" in statement and not statement.lstrip().upper().startswith("SELECT"):
            statements.append(" ".join(statement.split()))

    engine = api.app.state.db.write_engine.sync_engine
    taken = []
    days = (date(2025, 12, 30), date(2025, 12, 30), NEW_YEARS_EVE, NEW_YEARS_DAY, date(2026, 1, 2))
    for day in days:
        at_beijing(api, day, 10)
        statements.clear()
        event.listen(engine, "before_cursor_execute", log)
        try:
            await api.intake()
        finally:
            event.remove(engine, "before_cursor_execute", log)
        taken.append(len(statements))
    # A counter not there yet is started by an update finding no row, then an insert: the county's
    # first case of 2025, and 2026's counter, held first on 31 December.
    assert taken == [2, 1, 1 + 2, 2, 1]
