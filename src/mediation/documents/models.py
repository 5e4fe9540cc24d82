from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class Blob(Base):
    """Stored content, addressed by its SHA-256: the same file uploaded twice is stored once."""

    __tablename__ = "document_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BIGINT)
    media_type: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class Document(Base):
    """A file attached to a case. Never hard-deleted; a withdrawal keeps it with its reason."""

    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    original_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(ForeignKey("document_blobs.sha256"))
    size: Mapped[int] = mapped_column(BIGINT)
    media_type: Mapped[str] = mapped_column(String(120))
    # Who handed it in: a party (at the window), the mediating body, a court, the center, the service.
    submitted_by_kind: Mapped[str] = mapped_column(String(10))
    submitted_by_party_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    submitted_by: Mapped[str] = mapped_column(String(120))
    # The organisation `submitted_by` belonged to when it handed the document in: the one that may
    # take it back and, a court or commission, is shown it. Kept here, as an account may move to
    # another organisation since (None: the service's own, or an account of no organisation).
    submitted_by_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"))
    submitted_role: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(24))  # the case's state at upload
    generated: Mapped[bool]
    contains_personal_data: Mapped[bool]
    # Added after the case was handed off: not part of the frozen dossier, and shown as late.
    late: Mapped[bool]
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # active | withdrawn
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    withdrawn_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Dossier(Base):
    """The documents a handoff carries, frozen when the case is handed off."""

    __tablename__ = "dossiers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # judicial_confirmation | arbitration | litigation
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"))
    case_version: Mapped[int]
    manifest: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    frozen_at: Mapped[datetime]
    # Set on a dossier frozen again while its handoff is open, with the materials the court asked
    # for (民诉法解释 Art. 354, 356): the handoff it belongs to. Null on a dossier frozen when the
    # case was handed off, which is its handoff's by time (the latest frozen by then).
    handoff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("handoffs.id"))
