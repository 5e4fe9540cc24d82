from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent

SOURCE = "/mediation/disputes"
TYPE_PREFIX = "cn.mediation.dispute."


def record_dispute_event(
    session: AsyncSession, dispute: Dispute, name: str, data: dict[str, Any], at: datetime
) -> OutboxEvent:
    event = OutboxEvent(
        type=TYPE_PREFIX + name,
        source=SOURCE,
        subject=dispute.case_number,
        dispute_id=dispute.id,
        data={"dispute_id": str(dispute.id), "case_number": dispute.case_number, **data},
        created_at=at,
    )
    session.add(event)
    return event
