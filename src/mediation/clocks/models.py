from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id

RUNNING_PROVISIONAL = "provisional AND stopped_at IS NULL"
RUNNING_PROVISIONAL_SQLITE = "provisional = 1 AND stopped_at IS NULL"  # as SQLAlchemy spells it there


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
        # The scheduler looks for running provisional clocks on every pass (clocks.calendar): few
        # rows, so a small index instead of a scan of every running clock.
        Index(
            "ix_case_clocks_provisional_due_on",
            "due_on",
            postgresql_where=text(RUNNING_PROVISIONAL),
            sqlite_where=text(RUNNING_PROVISIONAL_SQLITE),
        ),
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


class CalendarYear(Base):
    """A year's official holiday schedule, loaded from the State Council's notice (国务院办公厅关于
    部分节假日安排的通知) for a year `chinese-calendar` does not carry yet. Its days are those that
    differ from the weekday rule; `version` grows with each replacement."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    reference: Mapped[str] = mapped_column(String(200))  # the notice, e.g. 国办发明电〔2026〕N号
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int]
    loaded_by: Mapped[str] = mapped_column(String(120))
    loaded_at: Mapped[datetime]


class CalendarDay(Base):
    """A day of a loaded year off the weekday rule: a holiday (`working` False) or a make-up
    working day on a weekend (调休, `working` True)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year", ondelete="CASCADE"), index=True)
    working: Mapped[bool]
    name: Mapped[str] = mapped_column(String(40))
