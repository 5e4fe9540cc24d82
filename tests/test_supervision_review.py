"""Supervision orders (督办) and early warning at the edges of a case's life: a case that ends
while an order on it is open or overdue."""

from __future__ import annotations

from datetime import date

from tests.support import Api, at_beijing
from tests.test_supervision_and_warning import _answer, _if_match, _order, _orders, _tick


async def test_a_case_closed_with_an_overdue_order_no_longer_waits_for_a_supervisor(api: Api) -> None:
    # The order went unanswered past its day and was escalated; then the party withdrew and the
    # case was closed. Nothing is left to supervise: the closed case leaves the supervisors' list
    # (it is not escalated either, had the order still been waiting: CASE_OPEN).
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    withdrawn = await api.step(await api.get(dispute), "withdraw")
    # Withdrawn, the case still waits for the body to close it: the flag holds until then.
    assert withdrawn["attention"] == "supervision_overdue"
    closed = await api.step(withdrawn, "close")
    assert (closed["status"], closed["attention"]) == ("closed", None)
    flagged = await api.client.get(
        "/v1/disputes", params={"attention": "supervision_overdue"}, headers=api.auth("supervisor")
    )
    assert flagged.status_code == 200, flagged.text
    assert dispute["id"] not in {d["id"] for d in flagged.json()["items"]}
    # The late answer is still taken, for the record, and flags nothing.
    current = (await _orders(api, api.auth("supervisor"), dispute))[order["id"]]
    answered = await _answer(api, current, "village")
    assert answered.status_code == 200, answered.text
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
