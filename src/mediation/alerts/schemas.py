from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from mediation.core.schemas import WriteModel
from mediation.disputes.schemas import Note


class AlertCaseOut(BaseModel):
    dispute_id: uuid.UUID
    case_number: str
    status: str
    category: str
    region_code: str
    created_at: datetime
    matched: dict[str, Any]


class AlertOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(
        description="risk (words of violence, self-harm, gathering, or marked dangerous at intake) | cluster "
        "| repeat"
    )
    level: str = Field(description="immediate | high | normal")
    region_code: str
    title: str
    details: dict[str, Any] = Field(
        description="What matched: risk words, `marked_by` (who marked the case dangerous at intake) "
        "and the police-report advice (人民调解法 Art. 25), or the cluster rule (by, window_days, "
        "min_cases, about)."
    )
    status: str = Field(description="open | acknowledged | resolved")
    case_count: int
    raised_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    version: int
    cases: list[AlertCaseOut] | None = Field(
        default=None, description="The cases concerned that the caller can see (on the single-alert read)."
    )


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AcknowledgeIn(WriteModel):
    note: Note = None


class ResolveIn(WriteModel):
    resolution: Annotated[str, Field(min_length=2, max_length=4000, description="What was done (处置情况).")]
