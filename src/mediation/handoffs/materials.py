"""What the court or commission receiving a handoff needs to find in its dossier, by the kind of
handoff: the checklist shown with the dossier (`materials`) and the limitation note of a referral's
filing pack.

A judicial confirmation is applied for with the agreement, proof that a mediation organisation
mediated it and the parties' particulars (民诉法解释 Art. 354; 法释〔2011〕5号 Art. 3). A referral
to arbitration or to a court is a new claim: what its application must state is the other side,
the claims and the facts and reasons with their evidence (劳动争议调解仲裁法 Art. 28; 仲裁法
Art. 21-23; 农村土地承包经营纠纷调解仲裁法 Art. 20-21; 民事诉讼法 Art. 122, 124), and before a
commercial arbitration commission the arbitration agreement (仲裁法 Art. 4, 16). An agreement or an
identity document is no condition there, and listing them as missing would mislead the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mediation.disputes.enums import Category
from mediation.disputes.models import Dispute
from mediation.disputes.schemas import PartyOut
from mediation.handoffs.models import Handoff


@dataclass(frozen=True, slots=True)
class Conditions:
    """The articles a kind of referral's application answers to, by what they require."""

    parties: str  # the parties' particulars, the other side named
    claims: str  # the claims, the facts and reasons
    evidence: str  # the evidence and where it comes from
    agent: str  # a representative's power of attorney
    claims_label: str


REFERRALS: dict[str, Conditions] = {
    "labour_arbitration": Conditions(
        "劳动争议调解仲裁法 第二十八条",
        "劳动争议调解仲裁法 第二十八条",
        "劳动争议调解仲裁法 第二十八条",
        "劳动争议调解仲裁法 第二十四条",
        "仲裁请求",
    ),
    "commercial_arbitration": Conditions(
        "仲裁法 第二十二条、第二十三条",
        "仲裁法 第二十一条、第二十三条",
        "仲裁法 第二十三条",
        "仲裁法 第二十九条",
        "仲裁请求",
    ),
    "rural_land_arbitration": Conditions(
        "农村土地承包经营纠纷调解仲裁法 第二十条、第二十一条",
        "农村土地承包经营纠纷调解仲裁法 第二十条、第二十一条",
        "农村土地承包经营纠纷调解仲裁法 第二十一条",
        "农村土地承包经营纠纷调解仲裁法 第十九条",
        "仲裁请求",
    ),
    "litigation": Conditions(
        "民事诉讼法 第一百二十二条、第一百二十四条",
        "民事诉讼法 第一百二十二条、第一百二十四条",
        "民事诉讼法 第一百二十四条",
        "民事诉讼法 第六十二条",
        "诉讼请求",
    ),
}

# The limitation the receiving body will apply, as the filing pack reminds it: applying for
# mediation interrupted it (民法典 Art. 195 for a suit or a commercial arbitration; for a labour
# arbitration, asking a body for relief interrupts the one-year period, 劳动争议调解仲裁法 Art. 27(2)).
LIMITATION_NOTES = {
    "labour_arbitration": "劳动争议申请仲裁的时效期间为一年; 向有关部门请求权利救济 (申请调解) 中断仲裁时效 "
    "(劳动争议调解仲裁法第二十七条)",
    "rural_land_arbitration": "农村土地承包经营纠纷申请仲裁的时效期间为二年, 自知道或者应当知道其权利被侵害之日起计算 "
    "(农村土地承包经营纠纷调解仲裁法第十八条)",
}
CIVIL_LIMITATION_NOTE = "申请人民调解中断诉讼时效 (民法典第一百九十五条)"


def claims_label(kind: str) -> str:
    """How the kind's application names what is asked: 仲裁请求 or 诉讼请求."""
    conditions = REFERRALS.get(kind)
    return conditions.claims_label if conditions else "请求"


def limitation_note(kind: str) -> str:
    return LIMITATION_NOTES.get(kind, CIVIL_LIMITATION_NOTE)


def _principals(dispute: Dispute) -> list[Any]:
    return [p for p in dispute.parties if p.role != "agent"]


# The court is given the power of attorney of anyone who applies for a party (法释〔2011〕5号 Art. 3),
# an agent as 民事诉讼法 Art. 61 allows (民诉法解释 Art. 351).
CONFIRMATION_POWER_OF_ATTORNEY = "法释〔2011〕5号 第三条; 民诉法解释 第三百五十一条"


def particulars(parties: Sequence[PartyOut]) -> list[dict[str, Any]]:
    """Each party as the court's materials state it (`PartyParticulars`), from the parties as the
    caller reads them: a service address not given is the address, said so (法释〔2011〕5号 Art. 3
    asks for the 送达地址; a party's papers otherwise go to where it lives)."""
    names = {p.id: p.name for p in parties}
    out = []
    for p in parties:
        serve_at, source = (
            (p.service_address, "service_address")
            if p.service_address
            else (p.address, "address")
            if p.address
            else (None, None)
        )
        out.append(
            {
                "party_id": p.id,
                "role": p.role,
                "name": p.name,
                "service_address": serve_at,
                "service_address_source": source,
                "legal_representative": p.legal_representative,
                "acts_for_party_id": p.represents_party_id,
                "acts_for_name": names.get(p.represents_party_id) if p.represents_party_id else None,
            }
        )
    return out


