"""Clocks across a transfer, and extensions counted as the law counts them.

A period that is not the body's own (the court's period for the mediation it delegated, 特邀调解规定
Art. 27; the petition rules' period to handle a petition, 信访工作条例; the labour mediation
period, 劳动争议调解仲裁法 Art. 14) runs on when the case passes to another body: the next body's
sign-for neither starts it again nor gives back the extensions already used. Only the body's own
period (people's mediation, 人民调解工作若干规定 Art. 33) starts again with the body.

An extension of a case clock runs from the day the period ended, that day moved off a rest day
(民法典 Art. 203; 民事诉讼法 Art. 85), as a court's or commission's extension of its period to
decide does (法释〔2011〕5号 Art. 5): both count through one function (clocks.engine).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from mediation.clocks import engine
from mediation.clocks.rules import Unit, parse
from tests.support import Api
from tests.test_clock_starts import shipped_rules
from tests.test_deadlines import _at, _clocks, _tick


async def _consent(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    """Both parties agree to the court-delegated mediation (特邀调解规定 Art. 11)."""
    for party in dispute["parties"]:
        response = await api.client.post(
            f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent",
            json={"decision": "given"},
            headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
        )
        assert response.status_code == 200, response.text
        dispute = response.json()
    return dispute


async def _court_delegated_mediating(api: Api) -> dict[str, Any]:
    dispute = await api.drive(
        "assigned", channel="court_delegated", inviting_court_id=str(api.bodies["court"])
    )
    return await api.step(await _consent(api, dispute), "sign_for")


async def _to_town(api: Api, dispute: dict[str, Any], action: str = "transfer") -> dict[str, Any]:
    """Handed on (transferred, or escalated) and signed for by the town committee."""
    dispute = await api.step(await api.get(dispute), action, {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    dispute = await api.step(dispute, "sign_for")
    assert dispute["body_id"] == str(api.bodies["town"])
    return dispute


async def _mediation_clock(
    api: Api, dispute: dict[str, Any], path: str, body: dict[str, Any]
) -> httpx.Response:
    dispute = await api.get(dispute)
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/{path}",
        json=body,
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )


def _extension(dispute: dict[str, Any], units: int) -> dict[str, Any]:
    everyone = [p["id"] for p in dispute["parties"]]
    return {"units": units, "reason": "各方当事人同意延长", "consenting_party_ids": everyone}


# ---- the court's period and the petition period run on across a transfer ---------------------------


async def test_the_court_delegated_mediation_period_is_not_started_again_by_a_transfer(api: Api) -> None:
    # Signed for on Monday 2 November 2026: the court's thirty days end on Wednesday 2 December.
    _at(api, date(2026, 11, 2))
    dispute = await _court_delegated_mediating(api)
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"]) == ("mediation.court_delegated", "2026-12-02")
    _at(api, date(2026, 11, 12))
    dispute = await _to_town(api, dispute)
    # 特邀调解规定 Art. 27: the period is the delegating court's; the town committee signing for
    # the case on 12 November does not give it thirty days more (it would end on 14 December).
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"]) == ("mediation.court_delegated", "2026-12-02")
    assert clock["started_at"].startswith("2026-11-02")
    # It runs out on that day, and is reported then.
    _at(api, date(2026, 12, 3))
    assert (await _tick(api)).overdue == 1


async def test_the_court_delegated_period_runs_on_across_an_escalation_too(api: Api) -> None:
    _at(api, date(2026, 11, 2))
    dispute = await _court_delegated_mediating(api)
    _at(api, date(2026, 11, 12))
    dispute = await _to_town(api, dispute, "escalate")
    assert dispute["tier"] == "town"
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-12-02"


async def test_the_petition_handling_period_is_not_started_again_by_a_transfer(api: Api) -> None:
    # Signed for on Tuesday 1 September 2026: sixty days end on Saturday 31 October, so on Monday
    # 2 November (民法典 Art. 203).
    _at(api, date(2026, 9, 1))
    dispute = await api.drive("mediating", channel="petition")
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"]) == ("mediation.petition", "2026-11-02")
    _at(api, date(2026, 9, 14))
    dispute = await _to_town(api, dispute)
    # 信访工作条例: the sixty days are the petition's, not the body's (14 September + 60 would be
    # Friday 13 November).
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"]) == ("mediation.petition", "2026-11-02")


async def test_an_extension_used_before_a_transfer_stays_used(api: Api) -> None:
    _at(api, date(2026, 11, 2))
    dispute = await _court_delegated_mediating(api)
    # Ten days more with every party's consent (特邀调解规定 Art. 27): from Wednesday 2 December to
    # Saturday 12 December, so Monday 14 December.
    _at(api, date(2026, 11, 5))
    response = await _mediation_clock(api, dispute, "extension", _extension(dispute, 10))
    assert response.status_code == 200, response.text
    assert response.json()["due_on"] == "2026-12-14"
    _at(api, date(2026, 11, 12))
    dispute = await _to_town(api, dispute)
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["due_on"], clock["extended_by"]) == ("2026-12-14", 10)
    # Twenty of the thirty days of extension are left, not thirty again.
    refused = await _mediation_clock(api, dispute, "extension", _extension(dispute, 21))
    assert refused.status_code == 422, refused.text
    assert refused.json()["reasons"][0]["code"] == "clock_extension_limit"
    assert "尚可延长 20" in refused.json()["reasons"][0]["message"]
    # A recount on the calendar as it stands ends it on the same day.
    end, _ = engine.replay(
        datetime.fromisoformat(clock["started_at"]),
        clock["length"],
        Unit(clock["unit"]),
        clock["history"],
        ZoneInfo("Asia/Shanghai"),
    )
    assert end.last_day == date(2026, 12, 14)


async def test_a_pause_before_a_transfer_keeps_the_days_it_stood_still(api: Api) -> None:
    # The petition's sixty days, signed for on Tuesday 1 September 2026, end on Monday 2 November
    # (above). The court's period is never paused (特邀调解规定 Art. 27: longer only by agreement).
    _at(api, date(2026, 9, 1))
    dispute = await api.drive("mediating", channel="petition")
    # Paused from 3 to 7 September waiting on an appraisal: four days added, Wednesday 4 November.
    _at(api, date(2026, 9, 3))
    assert (await _mediation_clock(api, dispute, "pause", {"reason": "appraisal"})).status_code == 200
    _at(api, date(2026, 9, 7))
    # Handed on while paused: the pause ends with the body's part in the case.
    dispute = await _to_town(api, dispute)
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"], clock["paused_at"]) == (
        "mediation.petition",
        "2026-11-04",
        None,
    )


async def test_a_peoples_mediation_period_still_starts_again_with_the_next_body(api: Api) -> None:
    # 人民调解工作若干规定 Art. 33: a month for the committee that mediates; the next one has its own.
    _at(api, date(2026, 11, 2))
    dispute = await api.drive("mediating")
    _at(api, date(2026, 11, 5))
    response = await _mediation_clock(api, dispute, "extension", _extension(dispute, 1))
    assert response.status_code == 200, response.text
    _at(api, date(2026, 11, 12))
    dispute = await _to_town(api, dispute)
    clock = (await _clocks(api, dispute))["mediation"]
    # 12 December is a Saturday; the first committee's extension was its own.
    assert (clock["rule_id"], clock["due_on"], clock["extended_by"]) == ("mediation", "2026-12-14", 0)


def test_only_a_period_a_transfer_stops_may_run_on_across_one() -> None:
    shipped = shipped_rules()
    rules = {r.id: r for r in parse(json.dumps({"rules": shipped})).rules}
    assert {i for i, r in rules.items() if r.on_transfer == "runs_on"} == {
        "mediation.labour",
        "mediation.court_delegated",
        "mediation.court_entrusted.ordinary",
        "mediation.court_entrusted.simple",
        "mediation.petition",
    }
    assert rules["mediation"].on_transfer == "restarts"
    handling = {
        "id": "handling.runs_on",
        "clock": "handling",
        "when": {"complexities": ["general"], "channels": ["petition"]},
        "length": 7,
        "unit": "days",
        "on_transfer": "runs_on",
        "source": "中心工作规范",
    }
    with pytest.raises(ValidationError, match="only a mediation period"):
        parse(json.dumps({"rules": [*shipped, handling]}))


# ---- extensions count from the moved last day, as the handoff's do ----------------------------------


async def test_a_case_clock_extension_runs_from_the_last_day_as_moved_off_a_holiday(api: Api) -> None:
    # Court-delegated mediation signed for on Tuesday 1 September 2026: thirty days end on
    # 1 October, in the National Day holiday, so on Thursday 8 October (民事诉讼法 Art. 85).
    _at(api, date(2026, 9, 1))
    dispute = await _court_delegated_mediating(api)
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-10-08"
    _at(api, date(2026, 9, 20))
    response = await _mediation_clock(api, dispute, "extension", _extension(dispute, 10))
    assert response.status_code == 200, response.text
    extended = response.json()
    # Ten days from 8 October: Sunday 18 October, so Monday 19 October; not ten days from the
    # unmoved 1 October (Monday 12 October: the holiday would eat into the ten days granted).
    assert extended["due_on"] == "2026-10-19"
    # The same count as a court's extension of its period to decide (法释〔2011〕5号 Art. 5).
    _, end = engine.extended_end(date(2026, 10, 8), 10, Unit.days)
    assert end.last_day == date(2026, 10, 19)


async def test_a_court_extending_its_period_counts_as_a_case_clock_extension_does(api: Api) -> None:
    # The court accepts on Wednesday 16 September 2026: fifteen days end on 1 October, so on
    # Thursday 8 October; ten days more end on Monday 19 October, as the case clock's above.
    _at(api, date(2026, 9, 16))
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    assert handoff["decide_due_on"] == "2026-10-08"
    response = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/extension",
        json={"days": 10, "reason": "案情复杂, 经院长批准延长"},
        headers={**api.auth("court", api.bodies["court"]), "If-Match": f'"{handoff["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["decide_due_on"] == "2026-10-19"


async def test_a_month_of_extension_runs_from_the_moved_last_day(api: Api) -> None:
    # One month from Thursday 4 June ends on Saturday 4 July, so on Monday 6 July; a month more
    # runs from 6 July to Thursday 6 August.
    _at(api, date(2026, 6, 4))
    dispute = await api.drive("mediating")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-07-06"
    response = await _mediation_clock(api, dispute, "extension", _extension(dispute, 1))
    assert response.status_code == 200, response.text
    assert response.json()["due_on"] == "2026-08-06"
