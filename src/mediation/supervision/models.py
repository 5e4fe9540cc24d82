from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, new_id


class SupervisionOrder(Base):
    """督办: a supervisor's instruction on a case to a body, with a deadline to respond.

    issued -> responded; issued past its deadline -> escalated (the scheduler, once), and an
    escalated order can still be answered. Each step lands on the case's timeline.
    """

    __tablename__ = "supervision_orders"
    __table_args__ = (Index("ix_supervision_orders_due_on_id", "due_on", "id"),)  # the keyset pages

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    body_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), index=True)
    instruction: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(10), index=True)  # issued | responded | escalated
    issued_by: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime]
    response: Mapped[str | None] = mapped_column(Text)
    responded_by: Mapped[str | None] = mapped_column(String(120))
    responded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(nullable=False)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
