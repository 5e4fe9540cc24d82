"""What was recorded before two rule changes, put right by the scheduler once the service runs on
the new rules: a judicial confirmation window (the parties' time to apply, 人民调解法 Art. 33,
民事诉讼法 Art. 205) reported at risk or overdue as the center's deadline shows normal, its closing
is recorded as such, and the case leaves the overdue list and the overdue rate unless another of
its clocks was late; a rural land commission's acceptance opened before the handoff kept its
working-day count (农村土地承包经营纠纷调解仲裁法 Art. 23, migration 0025) is counted again once the
year's holiday schedule is loaded. Each old state is written to the database as the code of the
time left it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from mediation.clocks.models import CaseClock
from mediation.disputes.models import Dispute
from mediation.handoffs.models import Handoff
from tests.support import Api, at_beijing
from tests.test_clock_levels import _clocks, _overdue_count, _reasons, _tick
from tests.test_handoff_deadlines import (
    NEW_YEAR_2027,
    SPRING_FESTIVAL_2027,
    _accept_due,
    _load_2027,
    _referred_on,
)

REPORTED_AT_RISK = datetime(2026, 6, 24, 2, tzinfo=UTC)
REPORTED_OVERDUE = datetime(2026, 7, 2, 2, tzinfo=UTC)


async def _reported_as_before(api: Api, dispute: dict[str, Any], name: str, level: str) -> None:
    """The clock `name` of the case as the scheduler left it when it still reported a party window
    as the center's deadline: its level, its fired marks and history entries, and for an overdue
    one the case counted as overdue; the case's summary shows the clock's level when it runs."""
    async with api.app.state.db.writer() as session, session.begin():
        case = await session.get(Dispute, uuid.UUID(dispute["id"]))
        clock = await session.scalar(
            select(CaseClock).where(CaseClock.dispute_id == case.id, CaseClock.name == name)
        )
        assert case is not None and clock is not None
        clock.level = level
        clock.at_risk_fired_at = REPORTED_AT_RISK
        history = [*clock.history, {"at": REPORTED_AT_RISK.isoformat(), "what": "at_risk"}]
        if level == "overdue":
            clock.overdue_fired_at = REPORTED_OVERDUE
            history.append({"at": REPORTED_OVERDUE.isoformat(), "what": "overdue"})
            case.ever_overdue = True
        clock.history = history
        if clock.stopped_at is None:
            case.clock_level = level
            case.clock = {**(case.clock or {}), "level": level}


async def _listed(api: Api, level: str) -> set[str]:
    response = await api.client.get(
        "/v1/disputes", params={"clock_level": level}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    return {d["id"] for d in response.json()["items"]}


async def _audited(api: Api, action: str, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(
        "/v1/audit-records",
        params={"action": action, "object_id": dispute["id"]},
        headers=api.headers("auditor"),
    )
    assert response.status_code == 200, response.text
    return [r["details"] for r in response.json()["items"]]


async def _overview_source(api: Api, day: str) -> str:
    response = await api.client.get(
        "/v1/stats/overview", params={"from": day, "to": day}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    return str(response.json()["source"])


async def test_party_windows_reported_overdue_before_are_put_right(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    # Still waiting for the parties when the window closed on 1 July.
    waiting = await api.drive("agreement_signed")
    # Performed after the window closed: the window stopped, its old overdue kept.
    performed = await api.drive("agreement_signed")
    # Its mediation was reported overdue too (a deadline of the center's): it stays overdue.
    late_too = await api.drive("agreement_signed")
    # Really late: the mediation clock runs out on 1 July and is reported at the next pass.
    mediating = await api.drive("mediating")
    at_beijing(api, date(2026, 6, 15))
    # Agreed on 15 June: window due 15 July, at risk since about 7 July.
    warned = await api.drive("agreement_signed")
    at_beijing(api, date(2026, 7, 10))
    performed = await api.step(await api.get(performed), "record_performance")
    for case in (waiting, performed, late_too):
        await _reported_as_before(api, case, "confirmation_window", "overdue")
    await _reported_as_before(api, late_too, "mediation", "overdue")
    await _reported_as_before(api, warned, "confirmation_window", "at_risk")

    assert (await _clocks(api, waiting))["confirmation_window"]["level"] == "overdue"
    assert {waiting["id"], late_too["id"]} <= await _listed(api, "overdue")
    assert warned["id"] in await _listed(api, "at_risk")
    # The rollup has counted them (the supervisors' county is read from it).
    assert await _overview_source(api, "2026-06-01") == "rollup"
    assert await _overdue_count(api, "2026-06-01") == 3

    report = await _tick(api)

    for case in (waiting, performed, late_too):
        window = (await _clocks(api, case))["confirmation_window"]
        assert window["level"] == "normal"
        assert window["history"][-1]["what"] == "closed"
        assert await _reasons(api, case, "clock_window_closed") == [
            "期限届满: 司法确认申请期限已于 2026-07-01 届满; 此前的超期提示不再成立"
        ]
    assert (await _clocks(api, warned))["confirmation_window"]["level"] == "normal"
    assert (await _clocks(api, late_too))["mediation"]["level"] == "overdue"
    for case in (waiting, warned):
        assert (await api.get(case))["clock"]["level"] == "normal"
    assert waiting["id"] not in await _listed(api, "overdue")
    assert warned["id"] not in await _listed(api, "at_risk")
    # The case whose mediation ran late, and the one reported late in this pass, alone count.
    assert mediating["id"] in await _listed(api, "overdue")
    assert await _overdue_count(api, "2026-06-01") == 2
    assert await _overview_source(api, "2026-06-01") == "rollup"
    assert await _overdue_count(api, "2026-06-15") == 0
    assert (report.windows_unmarked, report.overdue, report.windows_closed, report.failed) == (4, 1, 0, 0)
    # Audited as the scheduler's changes are; the warned window, reported to no one, by itself.
    closed = await _audited(api, "scheduler.clock_window_closed", waiting)
    assert [d["job"] for d in closed] == ["party windows unmarked"]
    corrected = await _audited(api, "scheduler.clock_level_corrected", warned)
    assert [(d["job"], d["level_was"]) for d in corrected] == [("party windows unmarked", "at_risk")]

    # Once: the next pass finds nothing, and the warned window closes as any window does.
    timeline = len(await api.timeline(waiting))
    assert (await _tick(api)).windows_unmarked == 0
    assert len(await api.timeline(waiting)) == timeline
    at_beijing(api, date(2026, 7, 16))
    report = await _tick(api)
    assert (report.windows_unmarked, report.windows_closed, report.overdue) == (0, 1, 0)
    assert await _reasons(api, warned, "clock_window_closed") == [
        "期限届满: 司法确认申请期限已于 2026-07-15 届满"
    ]
    assert await _overdue_count(api, "2026-06-15") == 0


async def test_a_party_window_only_warned_of_is_put_right_in_a_new_version_of_the_case(api: Api) -> None:
    """A window reported at risk before windows were told apart, still open: put right, it closes
    nothing and adds nothing to the timeline, but the case's colour changes, and with it the case's
    version, so a copy held of the case (If-None-Match) is read in full again, not answered 304."""
    at_beijing(api, date(2026, 6, 15))
    warned = await api.drive("mediating")
    # Nothing to perform: the pass below has nothing else to record on the case.
    await api.signed_agreement(warned, obligations=[])
    warned = await api.step(await api.get(warned), "agree")
    at_beijing(api, date(2026, 7, 10))
    await _reported_as_before(api, warned, "confirmation_window", "at_risk")
    path = f"/v1/disputes/{warned['id']}"
    held = await api.client.get(path, headers=api.auth())
    assert held.json()["clock"]["level"] == "at_risk"
    entries = len(await api.timeline(warned))

    assert (await _tick(api)).windows_unmarked == 1

    reread = await api.client.get(path, headers={**api.auth(), "If-None-Match": held.headers["etag"]})
    assert reread.status_code == 200, reread.text
    assert (reread.json()["clock"]["level"], reread.json()["version"]) == (
        "normal",
        held.json()["version"] + 1,
    )
    assert reread.headers["etag"] == f'"{held.json()["version"] + 1}"'
    assert len(await api.timeline(warned)) == entries
    assert [d["job"] for d in await _audited(api, "scheduler.clock_level_corrected", warned)] == [
        "party windows unmarked"
    ]


async def _as_before_0025(api: Api, dispute: dict[str, Any]) -> None:
    """The handoff as it was opened before it kept its count: no count, never provisional."""
    handoff_id = uuid.UUID(dispute["handoff"]["id"])
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Handoff)
            .where(Handoff.id == handoff_id)
            .values(counted_from=None, working_days=None, provisional=False)
        )
        case = await session.get(Dispute, uuid.UUID(dispute["id"]))
        assert case is not None and case.handoff is not None
        case.handoff = {k: v for k, v in case.handoff.items() if k != "provisional"}


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_a_handoff_opened_before_it_kept_its_count_is_counted_on_the_schedule(api: Api) -> None:
    dispute = await _referred_on(api, date(2027, 2, 2))
    await _as_before_0025(api, dispute)
    # Counted before the schedule: 3, 4, then past the Spring Festival's days off by law, 9, 10
    # and 11 February.
    assert await _accept_due(api, dispute) == ("2027-02-11", False)
    await _load_2027(api, [*NEW_YEAR_2027, *SPRING_FESTIVAL_2027], "国办发明电〔2026〕7号")

    report = await _tick(api)

    # The notice takes 9-11 February off as well: 3, 4, 12, 15 and 16 February.
    assert await _accept_due(api, dispute) == ("2027-02-16", False)
    assert (await api.get(dispute))["handoff"]["accept_due_on"] == "2027-02-16"
    assert (report.handoff_counts_restored, report.handoff_deadlines_moved, report.failed) == (1, 1, 0)
    restored = await _audited(api, "scheduler.handoff_count_restored", dispute)
    assert [(d["counted_from"], d["working_days"]) for d in restored] == [("2027-02-02", 5)]
    entry = (await api.timeline(dispute))[-1]
    assert entry["action"] == "clock_recounted"
    assert (entry["payload"]["previous_due_on"], entry["payload"]["due_on"]) == ("2027-02-11", "2027-02-16")
    assert "国办发明电〔2026〕7号" in entry["reason"]
    report = await _tick(api)
    assert (report.handoff_counts_restored, report.handoff_deadlines_moved) == (0, 0)


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_a_handoff_opened_before_it_kept_its_count_waits_for_the_schedule(api: Api) -> None:
    dispute = await _referred_on(api, date(2027, 2, 2))
    await _as_before_0025(api, dispute)

    held = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth())
    assert held.json()["handoff"].get("provisional") is None  # kept on the case before it was told

    report = await _tick(api)

    # Its count reaches 2027, whose schedule nobody knows yet: shown provisional, day unchanged.
    assert await _accept_due(api, dispute) == ("2027-02-11", True)
    # On the case too, its version moved: the copy held is read in full again.
    reread = await api.client.get(
        f"/v1/disputes/{dispute['id']}", headers={**api.auth(), "If-None-Match": held.headers["etag"]}
    )
    assert reread.status_code == 200, reread.text
    assert (reread.json()["handoff"]["provisional"], reread.json()["version"]) == (
        True,
        held.json()["version"] + 1,
    )
    assert (report.handoff_counts_restored, report.handoff_deadlines_moved, report.failed) == (1, 0, 0)

    await _load_2027(api, [*NEW_YEAR_2027, *SPRING_FESTIVAL_2027], "国办发明电〔2026〕7号")
    report = await _tick(api)

    assert (report.handoff_counts_restored, report.handoff_deadlines_moved) == (0, 1)
    assert await _accept_due(api, dispute) == ("2027-02-16", False)
    assert (await api.get(dispute))["handoff"]["accept_due_on"] == "2027-02-16"
