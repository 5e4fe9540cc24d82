"""The text of the papers the center prints: intake receipt, agreement, handoff letters.

Party names appear (these are the documents parties sign and courts file); ID and phone numbers
do not: those stay encrypted in the case record. The query code is never printed into a stored
document; the window hands it over separately.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from mediation.disputes.models import Dispute


def _parties(dispute: Dispute) -> list[str]:
    return [f"{'申请人' if p.role == 'applicant' else '被申请人'}: {p.name}" for p in dispute.parties]


RECEIPT_TITLE = "受理回执"


def receipt_lines(dispute: Dispute, registered_on: date) -> list[str]:
    return [
        f"案件编号: {dispute.case_number}",
        # A referred case was applied for earlier, at the body that referred it (民法典 Art. 195).
        f"申请日期: {dispute.applied_on.isoformat()}",
        f"登记日期: {registered_on.isoformat()}",
        f"纠纷类别: {dispute.category}",
        *_parties(dispute),
        "查询码已另行告知申请人, 凭案件编号和查询码可查询办理进度。",
        "申请人民调解即中断诉讼时效 (民法典第一百九十五条)。",
    ]


PAPER_TITLES = {
    "judicial_confirmation": "司法确认申请书",
    "labour_arbitration": "移送劳动人事争议仲裁函",
    "commercial_arbitration": "移送仲裁函",
    "rural_land_arbitration": "移送农村土地承包仲裁函",
    "litigation": "移送诉讼函",
}


def handoff_lines(dispute: Dispute) -> list[str]:
    handoff: dict[str, Any] = dispute.handoff or {}
    lines = [f"案件编号: {dispute.case_number}", *_parties(dispute), f"移交类型: {handoff.get('kind', '')}"]
    if handoff.get("kind") == "judicial_confirmation":
        lines.append(f"调解协议生效日期: {dispute.agreement_effective_on}")
        lines.append("双方当事人共同申请司法确认 (民事诉讼法第二百零五条)。")
    if handoff.get("claims"):
        lines.append(f"诉讼请求: {handoff['claims']}")
    if handoff.get("arbitration_agreement"):
        lines.append(f"仲裁协议: {handoff['arbitration_agreement']}")
    lines.append("随附材料见材料清单 (以哈希值为准)。")
    return lines
