"""Chinese names of the code lists and fields, for the pages. Presentation only: which values exist
and what they mean is decided by the enums and schemas they label."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo

from mediation.alerts.detect import DANGER_LABELS
from mediation.bodies.models import BodyKind
from mediation.clocks.rules import CLOCK_LABELS
from mediation.core.principal import ROLE_NAMES
from mediation.disputes.enums import CATEGORY_LABELS, DECLINE_ADVICE_NAMES, PARTY_ROLE_LABELS
from mediation.disputes.lifecycle import STATUS_LABELS, TRANSITIONS
from mediation.documents.service import DOCUMENT_ENTRIES
from mediation.triage.rules import GroupCount, GroupDecision

# What the timeline calls each entry: the lifecycle's own labels, then the work recorded beside it.
TIMELINE_LABELS = {
    "register": "登记",
    **{t.action.value: t.label.zh for t in TRANSITIONS},
    "record_consent": "记录调解意愿",
    "schedule_session": "安排调解",
    "record_session": "记录调解笔录",
    "cancel_session": "取消调解",
    "reschedule_session": "调解会改期",
    "draft_agreement": "起草调解协议",
    "revise_agreement": "修改调解协议",
    "sign_agreement": "签署调解协议",
    "record_obligation_performance": "登记义务履行",
    "obligation_overdue": "义务逾期未履行",
    "complete_follow_up": "完成跟踪回访",
    "visit_impossible": "无法回访",
    "supervision_issued": "督办",
    "supervision_responded": "答复督办",
    "supervision_escalated": "督办升级",
    "supervision_readdressed": "督办随案转交",
    "supervision_lapsed": "督办随案办结",
    "acknowledge_handoff": "接收移交",
    "extend_handoff": "延长审查期限",
    "request_withdrawal": "申请撤回(待裁定)",
    "handoff_overdue": "移交审查超期",
    "request_materials": "法院要求补充材料",
    "supply_materials": "补充材料",
    "materials_overdue": "补充材料逾期",
    "clock_paused": "时限暂停",
    "clock_resumed": "时限恢复",
    "clock_extended": "时限延长",
    "clock_recounted": "时限按节假日安排重算",
    "owner_set": "确定包案领导",
    "owner_changed": "变更包案领导",
    "owner_cleared": "取消包案",
    "note": "备注",
    "alert_raised": "触发预警",
    "flag_risk": "报告风险",
    "reissue_query_code": "重新生成查询码",
    "alert_acknowledged": "签收预警",
    "alert_resolved": "预警处置",
    "clock_at_risk": "时限临期",
    "clock_overdue": "时限超期",
    "clock_window_closed": "申请期限届满",
    "assign_mediator": "指定承办调解员",
    "correct": "更正登记信息",
    "link": "关联案件",
    "unlink": "解除关联",
    "add_document": "提交材料",
    "withdraw_document": "撤回材料",
    "document_added": "提交材料",
    "document_withdrawn": "撤回材料",
    "visit_attempted": "回访未联系上",
    "visit_completed": "完成回访",
}

ENUM_LABELS: dict[str, dict[str, str]] = {
    "action": TIMELINE_LABELS,
    "category": {k.value: v for k, v in CATEGORY_LABELS.items()},
    "status": {k.value: v.zh for k, v in STATUS_LABELS.items()},
    "channel": {
        "window": "窗口受理",
        "online": "网上申请",
        "grid": "网格员上报",
        "hotline": "12345热线",
        "petition": "信访转办",
        "court_delegated": "法院委派",
        "police": "公安移交",
    },
    # 特邀调解规定 Art. 27: the period follows the stage of the court's case.
    "court_stage": {
        "pre_filing": "立案前委派调解",
        "after_filing_ordinary": "立案后委托调解(普通程序)",
        "after_filing_simple": "立案后委托调解(简易程序)",
    },
    "severity": {"ordinary": "一般", "major": "较大", "serious": "重大"},
    "complexity": {"simple": "简易", "general": "一般", "complex": "疑难复杂"},
    "tier": {"village": "村(社区)", "town": "乡镇(街道)", "county": "县(区)", "city": "市"},
    "role": dict(PARTY_ROLE_LABELS),
    "kind": {"person": "自然人", "organisation": "单位", "payment": "给付金钱", "act": "履行行为"},
    "id_type": {
        "resident_id": "居民身份证",
        "uscc": "统一社会信用代码",
        "passport": "护照",
        "hk_macao_permit": "港澳居民来往内地通行证",
        "taiwan_permit": "台湾居民来往大陆通行证",
        "hmt_residence_permit": "港澳台居民居住证",
        "foreign_permanent_residence": "外国人永久居留身份证",
        "other": "其他证件",
    },
    "consent": {"unknown": "未表态", "given": "同意调解", "refused": "拒绝调解"},
    "link_kind": {"same_dispute": "同一纠纷重复反映", "related": "关联纠纷"},
    "matched_on": {
        "id_number": "证件号码相同",
        "phone": "电话相同",
        "respondent_organisation": "被申请单位相同",
    },
    # The consent form's choice (ConsentIn.decision): a decision, never "unknown".
    "decision": {"given": "同意调解", "refused": "拒绝调解"},
    "subject_matters": {
        "marriage": "婚姻",
        "adoption": "收养",
        "guardianship": "监护",
        "support": "扶养(抚养、赡养)",
        "inheritance": "继承",
        "administrative": "行政争议",
        "personal_status": "身份关系确认",
        "property_ownership": "物权确权",
        "ip_ownership": "知识产权确权",
        "special_procedure": "特别程序",
        "outside_court_scope": "不属于法院受理范围",
    },
    "reason_code": {
        "party_refused": "当事人撤回或拒绝调解",
        "positions_too_far_apart": "分歧较大, 难以达成协议",
        "deadline_passed": "期限届满未达成协议且未延期",
        "party_unreachable": "当事人无法联系",
        "party_refused_to_sign": "当事人拒绝签署协议",
        "other": "其他",
        # not_accept reasons
        "outside_court_scope": "不属于法院受理范围",
        "not_competent_court": "本院无管辖权",
        "personal_status": "涉及身份关系确认",
        "special_procedure": "适用特别程序",
        "ownership_confirmation": "涉及确权",
        "materials_missing": "材料不全",
        # not accepting a referral (handoffs.answers.DECIDERS)
        "outside_scope": "不属于本委受理范围",
        "time_limit_passed": "超过仲裁时效",
        "not_competent": "本委无管辖权",
        "no_arbitration_agreement": "没有有效的仲裁协议",
        "materials_incomplete": "申请材料不齐",
        "already_decided": "已有生效的裁决、判决、裁定或调解书",
        "conditions_not_met": "不符合起诉条件",
        "arbitration_agreement": "当事人有书面仲裁协议",
    },
    "advice": {advice.value: name.zh for advice, name in DECLINE_ADVICE_NAMES.items()},
    "ground": {
        "violates_mandatory_law": "违反法律强制性规定",
        "harms_public_or_others": "损害国家、社会公共利益或他人合法权益",
        "against_public_order": "违背公序良俗",
        "not_voluntary": "违反自愿原则",
        "unclear_content": "内容不明确",
        "other": "其他不能司法确认的情形",
    },
    "outcome": {
        "award": "仲裁裁决",
        "judgment": "判决",
        "settlement": "调解或和解",
        "withdrawal": "撤回",
        "dismissed": "驳回",
        # How a sitting (调解会) ended: another code list, named by the same field.
        "continued": "继续调解",
        "adjourned": "改期",
        "agreement_reached": "达成协议",
        "party_absent": "当事人未到场",
        "party_refused": "当事人拒绝调解",
        "termination_demanded": "当事人要求终止调解",
        "no_agreement": "分歧较大, 未能达成协议",
    },
    "session_status": {"scheduled": "待召开", "held": "已召开", "cancelled": "已取消"},
    "basis": {
        "inviting_court": "委派(邀请)调解的法院",
        "party_domicile": "当事人住所地法院",
        "subject_matter_location": "标的物所在地法院",
        "body_location": "调解组织所在地法院",
    },
    "contact_method": {"phone": "电话", "visit": "上门走访", "online": "网上", "sms": "短信"},
    "method": {
        "in_person": "本人签名",
        "fingerprint": "按指印",
        "electronic": "电子签名",
        "seal": "盖章",
        "recorded": "调解员记录(口头协议)",
    },
    "form": {"written": "书面协议", "oral": "口头协议"},
    "body_kind": {
        BodyKind.mediation_center.value: "调处中心",
        BodyKind.people_mediation_committee.value: "人民调解委员会",
        BodyKind.industry_mediation.value: "行业性专业性调解组织",
        BodyKind.administrative_mediation.value: "行政调解",
        BodyKind.lawyer_mediation.value: "律师调解",
        BodyKind.court_invited_mediation.value: "法院特邀调解",
        BodyKind.court.value: "人民法院",
        BodyKind.labour_arbitration_commission.value: "劳动人事争议仲裁委员会",
        BodyKind.commercial_arbitration_commission.value: "仲裁委员会",
        BodyKind.rural_land_arbitration_commission.value: "农村土地承包仲裁委员会",
    },
    "staff_role": {role.value: name.zh for role, name in ROLE_NAMES.items()},
    "clock": {str(name): label for name, label in CLOCK_LABELS.items()},
    "level": {"normal": "正常", "at_risk": "临期", "overdue": "超期"},
    "alert_kind": {
        "risk": "风险预警",
        "cluster": "群体性苗头",
        "repeat": "重复纠纷",
        "query_code": "查询码多次输错",
    },
    "attention": {
        "triage_exhausted": "无合适调解组织承接, 待督办人员指定",
        "supervision_overdue": "督办逾期未答复",
        "risk": "涉稳或有激化危险",
    },
    "handoff_kind": {
        "judicial_confirmation": "司法确认",
        "labour_arbitration": "劳动人事争议仲裁",
        "commercial_arbitration": "商事仲裁",
        "rural_land_arbitration": "农村土地承包仲裁",
        "litigation": "诉讼",
    },
    "handoff_status": {
        "pending": "待接收",
        "accepted": "已受理",
        "not_accepted": "不予受理",
        "confirmed": "已确认有效",
        "rejected": "驳回申请",
        "withdrawn": "已撤回",
        "concluded": "已审结",
        "lapsed": "逾期未决定, 已另行起诉",
    },
    "alert_status": {"open": "待处置", "acknowledged": "已知悉", "resolved": "已处置"},
    "order_status": {
        "issued": "待答复",
        "responded": "已答复",
        "escalated": "已升级",
        "lapsed": "已随案办结",
    },
    # A case's documents (案件材料): what each is, who handed it in, whether it still counts.
    "document_kind": {
        "evidence": "证据材料",
        "identity_document": "身份证明",
        "power_of_attorney": "授权委托书",
        "property_proof": "财产权利证明",
        "minutes": "调解笔录",
        "agreement": "调解协议书",
        "receipt": "受理回执",
        "decline_notice": "不予受理告知书",
        "application": "司法确认申请书",
        "filing_pack": "移送材料",
        "court_ruling": "法院裁定书",
        "other": "其他材料",
    },
    "submitted_by_kind": {
        "party": "当事人",
        "center": "调处化解中心",
        "body": "调解组织",
        "court": "法院或仲裁机构",
        "system": "系统",
    },
    "document_status": {"active": "有效", "withdrawn": "已撤回"},
    # 报告风险 (人民调解法 Art. 25): the danger staff saw, and to whom they reported it.
    "cause": {"lost": "查询码遗失", "disclosed": "查询码可能被他人知悉"},
    "danger": {d.value: label.zh for d, label in DANGER_LABELS.items()},
    "reported_to": {"police": "公安机关", "other_department": "其他有关部门"},
}

FIELD_LABELS: dict[str, str] = {
    "lookup.case_number": "案件编号",
    "lookup.query_code": "查询码",
    "pi_notice_read": "个人信息处理告知",
    "decision": "当事人的意愿",
    "units": "延长",
    "consenting_party_ids": "同意延长的当事人",
    "document_ids": "送交法院的材料",
    "note": "备注",
    "danger": "危险类型",
    "cause": "原因",
    "observation": "发现的情况",
    "reported_to": "已向何处报告 (尚未报告的不选)",
    "reported_at": "报告时间",
    "report_department": "报告的派出所或部门 (向其他部门报告的必填)",
    "report_reference": "接报回执号 (选填)",
    "reason": "理由",
    "advice": "告知的其他途径",
    "body_id": "调解组织",
    "override_reason": "不采纳推荐的理由",
    "mediator_id": "承办调解员",
    "party_id": "当事人",
    "agreement_id": "调解协议",
    "reason_code": "原因",
    "court_id": "人民法院",
    "basis": "管辖依据",
    "applicant_party_ids": "共同申请的当事人",
    "materials_missing": "因未补充材料按撤回处理",
    "performed_on": "履行完毕日期",
    "ruling_number": "裁定书文号",
    "ruled_on": "裁定日期",
    "ground": "驳回理由",
    "commission_id": "仲裁委员会",
    "arbitration_agreement": "书面仲裁协议",
    "rights_known_on": "知道权利受侵害之日",
    "claims": "诉讼请求",
    "outcome": "结果",
    "reference_number": "文书编号",
    "decided_on": "作出日期",
    "follow_up": "回访",
    "contact_method": "回访方式",
    "satisfaction": "满意度(1-5)",
    "agreement_performed": "协议是否履行",
    "notes": "回访记录",
    "visit_impossible_reason": "无法回访的原因",
    "instruction": "督办要求",
    "due_on": "答复期限",
    "response": "答复内容",
    "category": "纠纷类型",
    # The pages' own forms: the password change and the case lookup.
    "current_password": "当前密码",
    "new_password": "新密码",
    "new_password_again": "再次输入新密码",
    "case_number": "案件编号",
    "query_code": "查询码",
    "description": "纠纷简要情况",
    "channel": "来源渠道",
    "region_code": "发生地行政区划代码",
    "address": "详细地址",
    "amount_in_dispute": "争议金额(元)",
    "people_involved": "涉及人数(不填按所列当事人人数计, 代理人不计)",
    "severity": "严重程度",
    "complexity": "复杂程度",
    "is_risk": "涉稳或有激化危险",
    "applied_on": "申请日期(转来案件: 当事人向12345、信访、法院或公安申请之日; 不填为登记日)",
    "subject_matters": "特殊事项",
    "role": "身份",
    "kind": "类型",
    "name": "姓名或名称",
    "id_type": "证件类型",
    "id_number": "证件号码",
    "phone": "联系电话",
    "external_reference": "外部编号(如12345工单号)",
    "inviting_court_id": "委派调解的法院(特邀调解)",
    "court_stage": "委派或委托阶段(特邀调解; 不填为立案前委派)",
    "court_case_number": "法院案号(特邀调解)",
    "parties.region_code": "住所地行政区划代码",
    "parties.address": "住址",
    "add_parties.region_code": "住所地行政区划代码",
    "add_parties.address": "住址",
    "service_address": "送达地址(不填以住址为送达地址)",
    "legal_representative": "法定代表人或主要负责人(单位当事人)",
    "represents": "代理哪位当事人(委托代理人)",
    "obligations.obligor_party_id": "义务人",
    "obligations.obligee_party_id": "权利人",
    "obligations.kind": "义务类型",
    "obligations.amount": "金额(元)",
    "obligations.description": "履行内容",
    "obligations.place": "履行地点",
    "obligations.manner": "履行方式",
    "obligations.due_on": "履行期限",
    "facts": "主要事实",
    "disputed_matters": "争议事项",
    "responsibility": "各方责任",
    "form": "协议形式",
    "signer": "签署人",
    "method": "签署方式",
    "document_hash": "所签文本哈希",
    "signed_at": "签署时间",
    "scheduled_at": "调解时间",
    "place": "调解地点",
    "online": "线上调解(视频、电话等, 可不填地点)",
    "held_at": "实际召开时间",
    "attendees": "到场人员",
    "attendees.name": "姓名",
    "attendees.capacity": "身份(代理人、见证人、调解员等)",
    "minutes": "调解笔录",
    "file": "文件",
}


def enum_label(kind: str, value: object) -> str:
    """The Chinese name of a code, or the code itself when none is known."""
    if value is None:
        return ""
    text = str(value)
    return ENUM_LABELS.get(kind, {}).get(text, text)


# Codes a timeline entry may give as its reason when no note was written (a court's ground for
# rejecting a confirmation, a failure's reason code): shown by their names.
REASON_CODE_KINDS = ("ground", "reason_code")


def entry_reason(reason: str | None, payload: dict[str, object] | None) -> str:
    """A timeline entry's reason as the page shows it: a code by its Chinese name."""
    if not reason:
        return ""
    for kind in REASON_CODE_KINDS:
        if (payload or {}).get(kind) == reason:
            return enum_label(kind, reason)
    return reason


