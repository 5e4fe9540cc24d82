"""Every mapped table, imported in one place for Alembic and the tests."""

from mediation.agreements.models import Agreement, FollowUp, MediationSession, Obligation, Signature
from mediation.alerts.models import Alert, AlertCase
from mediation.audit.models import AuditChainHead, AuditRecord
from mediation.bodies.models import Body, BodyJurisdiction, Mediator, MediatorConflict
from mediation.clocks.models import CalendarDay, CalendarYear, CaseClock
from mediation.core.idempotency import IdempotencyRecord
from mediation.disputes.models import (
    Assignment,
    CaseLink,
    CaseNumberCounter,
    Dispute,
    Party,
    TimelineEntry,
)
from mediation.documents.models import Blob, Document, Dossier
from mediation.events.models import (
    OutboxEvent,
    OutboxHorizon,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscribersVersion,
    WebhookSubscription,
)
from mediation.handoffs.models import Handoff
from mediation.identity.models import ApiKey, User
from mediation.stats.models import StatsRefreshState, StatsRollup
from mediation.supervision.models import SupervisionOrder
from mediation.triage.models import TriageRuleSet

__all__ = [
    "Agreement",
    "Alert",
    "AlertCase",
    "ApiKey",
    "Assignment",
    "AuditChainHead",
    "AuditRecord",
    "Blob",
    "Body",
    "BodyJurisdiction",
    "CalendarDay",
    "CalendarYear",
    "CaseClock",
    "CaseLink",
    "CaseNumberCounter",
    "Dispute",
    "Document",
    "Dossier",
    "FollowUp",
    "Handoff",
    "IdempotencyRecord",
    "MediationSession",
    "Mediator",
    "MediatorConflict",
    "Obligation",
    "OutboxEvent",
    "OutboxHorizon",
    "Party",
    "Signature",
    "StatsRefreshState",
    "StatsRollup",
    "SupervisionOrder",
    "TimelineEntry",
    "TriageRuleSet",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscribersVersion",
    "WebhookSubscription",
]
