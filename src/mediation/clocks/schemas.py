from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mediation.core.schemas import WriteModel
from mediation.disputes.schemas import Note, Reason


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


class ClockExtensionIn(WriteModel):
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
    level: str = Field(
        description="normal | at_risk | overdue. A party window (the judicial confirmation window) stays "
        "normal: it is the parties' time to apply, not the center's deadline; its closing is in history."
    )
    provisional: bool
    pausable: bool
    paused_at: datetime | None
    pause_reason: str | None
    extended_by: int
    stopped_at: datetime | None
    outcome: str | None = Field(
        description="met | missed | cancelled, once stopped; a clock stopped while paused is judged as if "
        "resumed at the stop."
    )
    history: list[dict[str, Any]]


class DeadlineOut(BaseModel):
    start: date
    length: int
    unit: str
    last_day: date
    moved_off_rest_day: bool = Field(description="The nominal last day was a rest day (民事诉讼法 Art. 85).")


class CalendarDayIn(WriteModel):
    date: date
    name: Annotated[str, Field(min_length=1, max_length=40, description="The holiday, e.g. 春节.")]


class CalendarIn(WriteModel):
    """A year's schedule as the State Council's notice gives it: the days off, and the weekend days
    worked instead (调休). Weekdays not listed are working days; weekend days not listed are not."""

    reference: Annotated[
        str,
        Field(
            min_length=1, max_length=200, description="The notice it comes from, e.g. 国办发明电〔2026〕N号."
        ),
    ]
    note: Annotated[str | None, Field(max_length=2000)] = None
    holidays: Annotated[
        list[CalendarDayIn],
        Field(
            min_length=1,
            max_length=60,
            description="Every day off of the holidays, weekends within them included.",
        ),
    ]
    workdays: Annotated[
        list[CalendarDayIn],
        Field(max_length=30, description="Make-up working days: each a Saturday or Sunday worked (调休)."),
    ] = []


class CalendarDayOut(BaseModel):
    date: date
    name: str


class CalendarOut(BaseModel):
    # Every field is in every answer: the defaults only spare the years with nothing loaded.
    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True, json_schema_mode_override="serialization"
    )

    year: int
    source: str = Field(
        description="bundled: the schedule ships with the service; loaded: an administrator loaded it from "
        "the notice; unpublished: not known yet, so periods reaching the year count weekends and the "
        "statutory holidays only and their "
        "deadlines are provisional."
    )
    # Of a loaded schedule only.
    reference: str | None = Field(default=None, description="The notice a loaded schedule comes from.")
    note: str | None = None
    version: int | None = Field(default=None, description="Grows with each load of the year.")
    loaded_at: datetime | None = None
    holidays: list[CalendarDayOut] = Field(
        default=[], description="Every day off of the holidays, weekends within them included."
    )
    workdays: list[CalendarDayOut] = Field(
        default=[], description="Weekend days that are working days (调休)."
    )
