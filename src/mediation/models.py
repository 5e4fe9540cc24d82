"""Every mapped table, imported in one place for Alembic and the tests."""

from mediation.audit.models import AuditChainHead, AuditRecord
from mediation.bodies.models import Body
from mediation.core.idempotency import IdempotencyRecord
from mediation.disputes.models import CaseNumberCounter, Dispute, Party, TimelineEntry
from mediation.documents.models import Blob, Document, Dossier
from mediation.events.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from mediation.identity.models import ApiKey, User

__all__ = [
    "ApiKey",
    "AuditChainHead",
    "AuditRecord",
    "Blob",
    "Body",
    "CaseNumberCounter",
    "Dispute",
    "Document",
    "Dossier",
    "IdempotencyRecord",
    "OutboxEvent",
    "Party",
    "TimelineEntry",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
