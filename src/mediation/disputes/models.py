from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.core.db import Base, JSONType, new_id
from mediation.disputes.court_delegation import is_court_delegated

# GB/T 2260 and its town (乡镇/街道) extension: a case's 12-digit code begins with its town's 9.
TOWN_DIGITS = 9
# The constants are written into the SQL, not bound: a query matches an expression index only when
# it repeats the indexed expression exactly.
_TOWN_SQL = f"substr(region_code, 1, {TOWN_DIGITS})"


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        # One case per referral: a platform's retried push, or the same number typed in twice, never
        # makes a second case. Per issuing side (disputes.references.reference_scope): another
        # county's platform or another court may issue the same number for another dispute.
        UniqueConstraint("channel", "external_reference", "reference_scope"),
        Index("ix_disputes_created_at_id", "created_at", "id"),
        Index("ix_disputes_status_created_at", "status", "created_at"),
        # The window's usual list: a state and a category, newest first (make bench: 2.5 s at a
        # million cases with the status index alone, scanning every case in that state).
        Index("ix_disputes_status_category_created_at", "status", "category", "created_at", "id"),
        # Early warning's category wave: the cases of one town and category in a few days
        # (alerts.service), on every intake.
        Index("ix_disputes_town_category_created_at", text(_TOWN_SQL), "category", "created_at"),
        # Early warning's place wave: the cases at one place in a few days (alerts.service).
        Index(
            "ix_disputes_place_key_created_at",
            "place_key",
            "created_at",
            postgresql_where=text("place_key IS NOT NULL"),
            sqlite_where=text("place_key IS NOT NULL"),
        ),
        # Triage counts each body's active cases (its load); counted from this index alone.
        Index(
            "ix_disputes_active_body",
            "body_id",
            postgresql_where=text("status IN ('assigned', 'mediating')"),
            sqlite_where=text("status IN ('assigned', 'mediating')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    query_code_hash: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(40), index=True)
    subject_matters: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20), index=True)
    # In its canonical form (disputes.references.canonical_reference).
    external_reference: Mapped[str | None] = mapped_column(String(64))
    # Whose numbering the reference belongs to, fixed at intake with it: the county the case was
    # registered in, or the delegating court's id (disputes.references.reference_scope).
    reference_scope: Mapped[str | None] = mapped_column(String(36))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    # The address as early warning recognises a place (alerts.detect.place_key), set at intake.
    place_key: Mapped[str | None] = mapped_column(String(200))
    amount_in_dispute: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    people_involved: Mapped[int]
    severity: Mapped[str] = mapped_column(String(10))
    is_group: Mapped[bool]
    is_risk: Mapped[bool]
    tier: Mapped[str] = mapped_column(String(10))
    # Set by escalation only: the lowest tier triage may offer from then on. The intake tier is
    # not a floor, so a change of the rules applies to cases not yet escalated.
    escalated_tier: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(nullable=False)
    body_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"), index=True)
    handoff_target_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"), index=True)
    # For court-delegated mediation (特邀调解): the inviting court, competent to confirm the
    # agreement (民事诉讼法 Art. 205).
    inviting_court_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"))
    # A court-delegated case only: when in the court's case it was delegated (CourtStage; 特邀调解规定
    # Art. 27 sets the period by it), and the court's number for its case, if given.
    court_stage: Mapped[str | None] = mapped_column(String(24))
    court_case_number: Mapped[str | None] = mapped_column(String(64))
    mediator_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mediators.id"))
    mediator_name: Mapped[str | None] = mapped_column(String(100))
    # The assigned body must sign for the case by this day (working days; see triage).
    sign_for_due_on: Mapped[date | None]
    # The clerk's judgement at intake (simple / general / complex): the handling deadline follows it.
    complexity: Mapped[str | None] = mapped_column(String(10))
    # The most urgent running clock, kept by the clock service for lists and the case page.
    clock: Mapped[dict[str, Any] | None]
    clock_level: Mapped[str | None] = mapped_column(String(10), index=True)
    clock_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # 包案领导: the official who owns a hard case until it is resolved.
    owner: Mapped[dict[str, Any] | None]
    # Why a supervisor must look at the case now (e.g. every candidate body returned it).
    attention: Mapped[str | None] = mapped_column(String(40), index=True)
    # 民法典 Art. 195: applying for people's mediation interrupts the limitation period.
    applied_on: Mapped[date]
    mediation_started_on: Mapped[date | None]
    agreement: Mapped[dict[str, Any] | None]
    agreement_effective_on: Mapped[date | None]
    handoff: Mapped[dict[str, Any] | None]
    outcome: Mapped[dict[str, Any] | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None]
    # Milestones for the supervisors' statistics (stage durations, success and confirmation
    # rates), set by the lifecycle; the timeline holds the same facts in full.
    accepted_at: Mapped[datetime | None]
    mediation_started_at: Mapped[datetime | None]
    mediation_ended_at: Mapped[datetime | None]
    mediation_result: Mapped[str | None] = mapped_column(String(12))  # agreement | failed | withdrawn
    confirmation_requested_at: Mapped[datetime | None]
    confirmation_decided_at: Mapped[datetime | None]
    confirmation_result: Mapped[str | None] = mapped_column(String(16))  # confirmed | rejected | ...
    # Any of the case's clocks went red at least once.
    ever_overdue: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The follow-up visit's satisfaction rating (1-5), when one was given.
    satisfaction: Mapped[int | None]

    parties: Mapped[list[Party]] = relationship(
        back_populates="dispute", lazy="raise", order_by="Party.position", cascade="all, delete-orphan"
    )

    @property
    def court_delegated(self) -> bool:
        """特邀调解: the one predicate the consent guard, the clocks and the choice of court read."""
        return is_court_delegated(self.channel, self.inviting_court_id)

    # The service bumps the version on every change, even one that touches only child rows; the
    # UPDATE still carries `WHERE version = <old>`, so a concurrent writer fails instead of overwriting.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