def decline_advice(action: str, payload: dict[str, object] | None) -> str:
    """The route a decline told the party to take instead, as its timeline entry shows it beside
    the reason: "告知的其他途径: 向人民法院起诉"."""
    if action != "decline" or not payload or not payload.get("advice"):
        return ""
    return f"告知的其他途径: {enum_label('advice', payload['advice'])}"


# Timeline entries that carry a follow-up visit's result (人民调解法 Art. 27: the body follows up
# on how the agreement is performed): the archive that brought it, or a try recorded on its own.
VISIT_ENTRIES = frozenset({"archive", "visit_completed", "visit_attempted"})
PERFORMED = {True: "协议已履行", False: "协议未履行", None: "履行情况不清楚"}


def visit_result(action: str, payload: dict[str, object] | None) -> str:
    """What a follow-up visit found, as the timeline shows it: how the parties were contacted,
    whether they were reached, their satisfaction, whether the agreement is performed, the notes."""
    if action not in VISIT_ENTRIES or not payload:
        return ""
    if action == "archive":
        if payload.get("visit_impossible_reason"):
            return f"无法回访: {payload['visit_impossible_reason']}"
        visit = payload.get("follow_up")
        if not isinstance(visit, dict):
            return ""
        reached, notes = True, visit.get("notes")
    else:
        visit, reached, notes = payload, bool(payload.get("reached")), None
    parts = [f"回访方式: {enum_label('contact_method', visit.get('contact_method'))}"]
    if not reached:
        return " · ".join([*parts, "未联系上当事人"])
    parts.append("已联系上当事人")
    if visit.get("satisfaction") is not None:
        parts.append(f"满意度 {visit['satisfaction']}/5")
    performed = visit.get("agreement_performed")
    parts.append(PERFORMED.get(performed if isinstance(performed, bool) else None, PERFORMED[None]))
    if notes:
        parts.append(f"回访记录: {notes}")
    return " · ".join(parts)


