"""The event catalogue: every event type the service publishes, with its payload fields.

Built from the lifecycle table, so a new transition is in the catalogue (and in the committed
`openapi/events.json`) as soon as it exists.
"""

from __future__ import annotations

from typing import Any

from mediation.disputes.lifecycle import HANDOFF_DECISIONS, HANDOFF_OPENINGS, TRANSITIONS, Action
from mediation.events.service import SOURCE, TYPE_PREFIX

# Fields every dispute event carries in `data`; none of them is personal data.
COMMON_FIELDS: dict[str, dict[str, Any]] = {
    "dispute_id": {"type": "string", "format": "uuid"},
    "case_number": {"type": "string", "description": "案件编号, also the CloudEvents subject"},
    "action": {"type": "string", "description": "the lifecycle action (or register, record_consent)"},
    "version": {"type": "integer", "description": "the case version this change produced"},
}
TRANSITION_FIELDS: dict[str, dict[str, Any]] = {
    "from": {"type": "string", "description": "state before"},
    "to": {"type": "string", "description": "state after"},
    "body_id": {"type": "string", "format": "uuid", "description": "the assigned body, if any"},
    "handoff_target_id": {
        "type": "string",
        "format": "uuid",
        "description": "the court or commission the case is handed to, if any",
    },
    "mediator_id": {"type": "string", "format": "uuid", "description": "the mediator, once named"},
}
# What the event of a transition that opens or settles a handoff says of it: a court or commission
# acts on it by its id (/v1/handoffs/{id}), also once the case has left it.
HANDOFF_FIELDS: dict[str, dict[str, Any]] = {
    "handoff_id": {
        "type": "string",
        "format": "uuid",
        "description": "the handoff this change opened or settled",
    },
    "handoff_kind": {
        "type": "string",
        "description": "judicial_confirmation | labour_arbitration | commercial_arbitration | "
        "rural_land_arbitration | litigation",
    },
    "target_id": {
        "type": "string",
        "format": "uuid",
        "description": "the court or commission the handoff is addressed to; unlike `handoff_target_id`, "
        "also when the change took the case away from it (a request withdrawn or not accepted)",
    },
}
LAPSED_HANDOFF_FIELD: dict[str, Any] = {
    "type": "string",
    "format": "uuid",
    "description": "a labour dispute taken to court because its commission let the period to accept or "
    "to award pass (劳动争议调解仲裁法 Art. 29, 43): the referral to arbitration that lapsed with it",
}

CLOCK_FIELDS: dict[str, dict[str, Any]] = {
    "clock": {
        "type": "string",
        "description": "acceptance | sign_for | handling | mediation | confirmation_window | follow_up_visit",
    },
    "due_on": {"type": "string", "format": "date"},
    "level": {"type": "string", "description": "at_risk | overdue"},
    "source": {"type": "string", "description": "the article or practice the deadline comes from"},
}
ORDER_FIELDS: dict[str, dict[str, Any]] = {
    "order_id": {"type": "string", "format": "uuid"},
    "body_id": {"type": "string", "format": "uuid"},
    "due_on": {"type": "string", "format": "date"},
}
ALERT_FIELDS: dict[str, dict[str, Any]] = {
    "alert_id": {"type": "string", "format": "uuid"},
    "kind": {"type": "string", "description": "risk | cluster | repeat | query_code"},
    "level": {"type": "string", "description": "immediate | high | normal"},
}
AGREEMENT_FIELDS: dict[str, dict[str, Any]] = {
    "agreement_id": {"type": "string", "format": "uuid"},
    "number": {"type": "integer", "description": "the agreement's version number in the case"},
}
# 群体性: what the category's group threshold counted (劳动争议调解仲裁法 Art. 7: the workers' side
# of a labour dispute) and what it decided.
GROUP_FIELD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "counts": {"type": "string", "description": "everyone | workers (劳动者一方)"},
        "counted": {"type": "integer"},
        "threshold": {"type": "integer"},
        "is_group": {"type": "boolean"},
    },
}
VISIT_FIELDS: dict[str, dict[str, Any]] = {
    "follow_up_id": {"type": "string", "format": "uuid"},
    "attempt": {"type": "integer"},
    "reached": {"type": "boolean"},
    "contact_method": {"type": "string"},
    "satisfaction": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
    "agreement_performed": {"type": ["boolean", "null"]},
}


