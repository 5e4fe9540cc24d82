from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, JSONType, new_id


class TriageRuleSet(Base):
    """One version of the center's triage rules. The newest row is in force; a row without rules
    means "back to the default file shipped with the package". Old versions stay for the record:
    each assignment names the rules version it was recommended under."""

    __tablename__ = "triage_rule_sets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(unique=True)
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
