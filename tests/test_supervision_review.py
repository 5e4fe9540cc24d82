"""Supervision orders (督办) and early warning at the edges of a case's life: a case that ends
while an order on it is open or overdue."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.support import Api, at_beijing
from tests.test_deadlines import _at
from tests.test_holiday_calendar import SCHEDULE, _load
from tests.test_supervision_and_warning import _answer, _if_match, _order, _orders, _tick


async def test_a_case_closed_with_an_overdue_order_no_longer_waits_for_a_supervisor(api: Api) -> None:
    # The order went unanswered past its day and was escalated; then the party withdrew and the
    # case was closed. Nothing is left to supervise once the party withdrew (人民调解法 Art. 23):
    # the order lapses with the case, and the case leaves the supervisors' list.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    withdrawn = await api.step(await api.get(dispute), "withdraw")
    assert withdrawn["attention"] is None
    closed = await api.step(withdrawn, "close")
    assert (closed["status"], closed["attention"]) == ("closed", None)
    flagged = await api.client.get(
        "/v1/disputes", params={"attention": "supervision_overdue"}, headers=api.auth("supervisor")
    )
    assert flagged.status_code == 200, flagged.text
    assert dispute["id"] not in {d["id"] for d in flagged.json()["items"]}
    # A late answer is not taken: the order closed with the case.
    current = (await _orders(api, api.auth("supervisor"), dispute))[order["id"]]
    assert current["status"] == "lapsed"
    answered = await _answer(api, current, "village")
    assert answered.status_code == 409, answered.text
    assert (await api.get(dispute))["attention"] is None


async def test_a_closed_cases_resolved_risk_does_not_bring_back_its_overdue_order(api: Api) -> None:
    # A risk stays flagged after the case ends (人民调解法 Art. 25: the danger is not over with the
    # case); once its alert is resolved, the overdue order on the closed case does not take its place.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.intake(is_risk=True, description="被申请人是公安移交的打架案当事人, 双方情绪激动。")
    for action in ("accept", "assign", "sign_for"):
        dispute = await api.step(dispute, action)
    assert dispute["attention"] == "risk"
    await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    closed = await api.step(await api.step(await api.get(dispute), "withdraw"), "close")
    assert (closed["status"], closed["attention"]) == ("closed", "risk")
    (alert,) = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts")).json()
    resolved = await api.client.post(
        f"/v1/alerts/{alert['id']}/resolution",
        json={"resolution": "已会同派出所回访, 双方情绪平稳"},
        headers={**api.auth("supervisor"), **_if_match(alert)},
    )
    assert resolved.status_code == 200, resolved.text
    assert (await api.get(dispute))["attention"] is None


async def _no_body_left(api: Api) -> dict[str, Any]:
    """A case the only body it was sent to returned, with no other to take it: it waits for a
    supervisor to decide (triage_exhausted)."""
    dispute = await api.step(await api.intake(category="medical"), "accept")
    town = {"body_id": str(api.bodies["town"]), "override_reason": "暂由镇调委会先行调处"}
    dispute = await api.step(await api.step(dispute, "assign", town), "return")
    assert (dispute["status"], dispute["attention"]) == ("accepted", "triage_exhausted")
    return dispute


async def _flagged(api: Api, reason: str) -> set[str]:
    listed = await api.client.get(
        "/v1/disputes", params={"attention": reason}, headers=api.auth("supervisor")
    )
    assert listed.status_code == 200, listed.text
    return {d["id"] for d in listed.json()["items"]}


async def test_a_case_withdrawn_while_no_body_was_left_no_longer_waits_for_one(api: Api) -> None:
    # The party ends it (人民调解法 Art. 23) while the supervisor looks for a body: no body is
    # needed any more, withdrawn or once closed.
    dispute = await _no_body_left(api)
    withdrawn = await api.step(dispute, "withdraw", role="clerk")
    assert (withdrawn["status"], withdrawn["attention"]) == ("withdrawn", None)
    assert dispute["id"] not in await _flagged(api, "triage_exhausted")
    closed = await api.step(withdrawn, "close")
    assert (closed["status"], closed["attention"]) == ("closed", None)


async def test_a_case_a_party_refused_while_no_body_was_left_no_longer_waits_for_one(api: Api) -> None:
    # A party refuses mediation (人民调解法 Art. 17): the center ends the case; no body is sought.
    dispute = await _no_body_left(api)
    respondent = next(p for p in dispute["parties"] if p["role"] == "respondent")
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/parties/{respondent['id']}/consent",
        json={"decision": "refused"},
        headers=api.headers("clerk", **_if_match(dispute)),
    )
    assert refused.status_code == 200, refused.text
    ended = await api.step(await api.get(dispute), "fail", {"reason_code": "party_refused"}, role="clerk")
    assert (ended["status"], ended["attention"]) == ("mediation_failed", None)
    assert dispute["id"] not in await _flagged(api, "triage_exhausted")


async def test_a_case_withdrawn_with_no_body_left_and_an_overdue_order_shows_neither(api: Api) -> None:
    # Two reasons held; the withdrawal ends both: the search for a body, and the order, which
    # lapses with the case.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.step(await api.intake(category="medical"), "accept")
    town = str(api.bodies["town"])
    dispute = await api.step(dispute, "assign", {"body_id": town, "override_reason": "暂由镇调委会先行调处"})
    await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    dispute = await api.step(await api.get(dispute), "return")
    assert dispute["attention"] == "triage_exhausted"
    withdrawn = await api.step(dispute, "withdraw", role="clerk")
    assert withdrawn["attention"] is None
    assert (await api.step(withdrawn, "close"))["attention"] is None


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_an_order_on_a_closed_case_is_not_counted_again_when_the_holidays_come(api: Api) -> None:
    # Issued on Tuesday 2 February 2027 with the default three working days, counted on weekends
    # and the statutory holidays only (2027's schedule not known yet): 3, 4 and 9 February; the
    # schedule would take the 9th off. The case ends before the schedule is loaded: the order is no
    # longer supervised, so it is not counted again, and nothing is written about it on the case.
    _at(api, date(2027, 2, 2))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute)
    assert (order["due_on"], order["provisional"]) == ("2027-02-09", True)
    await api.step(await api.step(await api.get(dispute), "withdraw"), "close")
    assert (await _load(api, SCHEDULE)).status_code == 200
    report = await _tick(api)
    assert (report.orders_recounted, report.failed) == (0, 0)
    kept = await api.client.get(f"/v1/supervision-orders/{order['id']}", headers=api.auth("supervisor"))
    assert (kept.json()["status"], kept.json()["due_on"]) == ("lapsed", "2027-02-09")
    # The case's own follow-up visit is counted again (its visit is still to be made); the order not.
    assert "clock_recounted" not in {
        e["action"] for e in await api.timeline(dispute) if e["payload"].get("order_id") == order["id"]
    }