def catalogue() -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {
        "registered": {
            "summary": "登记 A dispute was registered at the window",
            "fields": {
                **COMMON_FIELDS,
                "to": TRANSITION_FIELDS["to"],
                "channel": {"type": "string"},
                "category": {"type": "string"},
                "applied_on": {
                    "type": "string",
                    "format": "date",
                    "description": "申请日: the day the resident applied (for a referred case, at the "
                    "hotline, petition office, court or police; 民法典 Art. 195), else the day registered",
                },
                "group": {
                    **GROUP_FIELD,
                    "description": "whether the case is a group dispute (群体性), with what was counted",
                },
            },
        },
        "consent_recorded": {
            "summary": "A party's consent to, or refusal of, mediation was recorded (人民调解法 Art. 17)",
            "fields": {
                **COMMON_FIELDS,
                "party_id": {"type": "string", "format": "uuid"},
                "decision": {"type": "string"},
            },
        },
        "corrected": {
            "summary": "更正登记信息 The case's registration was corrected or completed (个人信息保护法 Art. 46): "
            "which fields of which parties changed, never their values",
            "fields": {
                **COMMON_FIELDS,
                "description": {"type": "boolean", "description": "the registered facts were corrected"},
                "parties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "party_id": {"type": "string", "format": "uuid"},
                            "fields": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "the fields changed or cleared: name | id_type | id_number "
                                "| phone | address | region_code",
                            },
                        },
                    },
                },
                "added_parties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "party_id": {"type": "string", "format": "uuid"},
                            "role": {"type": "string"},
                        },
                    },
                },
                "people_involved": {
                    "type": "object",
                    "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}},
                    "description": "present when 涉及人数 was corrected, or raised by parties added",
                },
                "group": {
                    **GROUP_FIELD,
                    "description": "present when the group dispute was decided again: on a new count, or "
                    "on parties added to a case whose threshold counts the workers' side",
                },
                "tier": {
                    "type": "object",
                    "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                    "description": "present when the corrected facts moved a case still at the center to "
                    "a higher tier (words of violence: 人民调解法 Art. 25; or a count making it a group "
                    "dispute): village | town | county | city",
                },
            },
            "actions": ["correct"],
        },
        "document_added": {
            "summary": "提交材料 A document was handed in to the case (the papers the service prints "
            "belong to the action that printed them): work on the case, one timeline entry, the version "
            "moved on by one. The file's name and the note stay on the timeline",
            "fields": {
                **COMMON_FIELDS,
                "document_id": {"type": "string", "format": "uuid"},
                "kind": {
                    "type": "string",
                    "description": "evidence | identity_document | power_of_attorney | property_proof | minutes | agreement "
                    "| receipt | decline_notice | application | filing_pack | court_ruling | other",
                },
            },
            "actions": ["add_document"],
        },
        "triage_exhausted": {
            "summary": "分流无果 Every candidate body returned the case (or none covers it): a supervisor must decide",
            "fields": {
                **COMMON_FIELDS,
                "excluded_body_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                "decision": {"type": "string", "description": "exhausted | no_candidate"},
            },
            "actions": ["return", "transfer"],
        },
        "mediator_assigned": {
            "summary": "指定调解员 The body named (or changed) the mediator of the case",
            "fields": {**COMMON_FIELDS, "mediator_id": {"type": "string", "format": "uuid"}},
            "actions": ["assign_mediator"],
        },
        "case_linked": {
            "summary": "关联案件 A clerk linked the case to another (the same dispute by another channel)",
            "fields": {
                **COMMON_FIELDS,
                "linked_dispute_id": {"type": "string", "format": "uuid"},
                "kind": {"type": "string", "description": "same_dispute | related"},
            },
            "actions": ["link"],
        },
        "case_unlinked": {
            "summary": "解除关联 The center removed a link made by mistake between the case and another "
            "(the reason is on both timelines); the pair may be linked again",
            "fields": {
                **COMMON_FIELDS,
                "linked_dispute_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "the case it was linked to",
                },
                "kind": {"type": "string", "description": "what the link had said: same_dispute | related"},
            },
            "actions": ["unlink"],
        },
        "session_scheduled": {
            "summary": "安排调解 The body scheduled a mediation session",
            "fields": {
                **COMMON_FIELDS,
                "session_id": {"type": "string", "format": "uuid"},
                "scheduled_at": {"type": "string", "format": "date-time"},
                "online": {"type": "boolean"},
            },
            "actions": ["schedule_session"],
        },
        "session_cancelled": {
            "summary": "取消调解 The body called off a session still to be held, with its reason (on the timeline)",
            "fields": {
                **COMMON_FIELDS,
                "session_id": {"type": "string", "format": "uuid"},
                "scheduled_at": {"type": "string", "format": "date-time"},
            },
            "actions": ["cancel_session"],
        },
        "session_rescheduled": {
            "summary": "调解改期 The body moved a session still to be held to another time, with its reason (on the timeline)",
            "fields": {
                **COMMON_FIELDS,
                "session_id": {"type": "string", "format": "uuid"},
                "scheduled_at": {"type": "string", "format": "date-time", "description": "The new time."},
                "previous_scheduled_at": {"type": "string", "format": "date-time"},
                "online": {"type": "boolean"},
            },
            "actions": ["reschedule_session"],
        },
        "session_recorded": {
            "summary": "调解笔录 A session's minutes and outcome were recorded",
            "fields": {
                **COMMON_FIELDS,
                "session_id": {"type": "string", "format": "uuid"},
                "outcome": {
                    "type": "string",
                    "description": "continued | adjourned | agreement_reached | party_absent | party_refused | termination_demanded | no_agreement",
                },
                "party_id": {"type": ["string", "null"], "format": "uuid"},
            },
            "actions": ["record_session"],
        },
        "agreement_drafted": {
            "summary": "起草调解协议 The body drafted a version of the case's agreement; the draft it "
            "follows, if one was waiting for signatures, is superseded with it (人民调解法 Art. 29)",
            "fields": {
                **COMMON_FIELDS,
                **AGREEMENT_FIELDS,
                "form": {"type": "string", "description": "written | oral (人民调解法 Art. 28)"},
                "supersedes": {
                    "type": ["integer", "null"],
                    "description": "the number of the draft this one superseded (set aside unsigned); null "
                    "when none was waiting for signatures: the first version, or one drafted while a "
                    "version is in effect (an oral agreement being put in writing, which it replaces "
                    "only when it takes effect: see `agreement_signature_recorded`) or after one was "
                    "set aside",
                },
            },
            "actions": ["draft_agreement"],
        },
        "agreement_revised": {
            "summary": "修改调解协议 A draft of the agreement was edited in place, before anyone signed it",
            "fields": {
                **COMMON_FIELDS,
                **AGREEMENT_FIELDS,
                "form": {"type": "string", "description": "written | oral"},
            },
            "actions": ["revise_agreement"],
        },
        "agreement_signature_recorded": {
            "summary": "签署调解协议 A party's signature, seal or fingerprint, the mediator's signature (or "
            "record of an oral agreement) or the body's seal was recorded on a draft; the last one makes "
            "the version effective (人民调解法 Art. 29, 30), said by `effective`. The case records the "
            "agreement afterwards (`agree`: agreement_signed)",
            "fields": {
                **COMMON_FIELDS,
                **AGREEMENT_FIELDS,
                "signer": {"type": "string", "description": "party | mediator | body_seal"},
                "party_id": {
                    "type": ["string", "null"],
                    "format": "uuid",
                    "description": "the party who signed; null for the mediator and the body's seal",
                },
                "method": {
                    "type": "string",
                    "description": "in_person | fingerprint | electronic | seal | recorded",
                },
                "signed_at": {"type": "string", "format": "date-time"},
                "effective": {
                    "type": "boolean",
                    "description": "this signature made the version effective: it binds the parties from "
                    "`effective_at` (Art. 31), and the 30 days to apply jointly for judicial confirmation "
                    "run from `effective_on` (民事诉讼法 Art. 205)",
                },
                "effective_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "when effective: the time of the latest signature",
                },
                "effective_on": {
                    "type": "string",
                    "format": "date",
                    "description": "when effective: its day",
                },
                "supersedes": {
                    "type": "integer",
                    "description": "when effective: the number of the oral agreement it put in writing, "
                    "in force until now and superseded by it (Art. 28-30)",
                },
            },
            "actions": ["sign_agreement"],
        },
        "obligation_performed": {
            "summary": "履行登记 An obligation of the agreement was performed",
            "fields": {
                **COMMON_FIELDS,
                "obligation_id": {"type": "string", "format": "uuid"},
                "performed_on": {"type": "string", "format": "date"},
            },
            "actions": ["record_obligation_performance"],
        },
        "obligation_overdue": {
            "summary": "逾期未履行 An obligation passed its due date; a follow-up is in the body's inbox (人民调解法 Art. 31)",
            "fields": {
                **COMMON_FIELDS,
                "obligation_id": {"type": "string", "format": "uuid"},
                "follow_up_id": {"type": "string", "format": "uuid"},
                "body_id": {"type": "string", "format": "uuid"},
                "due_on": {"type": "string", "format": "date"},
            },
            "actions": ["obligation_overdue"],
        },
        "follow_up_completed": {
            "summary": "回访完成 A follow-up ended: its result recorded by the body, or closed because "
            "its agreement was set aside or the case left the center (`outcome` says which)",
            "fields": {
                **COMMON_FIELDS,
                "follow_up_id": {"type": "string", "format": "uuid"},
                "outcome": {"type": "string"},
            },
            "actions": ["complete_follow_up"],
        },
        "handoff_accepted": {
            "summary": "受理 The court or commission accepted the handoff with its own case number",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "target_case_number": {"type": "string"},
                "accepted_on": {"type": "string", "format": "date"},
                "decide_due_on": {"type": ["string", "null"], "format": "date"},
            },
            "actions": ["acknowledge_handoff"],
        },
        "handoff_extended": {
            "summary": "延长审查期限 The court or commission extended its decision period (once)",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "days": {"type": "integer"},
                "decide_due_on": {"type": ["string", "null"], "format": "date"},
            },
            "actions": ["extend_handoff"],
        },
        "handoff_withdrawal_requested": {
            "summary": "申请撤回 After the court or commission accepted, the parties asked, through the body or "
            "center, to withdraw: the target rules or decides (民诉法解释 Art. 357; 民事诉讼法 Art. 148), the case "
            "stays before it",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "handoff_kind": {"type": "string"},
                "target_id": {"type": "string", "format": "uuid"},
                "requested_on": {"type": "string", "format": "date"},
                "party_id": {"type": ["string", "null"], "format": "uuid"},
            },
            "actions": ["request_withdrawal"],
        },
        "handoff_materials_requested": {
            "summary": "要求补充材料 The court asks for more materials by a set day: before acceptance those the "
            "application lacks (民诉法解释 Art. 354), after it proofs insufficient or doubtful (Art. 356); the "
            "items, in the court's words, are on the handoff and the case's timeline",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "target_id": {"type": "string", "format": "uuid"},
                "request_id": {"type": "string", "format": "uuid"},
                "article": {"type": "string"},
                "codes": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the dossier checklist's items asked for, if the request names any",
                },
                "due_on": {"type": "string", "format": "date"},
            },
            "actions": ["request_materials"],
        },
        "handoff_materials_supplied": {
            "summary": "补充材料 The body or center supplied the materials the court asked for; they are frozen into "
            "the dossier",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "target_id": {"type": "string", "format": "uuid"},
                "request_id": {"type": "string", "format": "uuid"},
                "document_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                "due_on": {"type": "string", "format": "date"},
                "late": {
                    "type": "boolean",
                    "description": "supplied after `due_on` (the court judges, Art. 357)",
                },
            },
            "actions": ["supply_materials"],
        },
        "handoff_materials_overdue": {
            "summary": "逾期未补交 The day the court set for more materials passed with nothing supplied (flagged "
            "once); the court may treat the application as withdrawn (民诉法解释 Art. 357)",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "target_id": {"type": "string", "format": "uuid"},
                "request_id": {"type": "string", "format": "uuid"},
                "due_on": {"type": "string", "format": "date"},
            },
            "actions": ["materials_overdue"],
        },
        "handoff_overdue": {
            "summary": "超期 The court or commission is past its deadline to accept or decide (flagged once per step)",
            "fields": {
                **COMMON_FIELDS,
                "handoff_id": {"type": "string", "format": "uuid"},
                "step": {"type": "string", "description": "accept | decide"},
                "due_on": {"type": "string", "format": "date"},
            },
            "actions": ["handoff_overdue"],
        },
        "clock_at_risk": {
            "summary": "时限预警 A deadline is at risk: most of its period is used (reported once)",
            "fields": {**COMMON_FIELDS, **CLOCK_FIELDS},
            "actions": ["clock_at_risk"],
        },
        "clock_overdue": {
            "summary": "时限超期 A deadline has passed (reported once)",
            "fields": {**COMMON_FIELDS, **CLOCK_FIELDS},
            "actions": ["clock_overdue"],
        },
        "clock_window_closed": {
            "summary": "期限届满 The parties' window ran out (the judicial-confirmation application's 30 days, "
            "人民调解法 Art. 33, 民事诉讼法 Art. 205): recorded once, not the center's overdue",
            "fields": {**COMMON_FIELDS, **{k: v for k, v in CLOCK_FIELDS.items() if k != "level"}},
            "actions": ["clock_window_closed"],
        },
        "clock_recounted": {
            "summary": "时限重算 A deadline counted again once its year's holiday schedule was loaded: moved, "
            "or confirmed where it was provisional",
            "fields": {
                **COMMON_FIELDS,
                "clock": {
                    "type": "string",
                    "description": CLOCK_FIELDS["clock"]["description"]
                    + " | handoff_accept | handoff_decide | handoff_enforcement | supervision_response"
                    + " | performance_follow_up",
                },
                "due_on": {"type": "string", "format": "date"},
                "previous_due_on": {"type": "string", "format": "date"},
                "provisional": {"type": "boolean"},
                "source": CLOCK_FIELDS["source"],
                "handoff_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "for a court's or commission's step: the handoff it belongs to",
                },
                "overdue_withdrawn": {
                    "type": "boolean",
                    "description": "it had been reported late (clock_overdue, handoff_overdue, an escalated "
                    "order) on its old last day and is not late on the new one: that report no longer stands",
                },
                "order_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "for a supervision order's default answer date: the order",
                },
                "follow_up_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "for an overdue obligation's follow-up: the follow-up task",
                },
            },
            "actions": ["clock_recounted"],
        },
        "clock_paused": {
            "summary": "中止计时 A clock was paused while waiting on a party",
            "fields": {**COMMON_FIELDS, "clock": CLOCK_FIELDS["clock"], "reason": {"type": "string"}},
            "actions": ["clock_paused"],
        },
        "clock_resumed": {
            "summary": "恢复计时 A paused clock runs again; its last day moved by the days it stood still",
            "fields": {
                **COMMON_FIELDS,
                "clock": CLOCK_FIELDS["clock"],
                "skipped": {"type": "integer"},
                "due_on": CLOCK_FIELDS["due_on"],
            },
            "actions": ["clock_resumed"],
        },
        "clock_extended": {
            "summary": "延长期限 A deadline was extended (with the parties' consent where required)",
            "fields": {
                **COMMON_FIELDS,
                "clock": CLOCK_FIELDS["clock"],
                "units": {"type": "integer"},
                "unit": {"type": "string"},
                "due_on": CLOCK_FIELDS["due_on"],
                "consenting_party_ids": {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid"},
                    "description": "the parties who agreed to the extension, as recorded with it; every applicant "
                    "and respondent where the rule asks for both parties' consent",
                },
            },
            "actions": ["clock_extended"],
        },
        "supervision_issued": {
            "summary": (
                "督办 A supervisor issued a supervision order on the case, or an open order followed "
                "the case to its new body (action supervision_readdressed)"
            ),
            "fields": {**COMMON_FIELDS, **ORDER_FIELDS},
            "actions": ["supervision_issued", "supervision_readdressed"],
        },
        "supervision_responded": {
            "summary": "督办答复 The body answered a supervision order",
            "fields": {**COMMON_FIELDS, "order_id": ORDER_FIELDS["order_id"], "late": {"type": "boolean"}},
            "actions": ["supervision_responded"],
        },
        "supervision_escalated": {
            "summary": "督办升级 A supervision order went unanswered past its deadline (reported once)",
            "fields": {**COMMON_FIELDS, **ORDER_FIELDS},
            "actions": ["supervision_escalated"],
        },
        "supervision_lapsed": {
            "summary": (
                "督办随案办结 An open supervision order closed with its case, unanswered: the case's "
                "follow-up ended (withdrawn, handed on to arbitration or litigation, closed or declined)"
            ),
            "fields": {
                **COMMON_FIELDS,
                "order_id": ORDER_FIELDS["order_id"],
                "body_id": {
                    "type": ["string", "null"],
                    "format": "uuid",
                    "description": "the body it was addressed to; null if it was waiting for the case's next body",
                },
                "due_on": ORDER_FIELDS["due_on"],
                "lapse_reason": {
                    "type": "string",
                    "description": "the case's state that ended its follow-up",
                },
            },
            "actions": ["supervision_lapsed"],
        },
        "owner_changed": {
            "summary": "包案 The case owner was set or cleared",
            "fields": {
                **COMMON_FIELDS,
                "owner": {
                    "type": "object",
                    "description": "name, title, user_id, since, set_by; absent when cleared",
                },
            },
            "actions": ["owner_set", "owner_cleared"],
        },
        "query_code_reissued": {
            "summary": "重新生成查询码 The center's window gave the party a new query code for the status "
            "lookup; the old one no longer works. Never the code itself",
            "fields": {
                **COMMON_FIELDS,
                "cause": {
                    "type": "string",
                    "description": "lost (the receipt or slip is lost) | disclosed (someone else may know it)",
                },
            },
            "actions": ["reissue_query_code"],
        },
        "risk_flagged": {
            "summary": "报告风险 Staff on the case flagged it at risk by hand (人民调解法 Art. 25): the danger, "
            "and whether it was reported and to whom; what was seen stays on the timeline. The case's risk "
            "alert is raised (alert_raised) or joined in the same transaction",
            "fields": {
                **COMMON_FIELDS,
                "danger": {
                    "type": "string",
                    "description": "violence | self_harm | gathering | criminal",
                },
                "reported_to": {
                    "type": ["string", "null"],
                    "description": "police | other_department; null: not reported yet",
                },
                "reported_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "when it was reported, with a report",
                },
                "tier": {
                    "type": "object",
                    "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                    "description": "present when the flag moved a case still at the center to the tier for "
                    "risk cases: village | town | county | city",
                },
            },
            "actions": ["flag_risk"],
        },
        "alert_raised": {
            "summary": "预警 The case is part of an early-warning alert (risk words, cluster, repeated dispute)",
            "fields": {**COMMON_FIELDS, **ALERT_FIELDS},
            "actions": ["alert_raised"],
        },
        "alert_acknowledged": {
            "summary": "预警签收 A supervisor acknowledged an alert on the case",
            "fields": {**COMMON_FIELDS, **ALERT_FIELDS},
            "actions": ["alert_acknowledged"],
        },
        "alert_resolved": {
            "summary": "预警处置 An alert on the case was resolved",
            "fields": {**COMMON_FIELDS, **ALERT_FIELDS},
            "actions": ["alert_resolved"],
        },
        "visit_attempted": {
            "summary": "回访未联系上 A follow-up visit try did not reach the parties",
            "fields": {**COMMON_FIELDS, **VISIT_FIELDS},
            "actions": ["visit_attempted"],
        },
        "visit_completed": {
            "summary": "回访 The follow-up visit was done, with the satisfaction rating",
            "fields": {**COMMON_FIELDS, **VISIT_FIELDS},
            "actions": ["visit_completed"],
        },
        "visit_impossible": {
            "summary": "无法回访 No follow-up visit is possible (parties unreachable, or a stated reason)",
            "fields": {**COMMON_FIELDS, "follow_up_id": VISIT_FIELDS["follow_up_id"]},
            "actions": ["visit_impossible"],
        },
        "document_withdrawn": {
            "summary": "撤回材料 A document was withdrawn (kept, with its reason, which stays on the timeline): "
            "work on the case, one timeline entry, the version moved on by one",
            "fields": {**COMMON_FIELDS, "document_id": {"type": "string", "format": "uuid"}},
            "actions": ["withdraw_document"],
        },
    }
    for t in TRANSITIONS:
        entry = entries.setdefault(
            t.event, {"summary": "", "fields": {**COMMON_FIELDS, **TRANSITION_FIELDS}, "actions": []}
        )
        labels = f"{t.label.zh} {t.label.en}"
        if labels not in entry["summary"]:
            entry["summary"] = f"{entry['summary']} / {labels}".strip(" /")
        if t.action.value not in entry["actions"]:
            entry["actions"].append(t.action.value)
        if t.action in HANDOFF_OPENINGS | HANDOFF_DECISIONS:
            entry["fields"].update(HANDOFF_FIELDS)
        if t.action == Action.refer_litigation:
            entry["fields"]["lapsed_handoff_id"] = LAPSED_HANDOFF_FIELD
    return [
        {
            "type": TYPE_PREFIX + name,
            "source": SOURCE,
            "summary": entry["summary"],
            "actions": entry.get("actions", ["register"] if name == "registered" else ["record_consent"]),
            "data": {"type": "object", "properties": entry["fields"], "required": list(COMMON_FIELDS)},
        }
        for name, entry in sorted(entries.items())
    ]


def event_types() -> list[str]:
    return [e["type"] for e in catalogue()]


def document() -> dict[str, Any]:
    """The catalogue as a standalone JSON document (committed as `openapi/events.json`)."""
    return {
        "title": "Mediation center events",
        "specversion": "1.0",
        "description": (
            "CloudEvents 1.0 (structured JSON). Delivered by webhooks signed per the Standard "
            "Webhooks spec (webhook-id is the event id, the same on every retry), or pulled from "
            "GET /v1/events in commit order. Payloads carry ids and states only: fetch details "
            "through the API with your own credentials."
        ),
        "envelope": {
            "specversion": "1.0",
            "id": "event id (UUID); also the webhook-id",
            "source": SOURCE,
            "type": f"{TYPE_PREFIX}<event>",
            "subject": "the case number",
            "time": "RFC 3339 UTC time of the change",
            "datacontenttype": "application/json",
            "sequence": "position in the feed as 19 digits with leading zeros, increasing in commit "
            "order: it orders alike compared as text or as a number",
        },
        "events": catalogue(),
    }