def sitting_outcome(action: str, payload: dict[str, object] | None, names: Mapping[str, str]) -> str:
    """How a recorded sitting ended, as the timeline shows it: "调解结果: 当事人拒绝调解 (李四)"."""
    if action != "record_session" or not payload or not payload.get("outcome"):
        return ""
    party = names.get(str(payload.get("party_id"))) if payload.get("party_id") else None
    return f"调解结果: {enum_label('outcome', payload['outcome'])}" + (f" ({party})" if party else "")


def sitting_moved(action: str, payload: dict[str, object] | None, zone: tzinfo) -> str:
    """From when to when a sitting was moved (改期), in the center's time, as the timeline shows it:
    "12月8日 09:30 → 12月10日 14:00" (with the year when the two differ)."""
    if action != "reschedule_session" or not payload:
        return ""
    try:
        before, after = (
            datetime.fromisoformat(str(payload[k])).astimezone(zone)
            for k in ("previous_scheduled_at", "scheduled_at")
        )
    except (KeyError, ValueError):
        return ""

    def day(t: datetime) -> str:
        return (f"{t.year}年" if before.year != after.year else "") + f"{t.month}月{t.day}日 {t:%H:%M}"

    return f"{day(before)} → {day(after)}"


def corrected_fields(action: str, payload: dict[str, object] | None, names: Mapping[str, str]) -> str:
    """What a correction changed, as the timeline shows it: field names and the parties' names as
    the case now holds them; the entry itself records no value (个人信息保护法 Art. 51)."""
    if action != "correct" or not payload:
        return ""
    parts = ["纠纷简要情况"] if payload.get("description") else []
    people = payload.get("people_involved")
    if isinstance(people, dict):  # a count, not personal data: shown with its values
        parts.append(f"涉及人数由{people.get('from')}人改为{people.get('to')}人")
    for change in payload.get("parties") or []:  # type: ignore[attr-defined]
        fields = "、".join(FIELD_LABELS.get(f, f) for f in change.get("fields", []))
        parts.append(f"{names.get(change.get('party_id'), '当事人')}的{fields}")
    for added in payload.get("added_parties") or []:  # type: ignore[attr-defined]
        role = enum_label("role", added.get("role"))
        parts.append(f"追加{role} {names.get(added.get('party_id'), '')}".rstrip())
    tier = payload.get("tier")
    moved = (
        f"; 处理层级由{enum_label('tier', tier.get('from'))}级调整为{enum_label('tier', tier.get('to'))}级"
        if isinstance(tier, dict)
        else ""
    )
    group = payload.get("group")
    decided = GroupDecision.of_record(group) if isinstance(group, dict) else None
    counted = f"; {decided.text.zh}" if decided is not None else ""
    return "更正了: " + "; ".join(parts) + counted + moved if parts else ""


