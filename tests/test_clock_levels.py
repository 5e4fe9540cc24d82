"""What the scheduler reports of a clock, and when: only a level the clock has reached as it stands
when reported, taking the case before its clock as a clerk's change does; the judicial
confirmation window, the parties' and not the center's, closes without the case going overdue;
a clock stopped while paused is judged with the days it stood still added back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from mediation.clocks.engine import Level
from mediation.clocks.rules import parse
from mediation.clocks.scheduler import TickReport, tick
from mediation.clocks.service import ClockService
from tests.support import Api, at_beijing
from tests.test_clock_starts import CONFIRMATION_WINDOW_RULE, shipped_rules


async def _tick(api: Api) -> TickReport:
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


async def _clocks(api: Api, dispute: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/clocks")
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()}


async def _reasons(api: Api, dispute: dict[str, Any], action: str) -> list[str]:
    return [e["reason"] for e in await api.timeline(dispute) if e["action"] == action]


async def _change_mediation_clock(api: Api, dispute: dict[str, Any], path: str) -> httpx.Response:
    dispute = await api.get(dispute)
    body: dict[str, Any] = {"reason": "waiting_party"}
    if path == "extension":
        body = {
            "units": 1,
            "reason": "双方同意延长",
            "consenting_party_ids": [p["id"] for p in dispute["parties"]],
        }
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/{path}",
        json=body,
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )


async def _overdue_count(api: Api, day: str) -> int:
    response = await api.client.get(
        "/v1/stats/overview", params={"from": day, "to": day}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    return int(response.json()["totals"]["overdue"])


# ---- races with a clerk ----------------------------------------------------------------------------


async def test_a_clock_extended_after_the_scheduler_looked_is_not_reported_overdue(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One month from Monday 1 June: due Wednesday 1 July. On 2 July the scheduler finds it overdue;
    # before it records that, the mediator extends it by a month with both parties' consent.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    at_beijing(api, date(2026, 7, 2))
    looked = ClockService.due_levels

    async def extended_meanwhile(self: ClockService, now: Any, limit: int = 500) -> Any:
        due = await looked(self, now, limit)
        monkeypatch.setattr(ClockService, "due_levels", looked)
        assert [d.level for d in due] == [Level.overdue]
        response = await _change_mediation_clock(api, dispute, "extension")
        assert response.status_code == 200, response.text
        assert (response.json()["due_on"], response.json()["level"]) == ("2026-08-03", "normal")
        return due

    monkeypatch.setattr(ClockService, "due_levels", extended_meanwhile)
    report = await _tick(api)
    assert (report.overdue, report.failed) == (0, 0)
    assert (await _clocks(api, dispute))["mediation"]["level"] == "normal"
    assert (await api.get(dispute))["clock"]["level"] == "normal"
    assert await _reasons(api, dispute, "clock_overdue") == []
    assert await _overdue_count(api, "2026-06-01") == 0
    # Overdue when the extended period has run out, and reported then.
    at_beijing(api, date(2026, 8, 4))
    assert (await _tick(api)).overdue == 1
    assert await _reasons(api, dispute, "clock_overdue") == ["时限超期: 调解期限已于 2026-08-03 届满"]
    assert await _overdue_count(api, "2026-06-01") == 1


@pytest.mark.postgres_only
async def test_a_clerk_pausing_a_clock_the_scheduler_is_reporting_waits_for_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler has the case and is recording the overdue; the mediator's pause waits for it,
    is told the case has moved on (412), and goes through on the case as it now is."""
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    at_beijing(api, date(2026, 7, 2))
    claimed = asyncio.Event()
    claim = ClockService.claim

    async def claim_then_linger(self: ClockService, clock_id: uuid.UUID, level: Level, now: Any) -> Any:
        clock = await claim(self, clock_id, level, now)
        claimed.set()
        await asyncio.sleep(0.5)  # the rest of the scheduler's work on the case
        return clock

    monkeypatch.setattr(ClockService, "claim", claim_then_linger)

    async def clerk() -> list[int]:
        await claimed.wait()
        first = await _change_mediation_clock(api, dispute, "pause")
        again = await _change_mediation_clock(api, dispute, "pause")
        return [first.status_code, again.status_code]

    report, statuses = await asyncio.gather(_tick(api), clerk())
    assert statuses == [412, 200]
    assert (report.overdue, report.failed) == (1, 0)
    assert await _reasons(api, dispute, "clock_overdue") == ["时限超期: 调解期限已于 2026-07-01 届满"]
    assert (await _clocks(api, dispute))["mediation"]["paused_at"] is not None