# Disputes whose agreements settle rights in land or buildings (a house or homestead, forest or
# farmland, land taken or buildings pulled down): the court is given the proofs of those rights with
# the agreement (民诉法解释 Art. 354: 与调解协议相关的财产权利证明). Other agreements may touch property
# too; a court asks for them by the code `property_proof` (Art. 356).
PROPERTY_CATEGORIES = frozenset(
    {Category.housing_homestead, Category.land_forest, Category.expropriation_demolition}
)


def mediation_on_record(sittings: Sequence[Any], agreement: Any | None, kinds: set[str]) -> bool:
    """Whether the dossier proves that a mediation organisation mediated the agreement (民诉法解释
    Art. 354: 由调解组织主持调解的证明): a sitting held before it, its minutes handed in, or an
    agreement the mediator signed (人民调解法 Art. 29: signed by the mediator, sealed by the body;
    an oral one recorded by the mediator, Art. 30). A case that merely reached the court has none."""
    return (
        any(s.status == "held" for s in sittings)
        or "minutes" in kinds
        or (agreement is not None and any(sig.signer == "mediator" for sig in agreement.signatures))
    )


def checklist(
    handoff: Handoff, dispute: Dispute, kinds: set[str], *, has_agreement: bool, mediated: bool
) -> list[dict[str, Any]]:
    """The materials the receiving body looks for, each with the article asking for it and whether
    the dossier holds it (`kinds`: the kinds of the documents frozen into it; `mediated`:
    `mediation_on_record`)."""
    conditions = REFERRALS.get(handoff.kind)
    has_agent = any(p.role == "agent" for p in dispute.parties)
    items: list[tuple[str, str, str, bool]]
    if conditions is None:  # a judicial confirmation
        items = [
            ("agreement", "调解协议书", "民诉法解释 第三百五十四条", has_agreement or "agreement" in kinds),
            # A proof of identity is a document (a copy of the ID card, a business licence): an ID
            # number typed in at intake proves nothing to the court.
            ("identity", "当事人身份证明", "民诉法解释 第三百五十四条", "identity_document" in kinds),
            (
                "contact_address",
                "当事人住所、联系方式及送达地址",
                "民诉法解释 第三百五十四条",
                all(p.address and p.phone_enc for p in _principals(dispute)),
            ),
            (
                "mediation_proof",
                "调解组织主持调解的证明 (调解笔录/调解协议)",
                "民诉法解释 第三百五十四条",
                mediated,
            ),
        ]
        if dispute.category in PROPERTY_CATEGORIES:
            items.append(
                (
                    "property_proof",
                    "与调解协议相关的财产权利证明",
                    "民诉法解释 第三百五十四条",
                    "property_proof" in kinds,
                )
            )
        if has_agent:
            items.append(
                (
                    "power_of_attorney",
                    "授权委托书",
                    CONFIRMATION_POWER_OF_ATTORNEY,
                    "power_of_attorney" in kinds,
                )
            )
    else:
        label = conditions.claims_label
        items = [
            (
                "respondent",
                "对方当事人 (被申请人/被告)",
                conditions.parties,
                any(p.role == "respondent" for p in dispute.parties),
            ),
            # Each application names every party with its address (劳动争议调解仲裁法 Art. 28; 仲裁法
            # Art. 23; 农村土地承包经营纠纷调解仲裁法 Art. 21; 民事诉讼法 Art. 124); a phone is asked
            # for only of a plaintiff (民事诉讼法 Art. 124(1)), so a respondent without one misses nothing.
            (
                "party_addresses",
                "当事人姓名或名称、住所",
                conditions.parties,
                all(p.address for p in _principals(dispute)),
            ),
            ("claims", label, conditions.claims, bool(handoff.claims)),
            ("facts", "事实和理由", conditions.claims, bool(dispute.description)),
            ("evidence", "证据材料", conditions.evidence, "evidence" in kinds),
        ]
        if handoff.kind == "litigation":
            plaintiffs = [p for p in dispute.parties if p.role == "applicant"]
            items.append(
                (
                    "plaintiff_contact",
                    "原告联系方式",
                    "民事诉讼法 第一百二十四条",
                    all(p.phone_enc for p in plaintiffs),
                )
            )
        if handoff.kind == "commercial_arbitration":
            items.append(
                (
                    "arbitration_agreement",
                    "仲裁协议",
                    "仲裁法 第四条、第十六条",
                    bool(handoff.arbitration_agreement),
                )
            )
        if has_agent:
            items.append(("power_of_attorney", "授权委托书", conditions.agent, "power_of_attorney" in kinds))
    return [
        {"code": code, "item": item, "article": article, "present": present}
        for code, item, article, present in items
    ]
