"""Every mapped table, imported in one place for Alembic and the tests."""

from mediation.bodies.models import Body
from mediation.core.idempotency import IdempotencyRecord
from mediation.disputes.models import CaseNumberCounter, Dispute, Party, TimelineEntry
from mediation.events.models import OutboxEvent

__all__ = [
    "Body",
    "CaseNumberCounter",
    "Dispute",
    "IdempotencyRecord",
    "OutboxEvent",
    "Party",
    "TimelineEntry",
]