def group_counted(action: str, payload: dict[str, object] | None) -> str:
    """What the group threshold counted at registration, as the timeline shows it for a group
    dispute and for any case counting the workers' side (劳动争议调解仲裁法 Art. 7): "劳动者一方
    10人, 达到群体性纠纷标准10人". A correction that decided again says it with what it corrected."""
    if action != "register" or not payload or not isinstance(payload.get("group"), dict):
        return ""
    decided = GroupDecision.of_record(payload["group"])  # type: ignore[arg-type]
    if decided is None or not (decided.is_group or decided.counts == GroupCount.workers):
        return ""
    return decided.text.zh


def document_entry(action: str, payload: dict[str, object] | None, names: Mapping[str, str]) -> str:
    """Which document an entry handed in or withdrew, as the timeline shows it: "证据材料《欠条.pdf》,
    当事人张三提交 · 备注: 原件已核对". The name and the note as the entry reads to this caller (its
    ID and phone numbers masked without `pii:read`); a withdrawal's reason is the entry's own."""
    if action not in DOCUMENT_ENTRIES or not payload:
        return ""
    text = enum_label("document_kind", payload.get("kind"))
    if payload.get("name"):
        text += f"《{payload['name']}》"
    party = names.get(str(payload.get("party_id"))) if payload.get("party_id") else None
    parts = [f"{text}, 当事人{party}提交" if party else text]
    if payload.get("note"):
        parts.append(f"备注: {payload['note']}")
    return " · ".join(parts)


