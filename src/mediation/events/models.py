from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(Base):
    """A CloudEvents 1.0 envelope, written in the transaction of the change it reports (the
    transactional outbox). Thin payloads: ids and states, never personal data.

    `position` is the order readers see. It is not the insert order: on PostgreSQL a transaction
    that started first can commit last, so an id or timestamp cursor could step over an event
    that commits later. The sequencer numbers events only once they are committed, one sequencer
    at a time, so a reader paging by position never skips one.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_unsequenced",
            "created_at",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
        Index(
            "ix_outbox_events_body_id_position",
            "body_id",
            "position",
            postgresql_where=text("body_id IS NOT NULL"),
            sqlite_where=text("body_id IS NOT NULL"),
        ),
        Index(
            "ix_outbox_events_target_id_position",
            "target_id",
            "position",
            postgresql_where=text("target_id IS NOT NULL"),
            sqlite_where=text("target_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(80), index=True)
    source: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(32))
    dispute_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("disputes.id"), index=True)
    # Who the event was addressed to when it happened (disputes.scope.event_visible_to): the body
    # holding the case and the court or commission it was handed to, as the change left them or,
    # for a change that took the case away from them, as they were before it.
    body_id: Mapped[uuid.UUID | None]
    target_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]  # when it was sequenced (and fanned out to webhooks)
    position: Mapped[int | None] = mapped_column(BIGINT, unique=True)


class WebhookSubscription(Base):
    """An organisation's endpoint for events. It sees what its owner (organisation and role) may see."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSONType)  # empty: every type
    description: Mapped[str | None] = mapped_column(String(200))
    # whsec_ secrets, encrypted at rest; during rotation the previous one signs too until it expires.
    secret_enc: Mapped[str] = mapped_column(String(300))
    previous_secret_enc: Mapped[str | None] = mapped_column(String(300))
    previous_secret_expires_at: Mapped[datetime | None]
    active: Mapped[bool]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # When the failure began that no accepted attempt has ended since: the start of the first failed
    # attempt after the last accepted one, None while the last one was accepted (or none was made).
    # The relay keeps it (`Relay.record`) and disables the subscription when it is old enough;
    # re-enabling the subscription clears it. Changing it does not renew the subscribers' version:
    # it decides nothing about who receives events (migration 0024).
    failing_since: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event for one subscription: pending until delivered, dead after the last retry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # Named as migration 0003 created it, before the naming convention listed every column.
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_subscription_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_subscriptions.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"))
    status: Mapped[str] = mapped_column(String(12))  # pending | delivered | dead | cancelled
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    # A relay's claim: other relays skip the row until the lease ends (a killed relay's claim lapses).
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """The log of every delivery attempt: status and latency."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempt: Mapped[int]
    relay_id: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)


class WebhookSubscribersVersion(Base):
    """One row: a token that changes whenever who receives events may have changed (a
    subscription, or its organisation's `active` flag or region code). Database triggers change
    it (migration 0015); the writes read it with the journal head and keep the subscription list
    under it (events/sequencer.py)."""

    __tablename__ = "webhook_subscribers_version"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32))


class OutboxHorizon(Base):
    """One row: the feed's oldest edge. Events up to `purged_through` (by position) were deleted
    past the retention period (`MEDIATION_EVENT_RETENTION_DAYS`, events/relay.py); a reader whose
    cursor lies before it has missed some of them, and is told so (410) rather than given the
    rest as if nothing were missing. Written in the transaction that deletes them."""

    __tablename__ = "outbox_horizon"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    purged_through: Mapped[int] = mapped_column(BIGINT, server_default="0")
    purged_at: Mapped[datetime | None]
