from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType


class StatsRollup(Base):
    """The summary of the cases registered in one period (a local day, month or year) and one
    region: "" for everything, else a province (2 digits), city (4) or county (6) prefix.

    `summary` holds every counter, sum and duration histogram (see `stats.summary`); the columns
    beside it repeat its headline figures so a trend over many days reads no JSON. A rollup is
    derived data: `stats.service.refresh` rebuilds it from the cases and nothing else writes it.
    """

    __tablename__ = "stats_rollups"

    grain: Mapped[str] = mapped_column(String(5), primary_key=True)  # day | month | year
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    period: Mapped[date] = mapped_column(primary_key=True)  # the first day of the period
    cases: Mapped[int]
    closed: Mapped[int]
    mediations_concluded: Mapped[int]
    agreements: Mapped[int]
    confirmations_decided: Mapped[int]
    confirmed: Mapped[int]
    overdue: Mapped[int]
    satisfaction_count: Mapped[int]
    satisfaction_sum: Mapped[int]
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)


class StatsRefreshState(Base):
    """How far the rollup has followed the cases (one row).

    `high_water` is the latest `updated_at` the rollup has taken in, or the time of the refresh
    that took it in if later. A case's `updated_at` is stamped before its transaction commits, so
    a refresh looks back `REFRESH_MARGIN` behind it;
    `seen` holds the version of each case in that look-back window as counted, so the next
    refresh counts again only the days of cases changed since, and a request can tell in one
    indexed query that nothing changed. `generation` is a fresh value at every refresh that
    changes the rollup (random, so it never repeats, even after the state is reset): an answer
    computed from the rollup stays right for as long as the generation it was read at is current.
    """

    __tablename__ = "stats_refresh_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    high_water: Mapped[datetime | None]
    seen: Mapped[dict[str, Any]] = mapped_column(JSONType)
    refreshed_at: Mapped[datetime]
    generation: Mapped[uuid.UUID | None]
