from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id


class CaseClock(Base):
    """One run of one clock on one case, from the state that starts it until the state that ends it.

    `level` moves normal -> at_risk -> overdue; the scheduler records each move once, guarded by
    `at_risk_fired_at` / `overdue_fired_at` in a conditional UPDATE, so two schedulers never both
    report it. Pauses and extensions move `due_on` and are kept in `history`.
    """

    __tablename__ = "case_clocks"
    __table_args__ = (
        Index("ix_case_clocks_running_warn", "stopped_at", "warn_at"),
        Index("ix_case_clocks_dispute_name", "dispute_id", "name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"))
    name: Mapped[str] = mapped_column(String(30))
    rule_id: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(300))
    unit: Mapped[str] = mapped_column(String(15))
    length: Mapped[int]
    pausable: Mapped[bool]
    started_at: Mapped[datetime]
    due_on: Mapped[date]
    due_at: Mapped[datetime]
    warn_at: Mapped[datetime]
    provisional: Mapped[bool]
    paused_at: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(30))
    extended_by: Mapped[int] = mapped_column(default=0)
    level: Mapped[str] = mapped_column(String(10))
    at_risk_fired_at: Mapped[datetime | None]
    overdue_fired_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    # met: stopped before its deadline; missed: after it; cancelled: the case left the stage
    # in a way that ends every clock (withdrawal, decline).
    outcome: Mapped[str | None] = mapped_column(String(10))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
