"""更正登记信息, continued: facts corrected to words of violence, self-harm or gathering raise the
risk alert intake would raise (人民调解法 Art. 25)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from mediation.alerts.models import Alert
from tests.support import Api
from tests.test_corrections import correct, correction_form, events_of, unchanged_after
from tests.test_web import signed_in

CALM = "相邻双方因院墙滴水发生争执, 申请调解。"
THREAT = "相邻双方因院墙滴水发生争执, 被申请人扬言要拿刀砍死对方。"


async def alerts_of(api: Api, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/alerts", headers=api.auth("supervisor"))
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()
    return alerts


async def resolve(api: Api, alert: dict[str, Any]) -> None:
    response = await api.client.post(
        f"/v1/alerts/{alert['id']}/resolution",
        json={"resolution": "已通报派出所, 民警到场调处, 双方情绪平稳"},
        headers={**api.auth("supervisor"), "If-Match": f'"{alert["version"]}"'},
    )
    assert response.status_code == 200, response.text


async def risk_alert_count(api: Api) -> int:
    async with api.app.state.db.reader() as session:
        return len((await session.scalars(select(Alert.id).where(Alert.kind == "risk"))).all())


def facts(dispute: dict[str, Any], description: str) -> dict[str, Any]:
    return {"reason": "登记时事实记录不全, 补充当事人陈述", "description": description}


# ---- a correction read for risk words -------------------------------------------------------------


async def test_facts_corrected_to_a_threat_raise_the_risk_alert_intake_would(api: Api) -> None:
    dispute = await api.intake(description=CALM)
    assert (dispute["is_risk"], dispute["attention"]) == (False, None)
    events_before = await api.outbox_count(dispute["id"])
    response = await correct(api, dispute, facts(dispute, THREAT))
    assert response.status_code == 200, response.text
    corrected = response.json()
    # The case is flagged at once, as at intake: it waits for a supervisor.
    assert (corrected["is_risk"], corrected["attention"]) == (True, "risk")
    # The correction and the alert each made their version; the answer is the case as it now is.
    assert corrected["version"] == dispute["version"] + 2
    assert response.headers["ETag"] == f'"{corrected["version"]}"'
    assert await api.get(dispute) == {k: corrected[k] for k in await api.get(dispute)}
    [alert] = await alerts_of(api, dispute)
    assert (alert["kind"], alert["level"], alert["status"]) == ("risk", "immediate", "open")
    assert alert["details"]["source"] == "correction"
    assert alert["details"]["kinds"] == ["violence"]
    assert {"拿刀", "砍死"} <= set(alert["details"]["words"])
    assert "第二十五条" in alert["details"]["advice"]
    assert dispute["case_number"] in alert["title"] and "暴力威胁" in alert["title"]
    # On the timeline after the correction, and in the feed, as intake's alert is.
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline[-2:]] == ["correct", "alert_raised"]
    assert timeline[-1]["payload"]["alert_id"] == alert["id"]
    assert await api.outbox_count(dispute["id"]) == events_before + 2
    [event] = await events_of(api, dispute, "alert_raised")
    assert (event.data["alert_id"], event.data["kind"]) == (alert["id"], "risk")
    # Supervisors see it among the alerts.
    listed = await api.client.get("/v1/alerts", params={"kind": "risk"}, headers=api.auth("supervisor"))
    assert [a["id"] for a in listed.json()["items"]] == [alert["id"]]


async def test_facts_corrected_without_new_risk_words_raise_no_second_alert(api: Api) -> None:
    dispute = await api.intake(description=THREAT)
    [alert] = await alerts_of(api, dispute)
    await resolve(api, alert)
    dispute = await api.get(dispute)
    # The same threat, told more fully: its words were alerted on and the alert handled.
    again = "相邻双方因院墙滴水发生争执, 被申请人当场扬言要拿刀砍死对方, 已由村干部劝开。"
    response = await correct(api, dispute, facts(dispute, again))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == dispute["version"] + 1
    assert [a["status"] for a in await alerts_of(api, dispute)] == ["resolved"]
    assert [e["action"] for e in await api.timeline(dispute)].count("alert_raised") == 1
    # A threat denied is no new word either.
    denied = f"{again} 申请人称不会跳楼。"
    dispute = await api.get(dispute)
    assert (await correct(api, dispute, facts(dispute, denied))).status_code == 200
    assert await risk_alert_count(api) == 1
    # A new threat is: a new alert, since the one on the old words was resolved.
    dispute = await api.get(dispute)
    response = await correct(api, dispute, facts(dispute, f"{again} 申请人称再不解决就跳楼。"))
    assert response.status_code == 200, response.text
    assert response.json()["attention"] == "risk"
    alerts = await alerts_of(api, dispute)
    assert sorted(a["status"] for a in alerts) == ["open", "resolved"]
    [raised] = [a for a in alerts if a["status"] == "open"]
    assert (raised["details"]["source"], raised["details"]["kinds"]) == (
        "correction",
        ["self_harm", "violence"],
    )
    assert [e["action"] for e in await api.timeline(dispute)].count("alert_raised") == 2


async def test_a_new_threat_joins_the_open_risk_alert_of_the_case(api: Api) -> None:
    dispute = await api.intake(description=THREAT)
    [alert] = await alerts_of(api, dispute)
    response = await correct(api, dispute, facts(dispute, f"{THREAT} 申请人称要组织村民堵路。"))
    assert response.status_code == 200, response.text
    # One alert on the case, which now names the new words too; not a second one.
    [joined] = await alerts_of(api, dispute)
    assert joined["id"] == alert["id"] and joined["case_count"] == 1
    assert joined["details"]["kinds"] == ["gathering", "violence"]
    assert {"堵路", "拿刀"} <= set(joined["details"]["words"])
    assert joined["details"]["source"] == "correction"
    assert await risk_alert_count(api) == 1


async def test_a_refused_correction_raises_no_alert(api: Api) -> None:
    dispute = await api.intake(description=CALM)
    body = {**facts(dispute, THREAT), "parties": [{"party_id": str(uuid.uuid4()), "phone": "13900001234"}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert problem["errors"][0]["code"] == "not_a_party"
    assert await alerts_of(api, dispute) == [] and await risk_alert_count(api) == 0


async def test_the_case_page_correcting_facts_to_a_threat_shows_the_alert(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(description=CALM)
    page = signed_in(web, api)
    form = correction_form(dispute, {"description": THREAT}, reason="补充当事人陈述")
    done = await page.post(f"/cases/{dispute['id']}/corrections", form, follow_redirects=True)
    assert done.status_code == 200 and "已更正登记信息" in done.text, done.text[:2000]
    assert "风险预警" in done.text
    [alert] = await alerts_of(api, dispute)
    assert alert["details"]["source"] == "correction"