# The town of a case, as the index on it spells it (see _TOWN_SQL).
town_of_case = func.substr(Dispute.region_code, literal_column("1"), literal_column(str(TOWN_DIGITS)))


class Party(Base):
    __tablename__ = "parties"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    position: Mapped[int]
    role: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    id_type: Mapped[str | None] = mapped_column(String(40))
    # Personal data (民法典 Art. 1034; 个人信息保护法 Art. 51): AES-GCM ciphertext bound to this row
    # and column, a masked copy for roles without pii:read, and a keyed hash to find the same
    # person across cases without decrypting.
    id_number_enc: Mapped[str | None] = mapped_column(String(200))
    id_number_masked: Mapped[str | None] = mapped_column(String(40))
    id_number_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(String(200))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    # Where the party lives (GB/T 2260), for the court of the party's domicile (民事诉讼法 Art. 205).
    region_code: Mapped[str | None] = mapped_column(String(12))
    # 送达地址, where the court serves its papers when not at `address` (法释〔2011〕5号 Art. 3).
    service_address: Mapped[str | None] = mapped_column(String(200))
    # Organisations only: the 法定代表人 or 主要负责人 it acts through (民事诉讼法 Art. 51).
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    # Agents only: the `position` of the party of the same case the agent acts for.
    represents_position: Mapped[int | None]
    consent: Mapped[str] = mapped_column(String(10))
    # Organisations only: the name normalised (width, spaces, brackets), to find other cases
    # against the same company when it has no credit code on file. Never set for persons: a
    # person's name alone is not an identity.
    name_key: Mapped[str | None] = mapped_column(String(200), index=True)

    dispute: Mapped[Dispute] = relationship(back_populates="parties", lazy="raise")


class TimelineEntry(Base):
    """Append-only (database triggers refuse UPDATE and DELETE). `seq` equals the case version it produced."""

    __tablename__ = "timeline_entries"
    __table_args__ = (UniqueConstraint("dispute_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"))
    seq: Mapped[int]
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(120))
    # The actor's organisation when it acted (None: the service, or an account of no organisation):
    # whose entry it is, whatever organisation the account has moved to since.
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]


class CaseNumberCounter(Base):
    """Per region and year: case numbers are dense and human-readable (一案一码)."""

    __tablename__ = "case_number_counters"

    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_value: Mapped[int]


class Assignment(Base):
    """One sending of a case to a body (指派), from assignment until it ends: signed for, returned,
    lapsed (not signed for in time), transferred, escalated or withdrawn. Re-triage never offers a
    body again that returned the case, let it lapse or transferred it away."""

    __tablename__ = "assignments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), index=True)
    assigned_at: Mapped[datetime]
    assigned_by: Mapped[str] = mapped_column(String(120))
    sign_by: Mapped[date]
    signed_for_at: Mapped[datetime | None]
    # The recommendation taken (its rank in the triage answer), or the clerk's reason for overriding it.
    rank: Mapped[int | None]
    override_reason: Mapped[str | None] = mapped_column(Text)
    recommendation: Mapped[dict[str, Any]]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_reason: Mapped[str | None] = mapped_column(Text)


class CaseLink(Base):
    """Two cases a clerk linked: the same dispute arriving by window, hotline and grid report, or
    disputes that belong together. Stored once per pair, the lower id first."""

    __tablename__ = "case_links"
    # Named as migration 0005 created it, before the naming convention listed every column.
    __table_args__ = (UniqueConstraint("first_id", "second_id", name="uq_case_links_first_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    first_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    second_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