@pytest.mark.postgres_only
async def test_the_scheduler_waits_for_a_clerk_extending_the_clock_it_is_about_to_report(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mediator has the case and is extending its overdue clock when the scheduler comes to
    report it: the scheduler waits, then reports the clock as extended (still overdue)."""
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    # Due 1 July; extended by a month it is due Monday 3 August, still past on 10 August.
    at_beijing(api, date(2026, 8, 10))
    holding, looked, claimed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    extend, due_levels, claim = ClockService.extend, ClockService.due_levels, ClockService.claim

    async def extend_once_the_scheduler_came(self: ClockService, *args: Any) -> Any:
        holding.set()
        await looked.wait()
        # A scheduler that claims the clock before it has the case does so now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(claimed.wait(), timeout=1)
        return await extend(self, *args)

    async def look(self: ClockService, now: Any, limit: int = 500) -> Any:
        due = await due_levels(self, now, limit)
        looked.set()
        return due

    async def claim_and_say(self: ClockService, clock_id: uuid.UUID, level: Level, now: Any) -> Any:
        clock = await claim(self, clock_id, level, now)
        claimed.set()
        return clock

    monkeypatch.setattr(ClockService, "extend", extend_once_the_scheduler_came)
    monkeypatch.setattr(ClockService, "due_levels", look)
    monkeypatch.setattr(ClockService, "claim", claim_and_say)

    async def scheduler() -> TickReport:
        await holding.wait()
        return await _tick(api)

    extended, report = await asyncio.gather(_change_mediation_clock(api, dispute, "extension"), scheduler())
    assert extended.status_code == 200, extended.text
    assert extended.json()["due_on"] == "2026-08-03"
    assert (report.overdue, report.failed) == (1, 0)
    assert await _reasons(api, dispute, "clock_overdue") == ["时限超期: 调解期限已于 2026-08-03 届满"]


# ---- the judicial confirmation window --------------------------------------------------------------


async def test_the_confirmation_window_closes_without_the_case_going_overdue(api: Api) -> None:
    # 人民调解法 Art. 33; 民事诉讼法 Art. 205: the parties may apply within 30 days of the agreement
    # taking effect, and need not; the window running out is no lateness of the center's.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("agreement_signed")
    assert dispute["clock"]["name"] == "confirmation_window"
    window = (await _clocks(api, dispute))["confirmation_window"]
    assert window["due_on"] == "2026-07-01"
    at_beijing(api, date(2026, 6, 25))  # most of the window used: no warning to the center
    assert (await _tick(api)).at_risk == 0
    at_beijing(api, date(2026, 7, 10))
    report = await _tick(api)
    assert (report.overdue, report.windows_closed, report.failed) == (0, 1, 0)
    assert (await _tick(api)).windows_closed == 0  # once
    assert await _reasons(api, dispute, "clock_window_closed") == [
        "期限届满: 司法确认申请期限已于 2026-07-01 届满"
    ]
    assert await _reasons(api, dispute, "clock_overdue") == []
    assert await _reasons(api, dispute, "clock_at_risk") == []
    case = await api.get(dispute)
    assert (case["clock"]["name"], case["clock"]["level"]) == ("confirmation_window", "normal")
    window = (await _clocks(api, dispute))["confirmation_window"]
    assert window["level"] == "normal"
    assert window["history"][-1]["what"] == "closed"
    listed = await api.client.get(
        "/v1/disputes", params={"clock_level": "overdue"}, headers=api.auth("supervisor")
    )
    assert listed.status_code == 200, listed.text
    assert dispute["id"] not in {d["id"] for d in listed.json()["items"]}
    # The obligations performed later: the case never counted as overdue.
    await api.step(await api.get(dispute), "record_performance")
    assert await _overdue_count(api, "2026-06-01") == 0


def test_the_confirmation_window_is_the_parties_window_in_every_rule_file() -> None:
    others = [r for r in shipped_rules() if r["id"] != "confirmation_window"]
    window = CONFIRMATION_WINDOW_RULE
    # A center's own file need not say so.
    parsed = parse(json.dumps({"rules": [*others, window]}))
    assert next(r for r in parsed.rules if r.id == "confirmation_window").is_party_window
    with pytest.raises(ValidationError, match="the confirmation window is the parties' window"):
        parse(json.dumps({"rules": [*others, {**window, "party_window": False}]}))
    # The center neither pauses nor extends the parties' time.
    for extra in ({"pausable": True}, {"extension": {"max": 10, "consent": "none"}}):
        with pytest.raises(ValidationError, match="neither paused nor extended"):
            parse(json.dumps({"rules": [*others, {**window, **extra}]}))
    follow_up = next(r for r in shipped_rules() if r["id"] == "follow_up_visit")
    with pytest.raises(ValidationError, match="neither paused nor extended"):
        parse(json.dumps({"rules": [*others, window, {**follow_up, "id": "visit", "party_window": True}]}))
    # The others are the center's deadlines.
    assert not any(r.is_party_window for r in parsed.rules if r.id != "confirmation_window")


# ---- stopping while paused -------------------------------------------------------------------------


async def _mediation_clock_stopped_while_paused(
    api: Api, paused_on: date, stopped_on: date
) -> dict[str, Any]:
    """A mediation clock started on 1 June (due 1 July), paused on `paused_on`, and stopped on
    `stopped_on` by the mediation failing while still paused."""
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    at_beijing(api, paused_on)
    assert (await _change_mediation_clock(api, dispute, "pause")).status_code == 200
    at_beijing(api, stopped_on)
    await api.step(await api.get(dispute), "fail")
    return (await _clocks(api, dispute))["mediation"]


async def test_a_clock_stopped_while_paused_counts_the_days_it_stood_still(api: Api) -> None:
    # Due 1 July; paused on 10 June for an appraisal that takes five weeks; the mediation fails on
    # 15 July while still paused, with 9 of its days used: 35 days stood still, so it ends 5 August.
    clock = await _mediation_clock_stopped_while_paused(api, date(2026, 6, 10), date(2026, 7, 15))
    assert clock["outcome"] == "met"
    assert clock["history"][-1] == {
        "at": "2026-07-15T02:00:00+00:00",
        "what": "stopped",
        "due_on": "2026-08-05",
        "outcome": "met",
    }


async def test_a_clock_paused_after_its_end_stays_missed(api: Api) -> None:
    # Due 1 July, paused on 3 July, stopped on 22 July: 19 days added give Monday 20 July, passed.
    clock = await _mediation_clock_stopped_while_paused(api, date(2026, 7, 3), date(2026, 7, 22))
    assert (clock["outcome"], clock["history"][-1]["due_on"]) == ("missed", "2026-07-20")