def risk_report(action: str, payload: dict[str, object] | None, zone: tzinfo) -> str:
    """What a flag of risk says on the timeline: the danger and the report (人民调解法 Art. 25),
    "危险类型: 暴力威胁 · 已于 3月2日 10:30 向公安机关 (城关派出所) 报告, 回执号 J2026-001"; what
    was seen is the entry's reason."""
    if action != "flag_risk" or not payload:
        return ""
    parts = [f"危险类型: {enum_label('danger', payload.get('danger'))}"]
    to = payload.get("reported_to")
    if not to:
        parts.append("尚未报告 (有可能引起治安案件、刑事案件的, 应当及时向当地公安机关或者其他有关部门报告)")
    else:
        try:
            at = datetime.fromisoformat(str(payload.get("reported_at"))).astimezone(zone)
            when = f"于 {at.year}年{at.month}月{at.day}日 {at:%H:%M} "
        except ValueError:
            when = ""
        department = payload.get("report_department")
        report = (
            f"已{when}向{enum_label('reported_to', to)}"
            + (f" ({department})" if department else "")
            + " 报告"
        )
        if payload.get("report_reference"):
            report += f", 回执号 {payload['report_reference']}"
        parts.append(report)
    tier = payload.get("tier")
    if isinstance(tier, dict):
        parts.append(
            f"处理层级由{enum_label('tier', tier.get('from'))}级调整为{enum_label('tier', tier.get('to'))}级"
        )
    return " · ".join(parts)


