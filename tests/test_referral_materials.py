"""A referral's dossier tells the commission or court what its own application needs.

An arbitration or a suit is a new claim: its application names the other side, states the claims
with the facts and reasons, and brings the evidence (劳动争议调解仲裁法 Art. 28; 仲裁法 Art. 21-23;
农村土地承包经营纠纷调解仲裁法 Art. 20-21; 民事诉讼法 Art. 122, 124); a commercial arbitration
needs the arbitration agreement (仲裁法 Art. 4, 16). A judicial confirmation's checklist (the
agreement, identity documents; 民诉法解释 Art. 354) is no condition there. The referral letter
carries the claims (仲裁请求) when the center records them, and the filing pack reminds the body of
the limitation that applies to it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from mediation.handoffs.materials import mediation_on_record
from tests.support import Api, person
from tests.test_documents import pdf, uploaded
from tests.test_paperwork_labels import page_of

CLAIMS = "请求裁决被申请人支付拖欠工资 12,000 元。"


def items(dossier: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {m["item"]: (m["article"], m["present"]) for m in dossier["materials"]}


async def labour_referral(api: Api, **payload: Any) -> dict[str, Any]:
    dispute = await api.drive("mediation_failed", category="labour")
    body = {"commission_id": str(api.bodies["labour_commission"]), **payload}
    return await api.step(dispute, "refer_arbitration", body)


async def test_a_labour_referral_lists_what_an_arbitration_application_needs(api: Api) -> None:
    dispute = await api.drive("mediating", category="labour")
    await uploaded(api, dispute, pdf(4096, "payslips"), "工资条.pdf", kind="evidence")
    dispute = await api.step(await api.get(dispute), "fail")
    body = {"commission_id": str(api.bodies["labour_commission"]), "claims": CLAIMS}
    dispute = await api.step(dispute, "refer_arbitration", body)
    dossier = await api.handoff(dispute)
    listed = items(dossier)
    assert listed["仲裁请求"] == ("劳动争议调解仲裁法 第二十八条", True)
    assert listed["事实和理由"] == ("劳动争议调解仲裁法 第二十八条", True)
    assert listed["证据材料"] == ("劳动争议调解仲裁法 第二十八条", True)
    assert listed["对方当事人 (被申请人/被告)"][1] is True
    # No phone is asked of the parties to an arbitration.
    assert "原告联系方式" not in listed and "当事人姓名或名称、住所及联系方式" not in listed
    # The court's confirmation checklist is not the commission's.
    assert "调解协议书" not in listed and "当事人身份证明" not in listed and "仲裁协议" not in listed
    pack = dossier["filing_pack"]
    assert pack["claims"] == CLAIMS
    assert "劳动争议调解仲裁法第二十七条" in pack["limitation_note"]
    assert "民法典" not in pack["limitation_note"]
    letter = await page_of(api, dispute, "filing_pack")
    assert f"仲裁请求: {CLAIMS}" in letter and "诉讼请求" not in letter


async def test_a_referral_without_claims_shows_them_missing(api: Api) -> None:
    dossier = await api.handoff(await labour_referral(api))
    listed = items(dossier)
    assert listed["仲裁请求"] == ("劳动争议调解仲裁法 第二十八条", False)
    assert listed["证据材料"][1] is False
    assert dossier["filing_pack"]["claims"] is None


async def test_a_commercial_referral_needs_the_arbitration_agreement(api: Api) -> None:
    dispute = await api.step(await api.drive("mediation_failed"), "refer_arbitration")
    listed = items(await api.handoff(dispute))
    assert listed["仲裁协议"] == ("仲裁法 第四条、第十六条", True)
    assert listed["仲裁请求"] == ("仲裁法 第二十一条、第二十三条", False)
    assert "调解协议书" not in listed


async def test_a_litigation_referral_lists_what_a_complaint_needs(api: Api) -> None:
    dispute = await api.step(await api.drive("mediation_failed"), "refer_litigation")
    dossier = await api.handoff(dispute)
    listed = items(dossier)
    assert listed["诉讼请求"] == ("民事诉讼法 第一百二十二条、第一百二十四条", True)
    assert listed["原告联系方式"] == ("民事诉讼法 第一百二十四条", True)
    assert listed["当事人姓名或名称、住所"][1] is True
    assert "调解协议书" not in listed and "仲裁协议" not in listed
    assert "民法典第一百九十五条" in dossier["filing_pack"]["limitation_note"]
    letter = await page_of(api, dispute, "filing_pack")
    assert "诉讼请求: 请求判令被申请人赔偿损失。" in letter


async def test_a_confirmation_keeps_the_courts_checklist(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    listed = items(await api.handoff(dispute))
    assert listed["调解协议书"] == ("民诉法解释 第三百五十四条", True)
    assert "当事人身份证明" in listed and "诉讼请求" not in listed and "仲裁请求" not in listed


async def test_a_respondent_without_a_phone_misses_nothing_a_referral_needs(api: Api) -> None:
    respondent = {**person("respondent", "李四", 2), "phone": None}
    dispute = await api.drive("mediation_failed", parties=[person("applicant", "张三", 1), respondent])
    dispute = await api.step(dispute, "refer_litigation")
    listed = items(await api.handoff(dispute))
    assert listed["当事人姓名或名称、住所"][1] is True and listed["原告联系方式"][1] is True


def codes(dossier: dict[str, Any]) -> dict[str, bool]:
    return {m["code"]: m["present"] for m in dossier["materials"]}


async def test_a_proof_of_identity_is_a_document_not_a_number_typed_at_intake(api: Api) -> None:
    # Both cases were registered with every party's ID number (民诉法解释 Art. 354: 当事人身份证明).
    typed = await api.drive("confirmation_pending")
    assert codes(await api.handoff(typed))["identity"] is False

    proven = await api.drive("agreement_signed")
    await uploaded(api, proven, pdf(2048, "ids"), "身份证复印件.pdf", kind="identity_document")
    proven = await api.step(await api.get(proven), "request_confirmation")
    listed = await api.handoff(proven)
    assert codes(listed)["identity"] is True
    identity = next(m for m in listed["materials"] if m["code"] == "identity")
    assert (identity["item"], identity["article"]) == ("当事人身份证明", "民诉法解释 第三百五十四条")


async def test_the_mediation_is_proven_by_the_record_of_it(api: Api) -> None:
    # The agreement the mediator signed and the body sealed (人民调解法 Art. 29) proves it.
    dossier = await api.handoff(await api.drive("confirmation_pending"))
    proof = next(m for m in dossier["materials"] if m["code"] == "mediation_proof")
    assert (proof["present"], proof["article"]) == (True, "民诉法解释 第三百五十四条")


class _Sitting:
    def __init__(self, status: str) -> None:
        self.status = status


class _Signature:
    def __init__(self, signer: str) -> None:
        self.signer = signer


class _Agreement:
    def __init__(self, *signers: str) -> None:
        self.signatures = [_Signature(s) for s in signers]


def test_a_case_without_a_record_of_mediation_has_no_proof_of_it() -> None:
    assert not mediation_on_record([], None, {"receipt", "application"})
    assert not mediation_on_record([_Sitting("scheduled"), _Sitting("cancelled")], _Agreement("party"), set())
    assert mediation_on_record([_Sitting("held")], None, set())
    assert mediation_on_record([], None, {"minutes"})
    assert mediation_on_record([], _Agreement("party", "mediator", "body_seal"), set())


async def _confirmation(api: Api, category: str, *, proof: bool) -> dict[str, Any]:
    dispute = await api.drive("agreement_signed", category=category)
    if proof:
        await uploaded(api, dispute, pdf(2048, "deed"), "不动产权证书.pdf", kind="property_proof")
    return await api.handoff(await api.step(await api.get(dispute), "request_confirmation"))


async def test_an_agreement_on_land_or_buildings_goes_with_the_proofs_of_those_rights(api: Api) -> None:
    # 民诉法解释 Art. 354: 与调解协议相关的财产权利证明, a homestead's or a house's certificate.
    without = await _confirmation(api, "housing_homestead", proof=False)
    item = next(m for m in without["materials"] if m["code"] == "property_proof")
    assert (item["item"], item["article"], item["present"]) == (
        "与调解协议相关的财产权利证明",
        "民诉法解释 第三百五十四条",
        False,
    )
    assert codes(await _confirmation(api, "land_forest", proof=True))["property_proof"] is True
    # A neighbours' quarrel settles no right in property: the checklist does not ask for one.
    assert "property_proof" not in codes(await _confirmation(api, "neighbour", proof=False))


async def test_a_court_may_ask_for_property_proofs_by_their_code(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    asked = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/materials-request",
        json={
            "items": ["房屋所有权证复印件"],
            "codes": ["property_proof", "agreement", "identity", "contact_address", "mediation_proof"],
            "due_on": (api.today + timedelta(days=7)).isoformat(),
        },
        headers={
            **api.auth("court", uuid.UUID(handoff["target_id"])),
            "If-Match": f'"{handoff["version"]}"',
        },
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["materials_requests"][0]["codes"][0] == "property_proof"


async def test_confirmation_without_the_agents_power_of_attorney_is_refused_citing_its_rule(api: Api) -> None:
    agent = {"role": "agent", "kind": "person", "name": "赵律师", "phone": "13900000003"}
    dispute = await api.drive(
        "agreement_signed", parties=[person("applicant", "张三", 1), person("respondent", "李四", 2), agent]
    )
    refused = await api.act(await api.get(dispute), "request_confirmation")
    assert refused.status_code == 422, refused.text
    reasons = {r["code"]: r for r in refused.json()["reasons"]}
    # Who applies, and with what authority: 民诉法解释 Art. 351; 法释〔2011〕5号 Art. 3.
    assert (
        reasons["power_of_attorney_missing"]["article"] == "法释〔2011〕5号 第三条; 民诉法解释 第三百五十一条"
    )
    assert (await api.get(dispute))["status"] == "agreement_signed"
