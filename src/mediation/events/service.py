from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent

SOURCE = "/mediation/disputes"
TYPE_PREFIX = "cn.mediation.dispute."
PENDING_KEY = "mediation.outbox"  # session.info: this transaction's events, in order

_last_id = 0


def event_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562) that increases with every call in this process.

    Events written outside a request are numbered later by (created_at, id); the events of one
    transaction usually share created_at (one clock reading, or a frozen clock), so the id must keep
    the order they were written in (a case's `registered` before its `accepted`). Within one
    millisecond the random part counts up (RFC 9562 §6.2, method 2); the `uuid6` package instead
    advances the millisecond, which runs ahead of the clock in bursts."""
    global _last_id
    candidate = ((time.time_ns() // 1_000_000) << 74) | secrets.randbits(74)
    _last_id = payload = max(candidate, _last_id + 1)  # 48-bit ms, then 74 bits random/counter
    value = (
        ((payload >> 74) << 80)
        | (0x7 << 76)  # version 7
        | (((payload >> 62) & 0xFFF) << 64)
        | (0b10 << 62)  # RFC 9562 variant
        | (payload & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def record_dispute_event(
    session: AsyncSession, dispute: Dispute, name: str, data: dict[str, Any], at: datetime
) -> OutboxEvent:
    event = OutboxEvent(
        id=event_id(),
        type=TYPE_PREFIX + name,
        source=SOURCE,
        subject=dispute.case_number,
        dispute_id=dispute.id,
        data={"dispute_id": str(dispute.id), "case_number": dispute.case_number, **data},
        created_at=at,
    )
    session.add(event)
    # Numbered in commit order just before the transaction commits (events.sequencer).
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
        "data": event.data,
    }
    if event.position is not None:
        # CloudEvents "sequence" extension: a string that orders events from one source.
        body["sequence"] = str(event.position)
    return body