# How a signature is named on the timeline: "张三 签名", "调解员 签名", "调解组织 盖章".
SIGNED_BY = {
    "in_person": "签名",
    "fingerprint": "按指印",
    "electronic": "电子签名",
    "seal": "盖章",
    "recorded": "记录口头协议",
}
SIGNERS = {"mediator": "调解员", "body_seal": "调解组织"}


def agreement_work(action: str, payload: dict[str, object] | None, names: Mapping[str, str]) -> str:
    """What an entry on the agreement says after its label: "起草调解协议 (第2版, 书面)",
    "修改调解协议 (第2版)", "签署调解协议: 张三 签名 (第2版)". The entry holds ids only; a party is
    named as the case now holds it, as the other entries name parties."""
    if not payload or action not in ("draft_agreement", "revise_agreement", "sign_agreement"):
        return ""
    number = f"第{payload.get('number')}版"
    if action == "draft_agreement":
        form = {"written": "书面", "oral": "口头"}.get(str(payload.get("form")), str(payload.get("form")))
        return f" ({number}, {form})"
    if action == "revise_agreement":
        return f" ({number})"
    signer = str(payload.get("signer"))
    who = (
        names.get(str(payload.get("party_id")), "当事人")
        if signer == "party"
        else SIGNERS.get(signer, signer)
    )
    method = str(payload.get("method"))
    return f": {who} {SIGNED_BY.get(method, enum_label('method', method))} ({number})"


def agreement_effective(action: str, payload: dict[str, object] | None) -> str:
    """A signature that made its version effective (人民调解法 Art. 29, 30), as the timeline says it:
    "协议生效 (第2版, 2026-03-02)", and the oral agreement it put in writing, which it replaced."""
    if action != "sign_agreement" or not payload or payload.get("effective") is not True:
        return ""
    text = f"协议生效 (第{payload.get('number')}版, {payload.get('effective_on')})"
    if payload.get("supersedes"):
        text += f"; 取代第{payload['supersedes']}版口头协议"
    return text
