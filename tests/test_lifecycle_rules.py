"""Lifecycle rules on who mediates, who may be mediated, where a labour agreement goes, and what a
reader without pii:read sees of links and owners."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from mediation.events.models import OutboxEvent
from tests.support import Api, person, resident_id

VIOLENT = "因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。"
PHONE, ID_NUMBER = "13812345678", "330681199005170016"


def _reasons(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/guard-failed"
    return {r["code"]: r for r in problem["reasons"]}


async def _refuse(api: Api, dispute: dict[str, Any], role: str = "respondent") -> dict[str, Any]:
    party = next(p for p in dispute["parties"] if p["role"] == role)
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent",
        json={"decision": "refused", "note": "被申请人明确表示不接受调解"},
        headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _declare_conflict(api: Api, mediator: str, body: str, **conflict: Any) -> None:
    response = await api.client.post(
        f"/v1/bodies/{body}/mediators/{mediator}/conflicts",
        json=conflict,
        headers=api.auth("body_admin", uuid.UUID(body)),
    )
    assert response.status_code == 201, response.text


async def _actions(api: Api, dispute: dict[str, Any], role: str = "clerk") -> dict[str, dict[str, Any]]:
    response = await api.client.get(
        f"/v1/disputes/{dispute['id']}/actions", headers=api.acting(role, dispute)
    )
    assert response.status_code == 200, response.text
    return {a["action"]: a for a in response.json()}


# ---- the mediator steps aside (特邀调解规定 Art. 16) -----------------------------------------------


async def test_a_mediator_who_declares_a_conflict_after_being_named_cannot_record_the_agreement(
    api: Api,
) -> None:
    dispute = await api.drive("mediating")
    body, mediator = dispute["body_id"], dispute["mediator_id"]
    await api.signed_agreement(dispute)
    await _declare_conflict(api, mediator, body, relation="申请人的表兄", dispute_id=dispute["id"])

    before = await api.get(dispute)
    refused = _reasons(await api.act(before, "agree"))
    assert set(refused) == {"mediator_conflict"}
    assert "申请人的表兄" in refused["mediator_conflict"]["message"]
    assert refused["mediator_conflict"]["article"] == "特邀调解规定 第十六条"
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == ("mediating", before["version"])
    assert await api.timeline_count(dispute["id"]) == before["version"]

    # Still open to the body: naming another mediator, or ending the mediation.
    actions = await _actions(api, after, "body_mediator")
    assert {"agree", "fail", "transfer"} <= actions.keys()


async def test_a_mediator_who_declared_a_conflict_does_not_sign_the_agreement(api: Api) -> None:
    # 特邀调解规定 Art. 16: the signature would make the agreement take effect (人民调解法 Art. 29).
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    await _declare_conflict(
        api, dispute["mediator_id"], dispute["body_id"], relation="申请人的表兄", dispute_id=dispute["id"]
    )
    refused = await api.sign(dispute, draft, signer="mediator", method="in_person")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "mediator_conflict"
    assert "申请人的表兄" in refused.json()["detail"]
    listed = await api.client.get(
        f"/v1/disputes/{dispute['id']}/agreements/{draft['id']}", headers=api.acting("body_mediator", dispute)
    )
    assert [s for s in listed.json()["signatures"] if s["signer"] == "mediator"] == []


async def test_another_bodys_mediator_is_no_mediator_of_this_body_and_nothing_of_it_is_told(
    api: Api,
) -> None:
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    stranger = str(api.mediators[api.bodies["village"]])
    await _declare_conflict(api, stranger, village, relation="申请人张三的表兄", id_number=resident_id(1))
    dispute = await api.intake()
    dispute = await api.step(dispute, "accept")
    dispute = await api.step(dispute, "assign", {"body_id": town, "override_reason": "由镇调委会调解"})

    refused = await api.act(dispute, "sign_for", {"mediator_id": stranger})
    reasons = _reasons(refused)
    assert set(reasons) == {"mediator_not_in_body"}
    name = "枫源村人民调解委员会"[:4] + "调解员"
    assert name not in refused.text and "表兄" not in refused.text
    assert reasons["mediator_not_in_body"]["message"] == "本组织没有这名调解员"

    dispute = await api.step(dispute, "sign_for")
    named = await api.client.put(
        f"/v1/disputes/{dispute['id']}/mediator",
        json={"mediator_id": stranger},
        headers={**api.auth("body_admin", "town"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert set(_reasons(named)) == {"mediator_not_in_body"}
    assert name not in named.text and "表兄" not in named.text


async def test_a_mediator_with_a_conflict_is_refused_citing_the_recusal_article(api: Api) -> None:
    dispute = await api.drive("assigned")
    body, mediator = dispute["body_id"], str(api.mediators[api.bodies["village"]])
    await _declare_conflict(api, mediator, body, relation="与本案有利害关系", dispute_id=dispute["id"])
    reasons = _reasons(await api.act(dispute, "sign_for"))
    assert reasons["mediator_conflict"]["article"] == "特邀调解规定 第十六条"


def test_the_conflict_guard_cites_the_recusal_article() -> None:
    from mediation.disputes.lifecycle import describe

    articles = {g["name"]: g["article"] for t in describe()["transitions"] for g in t["guards"]}
    assert articles["mediator_without_conflict"] == "特邀调解规定 第十六条"
    assert articles["case_mediator_without_conflict"] == "特邀调解规定 第十六条"


# ---- a party refuses mediation before it begins (人民调解法 Art. 17) ------------------------------


async def test_a_case_a_party_refused_is_not_assigned_and_the_center_ends_it(api: Api) -> None:
    dispute = await _refuse(api, await api.drive("accepted"))
    reasons = _reasons(await api.act(dispute, "assign"))
    assert reasons["party_refused_mediation"]["article"] == "人民调解法 第十七条"

    actions = await _actions(api, dispute)
    assert actions["assign"]["allowed_for_caller"] is False
    assert actions["fail"]["allowed_for_caller"] is True

    # Ended for the refusal, and for nothing else.
    wrong = _reasons(await api.act(dispute, "fail", {"reason_code": "positions_too_far_apart"}, role="clerk"))
    assert set(wrong) == {"ended_for_refusal"}
    assert wrong["ended_for_refusal"]["article"] == "特邀调解规定 第二十六条"
    ended = await api.step(
        dispute, "fail", {"reason_code": "party_refused", "note": "被申请人拒绝调解"}, role="clerk"
    )
    assert ended["status"] == "mediation_failed"
    assert ended["outcome"]["fail"]["reason_code"] == "party_refused"
    entry = (await api.timeline(ended))[-1]
    assert (entry["action"], entry["from_status"], entry["to_status"]) == (
        "fail",
        "accepted",
        "mediation_failed",
    )
    assert (await api.step(ended, "close"))["status"] == "closed"


async def test_a_case_a_party_refused_while_assigned_is_ended_by_the_center(api: Api) -> None:
    dispute = await _refuse(api, await api.drive("assigned"))
    assert "party_refused_mediation" in _reasons(await api.act(dispute, "sign_for"))
    # The body that has not signed for it does not end it: it may return it.
    forbidden = await api.act(dispute, "fail", {"reason_code": "party_refused"}, role="body_mediator")
    assert forbidden.status_code == 403, forbidden.text

    ended = await api.step(dispute, "fail", {"reason_code": "party_refused"}, role="clerk")
    assert ended["status"] == "mediation_failed"
    history = await api.client.get(f"/v1/disputes/{dispute['id']}/assignments")
    assert history.status_code == 200, history.text
    (sending,) = history.json()
    assert (sending["outcome"], sending["signed_for_at"]) == ("party_refused", None)
    assert sending["ended_at"] is not None


async def test_the_center_ends_a_case_before_mediation_only_when_a_refusal_is_recorded(api: Api) -> None:
    dispute = await api.drive("accepted")
    actions = await _actions(api, dispute)
    assert actions["fail"]["allowed_for_caller"] is False
    assert [b["code"] for b in actions["fail"]["blocked_by"]] == ["no_refusal_recorded"]
    reasons = _reasons(await api.act(dispute, "fail", {"reason_code": "party_refused"}, role="clerk"))
    assert set(reasons) == {"no_refusal_recorded"}
    assert (await api.get(dispute))["version"] == dispute["version"]


# ---- a labour agreement goes to court only when not performed (劳动争议调解仲裁法 Art. 16) -------


async def test_a_labour_agreement_goes_to_court_only_once_not_performed_in_time(api: Api) -> None:
    dispute = await api.drive("agreement_signed", category="labour", description="拖欠工资三个月, 申请调解。")
    reasons = _reasons(await api.act(dispute, "refer_litigation"))
    assert reasons["agreement_not_breached"]["article"] == "劳动争议调解仲裁法 第十六条"
    assert (await api.get(dispute))["status"] == "agreement_signed"
    api.app.state.clock.at += timedelta(days=16)  # the obligation was due in 15 days
    assert (await api.step(dispute, "refer_litigation"))["status"] == "referred_litigation"


async def test_any_other_agreement_still_goes_to_court_at_once(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    assert (await api.step(dispute, "refer_litigation"))["status"] == "referred_litigation"


# ---- citations --------------------------------------------------------------------------------


async def test_an_accepted_confirmation_request_is_ruled_on_citing_article_355(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    reasons = _reasons(await api.act(dispute, "not_accept"))
    article = reasons["already_accepted"]["article"]
    assert "民诉法解释 第三百五十五条" in article and "第三百五十七条" not in article


# ---- what readers without pii:read see -----------------------------------------------------------


async def test_link_notes_are_masked_for_readers_without_pii_read(api: Api) -> None:
    first = await api.intake()
    second = await api.intake(parties=[person("applicant", "王五", 11), person("respondent", "赵六", 12)])
    note = f"同一纠纷, 申请人电话{PHONE}, 身份证{ID_NUMBER}"
    linked = await api.client.post(
        f"/v1/disputes/{first['id']}/links",
        json={"dispute_id": second["id"], "note": note},
        headers=api.auth("supervisor"),
    )
    assert linked.status_code == 201, linked.text
    assert PHONE not in linked.text and ID_NUMBER not in linked.text

    masked = await api.client.get(f"/v1/disputes/{first['id']}/links", headers=api.auth("supervisor"))
    assert masked.status_code == 200, masked.text
    (link,) = masked.json()
    assert PHONE not in link["note"] and ID_NUMBER not in link["note"]
    assert link["note"].startswith("同一纠纷, 申请人电话")
    clear = await api.client.get(f"/v1/disputes/{second['id']}/links", headers=api.auth("clerk"))
    assert clear.json()[0]["note"] == note


async def test_the_case_owner_is_masked_for_readers_without_pii_read(api: Api) -> None:
    dispute = await api.drive("mediating")
    owned = await api.client.put(
        f"/v1/disputes/{dispute['id']}/owner",
        json={"name": "王副书记", "title": f"镇党委副书记(电话{PHONE})", "reason": "涉及多户, 由镇领导包案"},
        headers={**api.auth("supervisor"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert owned.status_code == 200, owned.text
    assert PHONE not in owned.text
    assert owned.json()["owner"]["name"] == "王副书记"
    read = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth("supervisor"))
    assert PHONE not in read.json()["owner"]["title"]
    assert (await api.get(dispute))["owner"]["title"] == f"镇党委副书记(电话{PHONE})"


# ---- a risk flag stays until its alert is resolved (人民调解法 Art. 25) ---------------------------


async def _risk_listed(api: Api) -> list[str]:
    listed = await api.client.get(
        "/v1/disputes", params={"attention": "risk"}, headers=api.auth("supervisor")
    )
    assert listed.status_code == 200, listed.text
    return [d["id"] for d in listed.json()["items"]]


async def test_assigning_a_risk_case_keeps_its_risk_flag(api: Api) -> None:
    dispute = await api.intake(description=VIOLENT)
    assert dispute["attention"] == "risk"
    dispute = await api.step(await api.step(dispute, "accept"), "assign")
    assert dispute["attention"] == "risk"
    assert dispute["id"] in await _risk_listed(api)


async def test_a_risk_case_no_body_is_left_for_keeps_its_risk_flag(api: Api) -> None:
    """The supervisor still hears that triage is exhausted (its event), but the case stays listed
    under the risk it was flagged for."""
    dispute = await api.step(await api.intake(description=VIOLENT), "accept")
    dispute = await api.step(await api.step(dispute, "assign"), "return")
    assert dispute["status"] == "accepted"
    triage = await api.client.get(f"/v1/disputes/{dispute['id']}/triage")
    assert triage.json()["recommendations"] == []
    assert dispute["attention"] == "risk"
    assert dispute["id"] in await _risk_listed(api)
    async with api.app.state.db.reader() as session:
        exhausted = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.dispute_id == uuid.UUID(dispute["id"]),
                OutboxEvent.type == "cn.mediation.dispute.triage_exhausted",
            )
        )
    assert exhausted == 1
