from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.clocks.counted import PROVISIONAL, PROVISIONAL_SQLITE, WorkingDaysDue
from mediation.core.db import Base, JSONType, new_id


class MediationSession(Base):
    """One sitting of the mediation (调解会): when and where, who came, the minutes (调解笔录) and
    how it ended. Lands on the case's timeline when scheduled and when recorded."""

    __tablename__ = "mediation_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"))
    scheduled_at: Mapped[datetime]
    place: Mapped[str | None] = mapped_column(String(200))
    online: Mapped[bool]
    status: Mapped[str] = mapped_column(String(12))  # scheduled | held | cancelled
    held_at: Mapped[datetime | None]
    attendees: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    minutes: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(30))
    # The party who refused mediation or demanded its end, when that is the outcome.
    party_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    mediator_name: Mapped[str | None] = mapped_column(String(100))
    # Called off: by the body, with its reason (a party cannot come, the room is taken), or with
    # the case when mediation at the body ended (no reason: the case's timeline says why).
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # Moved (改期) while still to be held, oldest first: each move's earlier and new time and place,
    # the body's reason, when and by whom. The sitting keeps its id; `scheduled_at`, `place` and
    # `online` are where it stands now.
    reschedules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    @property
    def rescheduled_count(self) -> int:
        return len(self.reschedules or [])


class Agreement(Base):
    """The mediation agreement (调解协议书) as data, one row per version. A version is a draft until
    every party, the mediator and the body's seal are on it; then it is effective and never
    changes again. A change after the first signature is a new version with its own signatures.
    At most one version is effective: an oral one being put in writing stays so until the written
    version takes effect, which supersedes it (人民调解法 Art. 29, 30)."""

    __tablename__ = "agreements"
    __table_args__ = (UniqueConstraint("dispute_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    number: Mapped[int]  # 1, 2, ... per case
    form: Mapped[str] = mapped_column(String(10))  # written | oral
    status: Mapped[str] = mapped_column(String(12))  # draft | effective | superseded
    facts: Mapped[str] = mapped_column(Text)  # 主要事实
    disputed_matters: Mapped[str] = mapped_column(Text)  # 争议事项
    responsibility: Mapped[str] = mapped_column(Text)  # 各方责任
    terms: Mapped[list[str]] = mapped_column(JSONType)  # agreed terms other than the obligations
    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"))
    body_name: Mapped[str] = mapped_column(String(200))
    mediator_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mediators.id"))
    mediator_name: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the canonical content: what an electronic signature must have signed.
    content_hash: Mapped[str] = mapped_column(String(64))
    effective_on: Mapped[date | None]
    effective_at: Mapped[datetime | None]
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agreements.id"))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column()

    obligations: Mapped[list[Obligation]] = relationship(
        lazy="raise", order_by="Obligation.position", cascade="all, delete-orphan"
    )
    signatures: Mapped[list[Signature]] = relationship(
        lazy="raise", order_by="Signature.recorded_at", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class Obligation(Base):
    """Who owes what to whom, how, where and by when; followed up by the body (人民调解法 Art. 31)."""

    __tablename__ = "obligations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    position: Mapped[int]
    obligor_party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    obligee_party_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[str] = mapped_column(String(10))  # payment | act
    amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    description: Mapped[str] = mapped_column(Text)
    place: Mapped[str | None] = mapped_column(String(200))
    manner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending | performed | overdue
    overdue_since: Mapped[date | None]
    performed_on: Mapped[date | None]
    performance_note: Mapped[str | None] = mapped_column(Text)
    performance_recorded_by: Mapped[str | None] = mapped_column(String(120))


class Signature(Base):
    """One signature, fingerprint or seal on one agreement version: who, when, how."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (UniqueConstraint("agreement_id", "signer_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    signer: Mapped[str] = mapped_column(String(10))  # party | mediator | body_seal
    # The party's id, or "mediator" / "body_seal": one signature per signer and version.
    signer_key: Mapped[str] = mapped_column(String(40))
    party_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(12))  # in_person | fingerprint | electronic | seal | recorded
    signed_at: Mapped[datetime]
    # For electronic signatures: the hash of what was signed, equal to the version's content_hash.
    document_hash: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime]


class FollowUp(WorkingDaysDue, Base):
    """A task in a body's inbox (or the center's, when no body had the case): an obligation past its
    due date to follow up (人民调解法 Art. 31), or the follow-up visit (回访) after a case is closed."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        UniqueConstraint("kind", "obligation_id"),
        # The inboxes' keyset pages: by due day, and by when the task was raised.
        Index("ix_follow_ups_due_on_id", "due_on", "id"),
        Index("ix_follow_ups_raised_at_id", "raised_at", "id"),
        # Performance follow-ups counted before their year's holidays were known (clocks.counted).
        Index(
            "ix_follow_ups_provisional",
            "due_on",
            postgresql_where=text(PROVISIONAL),
            sqlite_where=text(PROVISIONAL_SQLITE),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    body_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # performance | visit
    obligation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("obligations.id"))
    reason: Mapped[str] = mapped_column(Text)
    # due_on: a visit's follows its clock; a performance follow-up's is counted (WorkingDaysDue)
    status: Mapped[str] = mapped_column(String(10), index=True)  # open | done | impossible
    raised_at: Mapped[datetime]
    # How a done task ended (`result["outcome"]`): the body's follow-up result, a visit's,
    # `performed`, `set_aside` when re-mediation superseded its agreement (民事诉讼法 Art. 206), or,
    # for a performance follow-up ended when the case left the center's hands,
    # `referred_arbitration`, `referred_litigation` or `case_closed` (agreements.service.hand_over).
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(120))
    result: Mapped[dict[str, Any] | None]
    # Visits: each try to reach the parties (method, reached or not, note).
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
