from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base

GENESIS_HASH = "0" * 64


class AuditRecord(Base):
    """One audited event. Append-only (database triggers refuse UPDATE, DELETE of anything
    younger than the legal minimum, of a disclosure of personal data younger than three years, and
    on PostgreSQL TRUNCATE: migrations 0002, 0027) and hash-chained: `hash` covers the record's canonical JSON
    (RFC 8785) including `prev_hash`, so editing, removing or reordering rows breaks the chain.

    Holds no personal data: who (role, id, organisation), what (action, object), when (UTC), from
    where (client address, request id) and the outcome (等保 level 3 audit content).
    """

    __tablename__ = "audit_records"
    # A case's wrong query codes and the right one or new code before them, within the lock's window
    # (disputes/lookup.py `recent_failures`): read from the index alone, whatever the case's history
    # (migration 0041).
    __table_args__ = (
        Index("ix_audit_records_object_id_action_occurred_at", "object_id", "action", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(120))
    organisation_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChainHead(Base):
    """The chain's last link. Appenders lock this single row, so records get contiguous numbers
    and exactly one successor each (no forks), and truncating the tail is detectable."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    # The last event position handed out (events/sequencer.py), kept here because whoever numbers
    # events holds this row already: no max() over the events inside the section every write waits for.
    last_position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), server_default="0"
    )


class AuditSeal(Base):
    """A keyed seal of the chain's head: `mac` is an HMAC, under a key the database does not hold,
    of the head's number and hash at `sealed_at` (audit/seal.py).

    The hash chain alone shows any edit made without rehashing; someone with full rights over the
    database can still rewrite a record and rehash everything after it. A seal binds the head's
    hash, which binds every record before it, to a key kept outside the database: a chain
    rewritten up to a sealed record no longer matches its seal, and no new seal can be made
    without the key (等保 level 3: integrity of audit records).
    """

    __tablename__ = "audit_seals"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), index=True)
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime]
    # Which key made it (the first 16 hex digits of the key's SHA-256): a seal made with a key the
    # service no longer holds is told apart from a forged one.
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))
