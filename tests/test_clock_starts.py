"""The day a clock counts from: a period the law counts from an earlier day than the state it runs
in (the agreement taking effect, the first receipt of a labour application) ends where the guard
that enforces it says, however late the state is entered and however often it is entered again."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from mediation.clocks.rules import parse
from tests.support import Api
from tests.test_deadlines import _at, _clocks, _events, _tick


def _refusals(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 422, response.text
    return {r["code"]: r for r in response.json()["reasons"]}


async def _window_closed_on(api: Api, dispute: dict[str, Any]) -> str:
    """The day the request_confirmation guard says the window ended on."""
    refused = _refusals(await api.act(await api.get(dispute), "request_confirmation"))
    return str(refused["confirmation_window_closed"]["message"])


# The confirmation window's rule as a center's own rule file may state it.
CONFIRMATION_WINDOW_RULE = {
    "id": "confirmation_window",
    "clock": "confirmation_window",
    "length": 30,
    "unit": "days",
    "source": "民事诉讼法 第二百零五条",
}


def shipped_rules() -> list[dict[str, Any]]:
    """The rules of the file the service ships."""
    shipped = json.loads(
        resources.files("mediation.clocks").joinpath("default_rules.json").read_text("utf-8")
    )
    return list(shipped["rules"])


async def test_the_confirmation_window_counts_from_the_day_the_agreement_took_effect(api: Api) -> None:
    # Every party signs on 1 September: the agreement takes effect that day (人民调解法 Art. 30).
    _at(api, date(2026, 9, 1))
    dispute = await api.drive("mediating")
    await api.signed_agreement(dispute)
    # The body records the agreement on the case nearly three weeks later.
    _at(api, date(2026, 9, 20))
    dispute = await api.step(dispute, "agree")
    assert dispute["agreement_effective_on"] == "2026-09-01"
    window = (await _clocks(api, dispute))["confirmation_window"]
    # Thirty days from 1 September end on 1 October, in the National Day holiday, so on Thursday
    # 8 October (民事诉讼法 Art. 85; 民法典 Art. 203), not thirty days from 20 September.
    assert window["due_on"] == "2026-10-08"
    assert (await _tick(api)).at_risk == 0
    # The window is the parties' to use, not a deadline on the center: no warning as it nears its end...
    _at(api, date(2026, 9, 30))
    assert (await _tick(api)).at_risk == 0
    # ...and the day after the last one the guard refuses, and the scheduler records it closed.
    _at(api, date(2026, 10, 9))
    report = await _tick(api)
    assert (report.windows_closed, report.overdue) == (1, 0)
    assert "2026-10-08" in await _window_closed_on(api, dispute)
    assert (await api.get(dispute))["clock"]["level"] == "normal"


async def test_a_withdrawn_confirmation_request_leaves_the_window_ending_where_it_did(api: Api) -> None:
    _at(api, date(2026, 9, 1))
    dispute = await api.drive("agreement_signed")
    assert (await _clocks(api, dispute))["confirmation_window"]["due_on"] == "2026-10-08"
    _at(api, date(2026, 9, 10))
    dispute = await api.step(dispute, "request_confirmation")
    _at(api, date(2026, 9, 20))
    dispute = await api.step(dispute, "withdraw_confirmation")
    assert dispute["status"] == "agreement_signed"
    # Back in the stage, the window still runs from the agreement's taking effect: no fresh thirty
    # days from the withdrawal (民事诉讼法 Art. 205).
    window = (await _clocks(api, dispute))["confirmation_window"]
    assert window["due_on"] == "2026-10-08"
    _at(api, date(2026, 10, 9))
    assert (await _tick(api)).windows_closed == 1
    assert "2026-10-08" in await _window_closed_on(api, dispute)


async def test_the_labour_mediation_clock_counts_from_the_first_receipt_across_a_transfer(api: Api) -> None:
    payload = {"commission_id": str(api.bodies["labour_commission"])}
    _at(api, date(2026, 11, 2))
    dispute = await api.drive("mediating", category="labour", description="工人追讨工资, 申请调解。")
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["rule_id"], clock["due_on"]) == ("mediation.labour", "2026-11-17")
    _at(api, date(2026, 11, 12))
    dispute = await api.step(dispute, "transfer", {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    dispute = await api.step(dispute, "sign_for")
    # 劳动争议调解仲裁法 Art. 14: fifteen days from the first receipt; the second body's sign-for
    # starts none anew, and the clock ends where the arbitration guard opens the way.
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-11-17"
    _at(api, date(2026, 11, 17))
    refused = _refusals(await api.act(dispute, "refer_arbitration", payload))
    assert "2026-11-17" in refused["labour_window_open"]["message"]
    _at(api, date(2026, 11, 18))
    assert (await _tick(api)).overdue == 1
    dispute = await api.get(dispute)
    assert (await api.step(dispute, "refer_arbitration", payload))["status"] == "referred_arbitration"


async def test_a_labour_mediation_period_reported_overdue_is_not_reported_again_after_a_transfer(
    api: Api,
) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("mediating", category="labour", description="工人追讨工资, 申请调解。")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-06-16"
    _at(api, date(2026, 6, 20))
    assert (await _tick(api)).overdue == 1
    dispute = await api.step(await api.get(dispute), "transfer", {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    dispute = await api.step(dispute, "sign_for")
    # 劳动争议调解仲裁法 Art. 14: the second body's clock counts from the first receipt too, and so
    # is over already: the same fifteen days, ended on the same day, reported overdue once.
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["due_on"], clock["level"]) == ("2026-06-16", "overdue")
    assert (await api.get(dispute))["clock"]["level"] == "overdue"
    assert (await _tick(api)).overdue == 0
    _at(api, date(2026, 6, 22))
    assert (await _tick(api)).overdue == 0
    reports = [e for e in await api.timeline(dispute) if e["action"] == "clock_overdue"]
    assert [e["payload"]["due_on"] for e in reports] == ["2026-06-16"]
    assert await _events(api, dispute["id"], "clock_overdue") == 1


async def test_a_peoples_mediation_clock_starts_again_with_the_body_a_case_is_transferred_to(
    api: Api,
) -> None:
    _at(api, date(2026, 11, 2))
    dispute = await api.drive("mediating")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-12-02"
    _at(api, date(2026, 11, 12))
    dispute = await api.step(dispute, "transfer", {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    dispute = await api.step(dispute, "sign_for")
    # The new body has its month (人民调解工作若干规定 Art. 33): 12 December is a Saturday.
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-12-14"


def test_a_rule_file_may_not_count_a_clock_from_a_day_that_is_not_its_own() -> None:
    shipped = shipped_rules()
    others = [r for r in shipped if r["id"] != "confirmation_window"]
    window = CONFIRMATION_WINDOW_RULE
    with pytest.raises(ValidationError, match="counts from the agreement taking effect"):
        parse(json.dumps({"rules": [*others, {**window, "counts_from": "entry"}]}))
    sign_for = {
        "id": "sign_for.first_receipt",
        "clock": "sign_for",
        "length": 3,
        "unit": "working_days",
        "counts_from": "first_receipt",
        "source": "中心工作规范",
    }
    with pytest.raises(ValidationError, match="cannot count from first_receipt"):
        parse(json.dumps({"rules": [*shipped, sign_for]}))
    # A center's own file need not say it: the window counts from the agreement's taking effect.
    parsed = parse(json.dumps({"rules": [*others, window]}))
    rule = next(r for r in parsed.rules if r.id == "confirmation_window")
    assert rule.starts == "agreement_effective"
