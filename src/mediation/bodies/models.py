from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id


class BodyKind(StrEnum):
    mediation_center = "mediation_center"  # 矛盾纠纷调处中心: the window; its staff see its region
    people_mediation_committee = "people_mediation_committee"  # 人民调解委员会
    industry_mediation = "industry_mediation"  # 行业性专业性调解组织
    administrative_mediation = "administrative_mediation"  # 行政调解
    lawyer_mediation = "lawyer_mediation"  # 律师调解
    court_invited_mediation = "court_invited_mediation"  # 法院特邀调解组织
    court = "court"  # 人民法院 (handoff target)
    labour_arbitration_commission = "labour_arbitration_commission"  # 劳动人事争议仲裁委员会
    commercial_arbitration_commission = "commercial_arbitration_commission"  # 仲裁委员会
    rural_land_arbitration_commission = "rural_land_arbitration_commission"  # 农村土地承包仲裁委员会


MEDIATING_KINDS = frozenset(
    {
        BodyKind.people_mediation_committee,
        BodyKind.industry_mediation,
        BodyKind.administrative_mediation,
        BodyKind.lawyer_mediation,
        BodyKind.court_invited_mediation,
    }
)
ARBITRATION_KINDS = frozenset(
    {
        BodyKind.labour_arbitration_commission,
        BodyKind.commercial_arbitration_commission,
        BodyKind.rural_land_arbitration_commission,
    }
)


# Bodies that are handoff targets, not mediators: triage never recommends them.
HANDOFF_KINDS = frozenset({BodyKind.court}) | ARBITRATION_KINDS

DEFAULT_CAPACITY = 30


class Body(Base):
    """A mediation body, court or arbitration commission (or a center, which is the window)."""

    __tablename__ = "bodies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    tier: Mapped[str] = mapped_column(String(10))
    # Where the body sits (GB/T 2260, 12 digits); what it covers is in body_jurisdictions.
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    # Dispute categories it takes; empty means every category (a people's mediation committee).
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Active cases (assigned or mediating) it can carry at once.
    capacity: Mapped[int] = mapped_column(default=DEFAULT_CAPACITY)
    address: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class BodyJurisdiction(Base):
    """A region a body covers, as a GB/T 2260 prefix: 330681 covers the county and every town and
    village in it, 330681105 one town and its villages."""

    __tablename__ = "body_jurisdictions"

    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), primary_key=True)
    region_prefix: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)


class Mediator(Base):
    __tablename__ = "mediators"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(60))
    # Dispute categories the mediator is experienced in (triage counts them as specialty).
    specialties: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class MediatorConflict(Base):
    """A declared conflict of interest (回避): the mediator is related to a person, or to one case.

    特邀调解规定 Art. 16: a mediator who is a party's close relative or has an interest in the
    dispute must step aside; 人民调解法 Art. 23 lets parties choose or refuse a mediator. The person is identified by the keyed hash of the
    ID number (the same index the parties table uses), never by the number itself."""

    __tablename__ = "mediator_conflicts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    mediator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mediators.id"), index=True)
    dispute_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("disputes.id"))
    person_name: Mapped[str | None] = mapped_column(String(100))
    id_number_index: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(40))
    relation: Mapped[str] = mapped_column(String(200))
    declared_by: Mapped[str] = mapped_column(String(120))
    declared_at: Mapped[datetime]
