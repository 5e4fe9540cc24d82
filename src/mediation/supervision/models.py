from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.clocks.counted import PROVISIONAL, PROVISIONAL_SQLITE, WorkingDaysDue
from mediation.core.db import Base, new_id


class SupervisionOrder(WorkingDaysDue, Base):
    """督办: a supervisor's instruction on a case to a body, with a deadline to respond.

    issued -> responded; issued past its deadline -> escalated (the scheduler, once), and an
    escalated order can still be answered. An open order (issued or escalated) lapses with its case
    (随案办结) when the case's follow-up ends (attention.FINISHED): `lapsed`, for good, with when
    and the case's state that ended it. Each step lands on the case's timeline. An open order
    follows its case from body to body, and is addressed to no body (`body_id` null) while the case
    waits at the center for its next one (supervision.service).
    """

    __tablename__ = "supervision_orders"
    __table_args__ = (
        Index("ix_supervision_orders_due_on_id", "due_on", "id"),  # the keyset pages
        # Default answer dates counted before their year's holidays were known (clocks.counted).
        Index(
            "ix_supervision_orders_provisional",
            "due_on",
            postgresql_where=text(PROVISIONAL),
            sqlite_where=text(PROVISIONAL_SQLITE),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    body_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"), index=True)
    instruction: Mapped[str] = mapped_column(Text)
    # due_on, and how it was counted when it is the default (WorkingDaysDue)
    status: Mapped[str] = mapped_column(String(10), index=True)  # issued | responded | escalated | lapsed
    issued_by: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime]
    response: Mapped[str | None] = mapped_column(Text)
    responded_by: Mapped[str | None] = mapped_column(String(120))
    responded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    lapsed_at: Mapped[datetime | None]
    # The case's state whose reaching ended its follow-up (withdrawn, referred_litigation, ...).
    lapse_reason: Mapped[str | None] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(nullable=False)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
