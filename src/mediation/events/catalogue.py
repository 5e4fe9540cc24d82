"""The event catalogue: every event type the service publishes, with its payload fields.

Built from the lifecycle table, so a new transition is in the catalogue (and in the committed
`openapi/events.json`) as soon as it exists.
"""

from __future__ import annotations

from typing import Any

from mediation.disputes.lifecycle import TRANSITIONS
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


def catalogue() -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {
        "registered": {
            "summary": "登记 A dispute was registered at the window",
            "fields": {
                **COMMON_FIELDS,
                "to": TRANSITION_FIELDS["to"],
                "channel": {"type": "string"},
                "category": {"type": "string"},
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
        "document_added": {
            "summary": "A document was added to the case (uploaded or generated)",
            "fields": {
                **COMMON_FIELDS,
                "document_id": {"type": "string", "format": "uuid"},
                "kind": {"type": "string"},
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
        "document_withdrawn": {
            "summary": "A document was withdrawn (kept, with its reason)",
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
            "sequence": "position in the feed (string of digits), increasing in commit order",
        },
        "events": catalogue(),
    }
