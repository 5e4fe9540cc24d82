from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, new_id


class OutboxEvent(Base):
    """A CloudEvents 1.0 envelope waiting to be published. Thin payloads: ids and states, never personal data."""

    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(80), index=True)
    source: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(32))
    dispute_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("disputes.id"), index=True)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
