"""The text of the papers the center prints: intake receipt, notice of non-acceptance, agreement,
handoff letters.

Party names appear (these are the documents parties sign and courts file); ID and phone numbers
do not: those stay encrypted in the case record. The query code is never printed into a stored
document; the window hands it over separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from mediation.core.i18n import cn_date
from mediation.disputes.enums import (
    CATEGORY_LABELS,
    DECLINE_ADVICE_MEANINGS,
    DECLINE_ADVICE_NAMES,
    PARTY_ROLE_LABELS,
    Category,
    DeclineAdvice,
    PartyRole,
)
from mediation.disputes.models import Dispute
from mediation.handoffs.ledger import KIND_LABELS
from mediation.handoffs.materials import claims_label


def _parties(dispute: Dispute) -> list[str]:
    """Each party under its role in the case (a third party and an agent by their own names)."""
    return [f"{PARTY_ROLE_LABELS.get(p.role, p.role)}: {p.name}" for p in dispute.parties]


def _joint_applicants(dispute: Dispute, applicant_ids: set[str]) -> list[str]:
    """A judicial confirmation is applied for by the parties together (民事诉讼法 Art. 205; 人民调解法
    Art. 33): those who applied (the request names them) are each an applicant, whatever side they
    took in the dispute; any other party, and an agent, is listed under its own role."""
    applicant = PARTY_ROLE_LABELS[PartyRole.applicant]
    return [
        f"{applicant}: {p.name} (调解中为{PARTY_ROLE_LABELS[p.role]})"
        if str(p.id) in applicant_ids
        else f"{PARTY_ROLE_LABELS[p.role]}: {p.name}"
        for p in dispute.parties
    ]


RECEIPT_TITLE = "受理回执"


def receipt_lines(dispute: Dispute, registered_on: date) -> list[str]:
    return [
        f"案件编号: {dispute.case_number}",
        # A referred case was applied for earlier, at the body that referred it (民法典 Art. 195).
        f"申请日期: {cn_date(dispute.applied_on)}",
        f"登记日期: {cn_date(registered_on)}",
        f"纠纷类别: {CATEGORY_LABELS[Category(dispute.category)]}",
        *_parties(dispute),
        "查询码已另行告知申请人, 凭案件编号和查询码可查询办理进度。",
        "申请人民调解即中断诉讼时效 (民法典第一百九十五条)。",
    ]


DECLINE_NOTICE_TITLE = "不予受理告知书"

# What is true of the limitation period once the center declined: the day the party applied is on
# record, and what that application did to the period (民法典 Art. 195) is for the court or the
# commission the party turns to; the center promises no interruption it cannot stand behind.
DECLINED_LIMITATION = (
    "您申请调解的日期 ({d}) 已记录在案; 该申请对诉讼时效的影响 (民法典第一百九十五条), "
    "由受理您请求的人民法院或者仲裁机构依法认定。请尽快按告知的途径办理。"
)


def decline_of(outcome: Mapping[str, Any] | None) -> tuple[str | None, DeclineAdvice | None]:
    """The reason a case was declined and the route the party was told to take instead, as the
    decline recorded them with the case (`outcome.decline`)."""
    recorded = (outcome or {}).get("decline")
    if not isinstance(recorded, Mapping):
        return None, None
    reason = recorded.get("reason")
    try:
        advice = DeclineAdvice(str(recorded.get("advice")))
    except ValueError:
        advice = None
    return (str(reason) if reason else None), advice


def route_told(advice: DeclineAdvice) -> str:
    """The route in words and what it means: "向人民法院起诉。可以向有管辖权的人民法院提起诉讼, …"."""
    return f"{DECLINE_ADVICE_NAMES[advice].zh}。{DECLINE_ADVICE_MEANINGS[advice].zh}"


def decline_notice_lines(dispute: Dispute, outcome: Mapping[str, Any] | None, declined_on: date) -> list[str]:
    """不予受理告知书: the case, who applied, the reason, the route the party is told to take instead
    and what it means, and the day. Addressed to the applicants (a case registered without one, to
    its parties)."""
    reason, advice = decline_of(outcome)
    applicants = [
        f"{PARTY_ROLE_LABELS[PartyRole.applicant]}: {p.name}"
        for p in dispute.parties
        if p.role == PartyRole.applicant
    ]
    lines = [
        f"案件编号: {dispute.case_number}",
        *(applicants or _parties(dispute)),
        f"申请日期: {cn_date(dispute.applied_on)}",
        f"纠纷类别: {CATEGORY_LABELS[Category(dispute.category)]}",
        "经审查, 本中心对您的调解申请决定不予受理。",
    ]
    if reason:
        lines.append(f"不予受理的理由: {reason}")
    if advice is not None:
        lines.append(f"告知的其他途径: {route_told(advice)}")
    lines.append(DECLINED_LIMITATION.format(d=cn_date(dispute.applied_on)))
    lines.append(f"告知日期: {cn_date(declined_on)}")
    return lines


PAPER_TITLES = {
    "judicial_confirmation": "司法确认申请书",
    "labour_arbitration": "移送劳动人事争议仲裁函",
    "commercial_arbitration": "移送仲裁函",
    "rural_land_arbitration": "移送农村土地承包仲裁函",
    "litigation": "移送诉讼函",
}


def handoff_lines(dispute: Dispute, applicant_ids: set[str] | None = None) -> list[str]:
    handoff: dict[str, Any] = dispute.handoff or {}
    kind = handoff.get("kind", "")
    confirmation = kind == "judicial_confirmation"
    parties = _joint_applicants(dispute, applicant_ids or set()) if confirmation else _parties(dispute)
    matter = KIND_LABELS[kind].zh if kind in KIND_LABELS else kind
    lines = [f"案件编号: {dispute.case_number}", *parties, f"移交事项: {matter}"]
    if confirmation:
        lines.append(f"调解协议生效日期: {dispute.agreement_effective_on}")
        lines.append("双方当事人共同申请司法确认 (民事诉讼法第二百零五条)。")
    if handoff.get("claims"):
        lines.append(f"{claims_label(kind)}: {handoff['claims']}")
    if handoff.get("arbitration_agreement"):
        lines.append(f"仲裁协议: {handoff['arbitration_agreement']}")
    lines.append("随附材料见材料清单 (以哈希值为准)。")
    return lines
