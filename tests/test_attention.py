"""Why a case waits for a supervisor: the most urgent reason that holds is shown, and when it stops
holding the next one that still does takes its place (disputes.attention)."""

from __future__ import annotations

from datetime import date
from typing import Any

from mediation.clocks.scheduler import tick
from tests.support import Api, at_beijing

VIOLENT = "因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。"


async def _tick(api: Api) -> Any:
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


def _if_match(thing: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{thing["version"]}"'}


async def _listed(api: Api, reason: str) -> list[str]:
    response = await api.client.get(
        "/v1/disputes", params={"attention": reason}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["items"]]


async def _risk_alert(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    alerts = (
        await api.client.get(f"/v1/disputes/{dispute['id']}/alerts", headers=api.auth("supervisor"))
    ).json()
    [alert] = [a for a in alerts if a["kind"] == "risk"]
    return dict(alert)


async def _resolve(api: Api, alert: dict[str, Any]) -> None:
    response = await api.client.post(
        f"/v1/alerts/{alert['id']}/resolution",
        json={"resolution": "已通报派出所, 民警到场调处, 双方情绪平稳"},
        headers={**api.auth("supervisor"), **_if_match(alert)},
    )
    assert response.status_code == 200, response.text


async def _overdue_order(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    """An order to the body mediating `dispute`, issued on 1 June and escalated on 4 June."""
    issued = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请于三日内报告调解进展并约见双方", "due_on": "2026-06-03"},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )
    assert issued.status_code == 201, issued.text
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    assert (await api.get(dispute))["attention"] == "supervision_overdue"
    order = await api.client.get(
        f"/v1/supervision-orders/{issued.json()['id']}", headers=api.auth("supervisor")
    )
    return dict(order.json())


async def _answer(api: Api, dispute: dict[str, Any], order: dict[str, Any]) -> None:
    response = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "已约见双方, 定于下周再次调解"},
        headers={**api.acting("body_mediator", dispute), **_if_match(order)},
    )
    assert response.status_code == 200, response.text


async def _threat_in_the_minutes(api: Api, dispute: dict[str, Any]) -> None:
    """A session whose minutes record a threat: the case is flagged for a risk (人民调解法 Art. 25)."""
    headers = api.acting("body_mediator", dispute)
    scheduled = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": "2026-06-04T09:00:00+08:00", "place": "枫源村调委会调解室"},
        headers=headers,
    )
    assert scheduled.status_code == 201, scheduled.text
    session = scheduled.json()
    minutes = {
        "held_at": "2026-06-04T09:30:00+08:00",
        "attendees": [
            {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in dispute["parties"]
        ],
        "minutes": "调解中被申请人情绪激动, 扬言要拿刀砍死对方, 调解员当即制止。",
        "outcome": "continued",
    }
    recorded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{session['id']}/record",
        json=minutes,
        headers={**headers, **_if_match(session)},
    )
    assert recorded.status_code == 200, recorded.text


async def test_a_risk_resolved_while_no_body_is_left_shows_the_case_as_exhausted(api: Api) -> None:
    dispute = await api.step(await api.intake(description=VIOLENT), "accept")
    dispute = await api.step(await api.step(dispute, "assign"), "return")
    assert (dispute["status"], dispute["body_id"], dispute["attention"]) == ("accepted", None, "risk")
    await _resolve(api, await _risk_alert(api, dispute))
    # The risk is dealt with, but no body is left to take the case: it stays before a supervisor.
    current = await api.get(dispute)
    assert current["attention"] == "triage_exhausted"
    assert dispute["id"] in await _listed(api, "triage_exhausted")
    assert dispute["id"] not in await _listed(api, "risk")
    # A supervisor sends it on: nothing is left waiting.
    assign = {"body_id": str(api.bodies["town"]), "override_reason": "由镇调委会调处"}
    assert (await api.step(current, "assign", assign))["attention"] is None


async def test_a_risk_resolved_while_a_body_holds_the_case_leaves_nothing(api: Api) -> None:
    dispute = await api.step(await api.step(await api.intake(description=VIOLENT), "accept"), "assign")
    await _resolve(api, await _risk_alert(api, dispute))
    assert (await api.get(dispute))["attention"] is None


async def _overdue_order_then_threat(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case in mediation whose order went unanswered past its day, then a threat in the minutes."""
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _overdue_order(api, dispute)
    await _threat_in_the_minutes(api, dispute)
    return dispute, order


async def test_a_risk_outranks_an_overdue_order_and_outlasts_its_answer(api: Api) -> None:
    dispute, order = await _overdue_order_then_threat(api)
    assert (await api.get(dispute))["attention"] == "risk"
    assert dispute["id"] in await _listed(api, "risk")
    # The body answers the order late: the threat still waits for a supervisor.
    await _answer(api, dispute, order)
    assert (await api.get(dispute))["attention"] == "risk"
    await _resolve(api, await _risk_alert(api, dispute))
    assert (await api.get(dispute))["attention"] is None


async def test_an_overdue_order_shows_again_once_the_risk_is_resolved(api: Api) -> None:
    dispute, order = await _overdue_order_then_threat(api)
    await _resolve(api, await _risk_alert(api, dispute))
    # The order is still unanswered past its day.
    assert (await api.get(dispute))["attention"] == "supervision_overdue"
    assert dispute["id"] in await _listed(api, "supervision_overdue")
    await _answer(api, dispute, order)
    assert (await api.get(dispute))["attention"] is None
