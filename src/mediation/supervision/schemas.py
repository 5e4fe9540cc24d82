from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from mediation.core.schemas import WriteModel
from mediation.disputes.schemas import Day, Note, Reason


class OrderIn(WriteModel):
    instruction: Annotated[
        str, Field(min_length=2, max_length=2000, description="督办要求: what must be done.")
    ]
    body_id: uuid.UUID | None = Field(
        default=None,
        description="The body the order is addressed to; by default the body handling the case, and "
        "required when no body handles it (the case waits at the center). Another body named must be an "
        "active mediation body whose jurisdiction covers the case's region.",
    )
    due_on: Day | None = Field(
        default=None,
        description="The last day to respond, today at the earliest and 90 days away at the latest; by "
        "default the configured number of working days.",
    )


class OrderResponseIn(WriteModel):
    response: Annotated[
        str, Field(min_length=2, max_length=4000, description="What was done, and what is next.")
    ]


class OrderOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID
    case_number: str
    body_id: uuid.UUID | None = Field(
        description="The body the order is addressed to now. An open order follows its case: null while "
        "the case waits at the center for its next body, then that body."
    )
    instruction: str
    due_on: date
    provisional: bool = Field(
        description="The date was counted in working days across a year whose holiday schedule was not "
        "published yet (weekends and the statutory holidays only); it is counted again once the schedule is loaded, and only moves later."
    )
    status: str = Field(
        description="issued | responded | escalated (unanswered past due_on) | lapsed (closed with its "
        "case, unanswered: the case's follow-up ended, withdrawn, handed on to arbitration or litigation, "
        "closed or declined; it is not answered or escalated any more)"
    )
    issued_by: str
    issued_at: datetime
    response: str | None
    responded_by: str | None
    responded_at: datetime | None
    escalated_at: datetime | None
    lapsed_at: datetime | None = Field(description="When the order lapsed with its case, if it did.")
    lapse_reason: str | None = Field(
        description="The case's state that ended its follow-up and so the order's: declined | withdrawn | "
        "referred_arbitration | referred_litigation | closed | archived."
    )
    version: int


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class OwnerIn(WriteModel):
    name: Annotated[str, Field(min_length=1, max_length=100, description="包案领导's name.")]
    title: Annotated[str, Field(min_length=1, max_length=100, description="Post, e.g. 镇党委副书记.")]
    user_id: uuid.UUID | None = Field(default=None, description="Their account, when they have one.")
    reason: Reason
    note: Note = None
