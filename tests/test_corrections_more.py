"""更正登记信息, continued: facts corrected to words of violence, self-harm or gathering raise the
risk alert intake would raise (人民调解法 Art. 25), and a party's optional details that were wrong
are cleared with null rather than only replaced (个人信息保护法 Art. 46), on the API and the case
page alike."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from mediation.alerts.models import Alert
from tests.support import Api, person
from tests.test_corrections import correct, correction_form, events_of, party, search, unchanged_after
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


# ---- clearing a party's optional details -----------------------------------------------------------


async def test_a_wrong_phone_address_and_domicile_are_cleared_with_null(api: Api) -> None:
    respondent_in = {**person("respondent", "李四", 2), "region_code": "330681105000"}
    dispute = await api.intake(parties=[person("applicant", "张三", 1), respondent_in])
    respondent = party(dispute, "respondent")
    assert await search(api, phone=respondent["phone"]) == [dispute["id"]]
    body = {
        "reason": "被申请人电话为空号, 地址系他人住址, 住所地待核实",
        "parties": [{"party_id": respondent["id"], "phone": None, "address": None, "region_code": None}],
    }
    response = await correct(api, dispute, body)
    assert response.status_code == 200, response.text
    cleared = party(response.json(), "respondent")
    assert (cleared["phone"], cleared["address"], cleared["region_code"]) == (None, None, None)
    assert (cleared["name"], cleared["id_number"]) == (respondent["name"], respondent["id_number"])
    assert party(await api.get(dispute), "respondent") == cleared
    # The old number no longer finds the case: it is gone from the keyed index too.
    assert await search(api, phone=respondent["phone"]) == []
    # The timeline and the event name the cleared fields as they name changed ones.
    expected = [{"party_id": respondent["id"], "fields": ["address", "phone", "region_code"]}]
    entry = (await api.timeline(dispute))[-1]
    assert (entry["action"], entry["payload"]["parties"]) == ("correct", expected)
    [event] = await events_of(api, dispute, "corrected")
    assert event.data["parties"] == expected


async def test_a_wrong_document_number_is_cleared_and_its_type_with_it_or_not(api: Api) -> None:
    dispute = await api.intake()
    applicant, respondent = party(dispute, "applicant"), party(dispute, "respondent")
    body = {
        "reason": "证件号码系他人号码, 待当事人到场核实",
        "parties": [
            {"party_id": applicant["id"], "id_number": None},
            {"party_id": respondent["id"], "id_type": None, "id_number": None},
        ],
    }
    response = await correct(api, dispute, body)
    assert response.status_code == 200, response.text
    fixed = response.json()
    assert (party(fixed, "applicant")["id_type"], party(fixed, "applicant")["id_number"]) == (
        "resident_id",
        None,
    )
    assert (party(fixed, "respondent")["id_type"], party(fixed, "respondent")["id_number"]) == (None, None)
    assert await search(api, id_number=applicant["id_number"]) == []
    assert await search(api, id_number=respondent["id_number"]) == []
    assert (await api.timeline(dispute))[-1]["payload"]["parties"] == [
        {"party_id": applicant["id"], "fields": ["id_number"]},
        {"party_id": respondent["id"], "fields": ["id_number", "id_type"]},
    ]
    # The party can be given a number again later.
    dispute = await api.get(dispute)
    again = {
        "reason": "当事人到场核实证件",
        "parties": [
            {"party_id": applicant["id"], "id_type": "resident_id", "id_number": applicant["id_number"]}
        ],
    }
    response = await correct(api, dispute, again)
    assert response.status_code == 200, response.text
    assert await search(api, id_number=applicant["id_number"]) == [dispute["id"]]


async def test_a_document_type_is_not_cleared_from_under_its_number(api: Api) -> None:
    dispute = await api.intake()
    applicant = party(dispute, "applicant")
    body = {"reason": "证件类型有误", "parties": [{"party_id": applicant["id"], "id_type": None}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert [(e["code"], e["field"]) for e in problem["errors"]] == [
        ("id_number_missing", "parties[0].id_number")
    ]


async def test_a_name_or_the_facts_are_never_cleared(api: Api) -> None:
    dispute = await api.intake()
    applicant = party(dispute, "applicant")
    body = {"reason": "删除姓名", "parties": [{"party_id": applicant["id"], "name": None, "phone": None}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert [(e["code"], e["field"]) for e in problem["errors"]] == [("null_not_allowed", "parties[0].name")]
    assert "不能清空" in problem["errors"][0]["message"]
    body = {
        "reason": "删除事实",
        "description": None,
        "parties": [{"party_id": applicant["id"], "phone": None}],
    }
    response = await correct(api, dispute, body, **{"Accept-Language": "en"})
    problem = await unchanged_after(api, dispute, response, 422)
    assert [(e["code"], e["field"]) for e in problem["errors"]] == [("null_not_allowed", "description")]
    assert "cannot be cleared" in problem["errors"][0]["message"]


async def test_clearing_what_is_empty_already_corrects_nothing(api: Api) -> None:
    applicant_in = {k: v for k, v in person("applicant", "张三", 1).items() if k not in ("phone", "address")}
    dispute = await api.intake(parties=[applicant_in, person("respondent", "李四", 2)])
    applicant = party(dispute, "applicant")
    body = {"reason": "核对", "parties": [{"party_id": applicant["id"], "phone": None, "address": None}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert [e["code"] for e in problem["errors"]] == ["nothing_to_correct"]
    # Blank text is still no value, as before: it leaves the number as it is.
    respondent = party(dispute, "respondent")
    body = {"reason": "核对", "parties": [{"party_id": respondent["id"], "phone": "", "id_number": ""}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert [e["code"] for e in problem["errors"]] == ["nothing_to_correct"]


async def test_a_party_on_an_agreement_keeps_its_document_number_but_not_its_phone(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    respondent = party(dispute, "respondent")
    body = {"reason": "证件号码有误", "parties": [{"party_id": respondent["id"], "id_number": None}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body, "body_mediator"), 409)
    assert problem["code"] == "party_on_agreement"
    body = {"reason": "电话已停机", "parties": [{"party_id": respondent["id"], "phone": None}]}
    response = await correct(api, dispute, body, "body_mediator")
    assert response.status_code == 200, response.text
    assert party(await api.get(dispute), "respondent")["phone"] is None


# ---- clearing on the case page ---------------------------------------------------------------------


async def test_the_case_page_clears_a_phone_and_address_left_empty(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    respondent = party(dispute, "respondent")
    form = correction_form(
        dispute, {"parties[1].phone": "", "parties[1].address": ""}, reason="电话为空号, 地址有误"
    )
    done = await page.post(f"/cases/{dispute['id']}/corrections", form, follow_redirects=True)
    assert done.status_code == 200 and "已更正登记信息" in done.text, done.text[:2000]
    assert "更正了: 李四的" in done.text
    fixed = party(await api.get(dispute), "respondent")
    assert (fixed["phone"], fixed["address"]) == (None, None)
    assert fixed["id_number"] == respondent["id_number"]
    assert (await api.timeline(dispute))[-1]["payload"]["parties"] == [
        {"party_id": respondent["id"], "fields": ["address", "phone"]}
    ]


async def test_the_case_page_untouched_or_with_a_name_emptied_changes_nothing(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(
        parties=[
            {**person("applicant", "张三", 1), "region_code": "330681105000"},
            person("respondent", "李四", 2),
        ]
    )
    page = signed_in(web, api)
    url = f"/cases/{dispute['id']}/corrections"
    untouched = await page.post(url, correction_form(dispute, {}, reason="核对"))
    assert untouched.status_code == 422 and "没有需要更正的内容" in untouched.text
    emptied = await page.post(url, correction_form(dispute, {"parties[0].name": ""}, reason="删除姓名"))
    assert emptied.status_code == 422, emptied.text[:2000]
    assert 'data-field="parties[0].name"' in emptied.text and "不能清空" in emptied.text
    assert await api.get(dispute) == {k: dispute[k] for k in await api.get(dispute)}


async def test_the_case_page_leaves_a_masked_number_as_it_is(api: Api, web: httpx.AsyncClient) -> None:
    """A supervisor sees the numbers masked, so the form shows them empty: left empty, they stay."""
    dispute = await api.intake()
    page = signed_in(web, api, "supervisor")
    applicant = party(dispute, "applicant")
    form = [
        ("reason", "申请人地址有误"),
        ("parties[0].party_id", applicant["id"]),
        ("parties[0].name", applicant["name"]),
        ("parties[0].id_type", "resident_id"),
        ("parties[0].id_number", ""),
        ("parties[0].phone", ""),
        ("parties[0].address", ""),
        ("version", f'"{dispute["version"]}"'),
        ("idempotency_key", uuid.uuid4().hex),
    ]
    done = await page.post(f"/cases/{dispute['id']}/corrections", form, follow_redirects=True)
    assert done.status_code == 200 and "已更正登记信息" in done.text, done.text[:2000]
    fixed = party(await api.get(dispute), "applicant")
    assert (fixed["phone"], fixed["id_number"], fixed["address"]) == (
        applicant["phone"],
        applicant["id_number"],
        None,
    )
