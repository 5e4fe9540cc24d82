from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, new_id


class Alert(Base):
    """An early-warning alert (预警) for supervisors: open -> acknowledged -> resolved.

    `open_key` names what the alert is about (e.g. the cluster of wage-arrears disputes against one
    employer in one county) and is unique while the alert is unresolved, so a seventh dispute joins
    the open alert instead of raising another; resolving clears it so a later wave raises a new one.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_raised_at_id", "raised_at", "id"),)  # the keyset pages, newest first

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # risk | cluster | repeat | query_code
    key: Mapped[str] = mapped_column(String(200))
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    level: Mapped[str] = mapped_column(String(10))  # immediate | high | normal
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(14), index=True)  # open | acknowledged | resolved
    case_count: Mapped[int]
    raised_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolution: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(nullable=False)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class AlertCase(Base):
    """A case an alert is about, and what in it matched."""

    __tablename__ = "alert_cases"
    __table_args__ = (UniqueConstraint("alert_id", "dispute_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), index=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    matched: Mapped[dict[str, Any]]
    added_at: Mapped[datetime]
