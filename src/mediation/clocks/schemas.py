from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from mediation.disputes.schemas import Note, Reason, WriteModel


class PauseReason(StrEnum):
    waiting_party = "waiting_party"  # a party asked for time, is ill, abroad...
    appraisal = "appraisal"  # 鉴定/评估: waiting for an appraisal or assessment
    related_proceedings = "related_proceedings"  # waiting for another case's outcome
    other = "other"


class PauseIn(WriteModel):
    reason: PauseReason
    note: Note = None


class ResumeIn(WriteModel):
    note: Note = None


class ExtensionIn(WriteModel):
    units: Annotated[
        int, Field(ge=1, le=365, description="In the clock's own unit (days, working days, months).")
    ]
    reason: Reason
    consenting_party_ids: list[uuid.UUID] = Field(
        default=[],
        description="The parties who agreed to the extension; every applicant and respondent where the rule asks "
        "for both parties' consent (人民调解工作若干规定 Art. 33; 特邀调解规定 Art. 27).",
    )


class ClockOut(BaseModel):
    id: uuid.UUID
    name: str
    rule_id: str
    source: str
    unit: str
    length: int
    started_at: datetime
    due_on: date
    due_at: datetime
    remaining_seconds: int | None = Field(
        description="Until due_at for a running clock; frozen while paused."
    )
    level: str = Field(description="normal | at_risk | overdue")
    provisional: bool
    pausable: bool
    paused_at: datetime | None
    pause_reason: str | None
    extended_by: int
    stopped_at: datetime | None
    outcome: str | None = Field(description="met | missed | cancelled, once stopped")
    history: list[dict[str, Any]]


class DeadlineOut(BaseModel):
    start: date
    length: int
    unit: str
    last_day: date
    moved_off_rest_day: bool = Field(description="The nominal last day was a rest day (民事诉讼法 Art. 85).")
