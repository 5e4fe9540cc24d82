from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediation.core.db import HOOKS_BEFORE_COMMIT, ordered_id
from mediation.core.pii import redact_value
from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent

SOURCE = "/mediation/disputes"
TYPE_PREFIX = "cn.mediation.dispute."
PENDING_KEY = "mediation.outbox"  # session.info: this transaction's events, in order
SEQUENCE_WIDTH = 19  # digits of the largest position, a signed 64-bit integer


def record_dispute_event(
    session: AsyncSession,
    dispute: Dispute,
    name: str,
    data: dict[str, Any],
    at: datetime,
    *,
    holders_before: tuple[uuid.UUID | None, uuid.UUID | None] | None = None,
) -> OutboxEvent:
    """The event of a change to `dispute`, addressed to the body and the court or commission the
    change left it with. `holders_before` (body, target) are those the case had before the change:
    a change that took the case away from one (a transfer, a return, a remediation) is theirs too,
    so they learn of it."""
    body_id, target_id = dispute.body_id, dispute.handoff_target_id
    if holders_before is not None:
        body_id = body_id or holders_before[0]
        target_id = target_id or holders_before[1]
    event = OutboxEvent(
        id=ordered_id(),
        type=TYPE_PREFIX + name,
        source=SOURCE,
        subject=dispute.case_number,
        dispute_id=dispute.id,
        body_id=body_id,
        target_id=target_id,
        # Free text some events carry (a case owner's name and title, a note) may quote an ID or a
        # mobile number a clerk typed in. Events go to every reader of the case, those without
        # `pii:read` too, so they are masked here as the case's own view masks them for such
        # readers (个人信息保护法 Art. 6, 51: minimum necessary, de-identification).
        data=redact_value({"dispute_id": str(dispute.id), "case_number": dispute.case_number, **data}),
        created_at=at,
    )
    # Numbered in commit order just before the transaction commits (events.sequencer). Where that is
    # sure to happen, the numbering adds the event too, so it is written once, with its position;
    # elsewhere it is written now and the relay's sequencer numbers it after the commit.
    if not session.info.get(HOOKS_BEFORE_COMMIT):
        session.add(event)
    session.info.setdefault(PENDING_KEY, []).append(event)
    return event


def cloudevent(event: OutboxEvent) -> dict[str, Any]:
    """The structured-mode CloudEvents 1.0 JSON of an outbox row."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event.id),
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        # Masked again as it is sent: rows written before `record_dispute_event` masked them.
        "data": redact_value(event.data),
    }
    if event.position is not None:
        # CloudEvents "sequence" extension: a string that orders the events of one source as
        # strings compare. The position's plain digits do not ("10" < "9"), so it is written with
        # leading zeros to the width of the largest position (2**63 - 1): it still reads as the
        # integer. The feed's own cursor holds the position as a number.
        body["sequence"] = f"{event.position:0{SEQUENCE_WIDTH}d}"
    return body
