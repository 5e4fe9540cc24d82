"""`GET /metrics`: the process's own figures (core.metrics) and the deployment's, read from the
database at each scrape with small indexed queries, so a scrape every 15 seconds costs the database
next to nothing even at a million cases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import __version__
from mediation.alerts.models import Alert
from mediation.audit.models import AuditChainHead, AuditSeal
from mediation.core import metrics
from mediation.core.db import Database, utcnow
from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent, WebhookDelivery, WebhookSubscription


class _Figures(Collector):
    """Figures already read, handed to the registry as it collects."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


async def _deployment(session: AsyncSession) -> list[GaugeMetricFamily]:
    now = utcnow()
    info = GaugeMetricFamily("mediation_info", "The service's version.", labels=["version"])
    info.add_metric([__version__], 1)

    attention = GaugeMetricFamily(
        "mediation_cases_needing_attention",
        "Cases waiting for a supervisor, by the most urgent reason (risk, triage_exhausted, "
        "supervision_overdue).",
        labels=["reason"],
    )
    rows = await session.execute(
        select(Dispute.attention, func.count())
        .where(Dispute.attention.is_not(None))
        .group_by(Dispute.attention)
    )
    counted = {key: count for key, count in rows.all()}
    for reason in ("risk", "triage_exhausted", "supervision_overdue"):
        attention.add_metric([reason], counted.get(reason, 0))

    deadlines = GaugeMetricFamily(
        "mediation_case_deadlines",
        "Cases by the level of their most urgent running deadline (at_risk, overdue).",
        labels=["level"],
    )
    rows = await session.execute(
        select(Dispute.clock_level, func.count())
        .where(Dispute.clock_level.in_(("at_risk", "overdue")))
        .group_by(Dispute.clock_level)
    )
    counted = {key: count for key, count in rows.all()}
    for level in ("at_risk", "overdue"):
        deadlines.add_metric([level], counted.get(level, 0))

    alerts = GaugeMetricFamily(
        "mediation_alerts_open",
        "Early-warning alerts not resolved, by kind and level.",
        labels=["kind", "level"],
    )
    open_alerts = await session.execute(
        select(Alert.kind, Alert.level, func.count())
        .where(Alert.status.in_(("open", "acknowledged")))
        .group_by(Alert.kind, Alert.level)
    )
    for kind, level, count in open_alerts.all():
        alerts.add_metric([kind, level], count)

    pending, oldest = (
        await session.execute(
            select(func.count(), func.min(WebhookDelivery.created_at)).where(
                WebhookDelivery.status == "pending"
            )
        )
    ).one()
    dead = await session.scalar(select(func.count()).where(WebhookDelivery.status == "dead"))
    failing = await session.scalar(
        select(func.count()).where(
            WebhookSubscription.active.is_(True), WebhookSubscription.failing_since.is_not(None)
        )
    )
    unsequenced = await session.scalar(select(func.count()).where(OutboxEvent.position.is_(None)))
    head = await session.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == 1))
    sealed: datetime | None = await session.scalar(
        select(AuditSeal.sealed_at).order_by(AuditSeal.seq.desc()).limit(1)
    )
    return [
        info,
        attention,
        deadlines,
        alerts,
        _gauge("mediation_webhook_deliveries_pending", "Webhook deliveries waiting to be sent.", pending),
        _gauge(
            "mediation_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery still waiting (0 when none waits).",
            (now - oldest).total_seconds() if oldest is not None else 0,
        ),
        _gauge(
            "mediation_webhook_deliveries_dead",
            "Webhook deliveries given up after the last retry.",
            dead or 0,
        ),
        _gauge(
            "mediation_webhook_subscriptions_failing",
            "Active webhook subscriptions whose receiver has been failing.",
            failing or 0,
        ),
        _gauge(
            "mediation_events_unsequenced",
            "Events committed but not yet given their feed position (normally 0 between writes).",
            unsequenced or 0,
        ),
        _gauge("mediation_audit_records", "Records in the audit chain (its head's number).", head or 0),
        _gauge(
            "mediation_audit_last_seal_timestamp_seconds",
            "When the audit chain was last sealed (Unix time; 0 if never).",
            sealed.timestamp() if sealed is not None else 0,
        ),
    ]


async def exposition(db: Database) -> bytes:
    """The text a Prometheus scrape reads."""
    if metrics.multiprocess():
        # Every worker's counts, added up from their files (core.metrics).
        process = CollectorRegistry()
        MultiProcessCollector(process)  # type: ignore[no-untyped-call]
    else:
        process = REGISTRY
    async with db.reader() as session:
        figures = await _deployment(session)
    deployment = CollectorRegistry()
    deployment.register(_Figures(figures))
    return generate_latest(process) + generate_latest(deployment)
