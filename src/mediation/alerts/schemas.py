from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediation.alerts.detect import Danger
from mediation.core.i18n import Text
from mediation.core.schemas import Instant, WriteModel
from mediation.disputes.identity import at_field
from mediation.disputes.schemas import NON_BLANK_TEXT, Note, given, omitted, when


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
        description="risk (words of violence, self-harm, gathering, marked dangerous at intake, or flagged "
        "by staff on the case) | cluster | repeat | query_code (a case's status lookup slowed by wrong "
        "query codes: give the party a new code, which resolves it)"
    )
    level: str = Field(description="immediate | high | normal")
    region_code: str
    title: str = Field(
        description="In the request's language (Accept-Language: zh or en). The Chinese is the title "
        "written when the alert was raised (the timeline's alert_raised entry quotes it); a risk or cluster "
        "alert raised before English titles were kept reads it in English too."
    )
    details: dict[str, Any] = Field(
        description="What matched: risk words and their `kinds`, `source` (description, intake, "
        "correction, session, or staff: flagged through `POST /v1/disputes/{id}/risk-flags`), "
        "`marked_by` (who marked the case dangerous at intake), `flagged_by` and `report` (the staff "
        "member who flagged it, and to whom they reported it: to, at, department, reference) and the "
        "police-report advice (人民调解法 Art. 25), or the cluster rule (by, window_days, min_cases, about)."
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


class ReportedTo(StrEnum):
    police = "police"  # 公安机关 (人民调解法 Art. 25)
    other_department = "other_department"  # another department concerned (信访, 乡镇综治, 民政 ...)


# The report's details are free text about it, never binding.
ReportText = Annotated[str | None, Field(max_length=100)]


class RiskFlagIn(WriteModel):
    """Staff on the case flag it at risk: what they saw, what danger it is, and whether they have
    reported it (人民调解法 Art. 25: a mediator who finds a dispute may turn into a criminal or
    public-security case reports it to the police at once)."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                # A report has its time; another department is named.
                when(
                    "reported_to",
                    [ReportedTo.police.value, ReportedTo.other_department.value],
                    given("reported_at", {"type": "string"}),
                ),
                when(
                    "reported_to",
                    [ReportedTo.other_department.value],
                    given("report_department", NON_BLANK_TEXT),
                ),
                # No report: nothing about one.
                {
                    "if": {"not": given("reported_to", {"type": "string"})},
                    "then": {
                        "allOf": [
                            omitted(n) for n in ("reported_at", "report_department", "report_reference")
                        ]
                    },
                },
            ]
        }
    )

    danger: Danger = Field(
        description="violence | self_harm | gathering (the kinds of the risk words early warning reads) "
        "| criminal (may turn into a criminal or public-security case)"
    )
    observation: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4000,
            description="What was seen or heard (所见情况); on the timeline, masked like other notes "
            "for a reader without pii:read.",
        ),
    ]
    reported_to: ReportedTo | None = Field(
        default=None, description="To whom it was reported; null or absent: not reported yet."
    )
    reported_at: Instant | None = Field(default=None, description="When it was reported (with a report).")
    report_department: ReportText = Field(
        default=None,
        description="The police station or department reported to (required for other_department).",
    )
    report_reference: ReportText = Field(
        default=None, description="The report's reference number (接报回执号), if any."
    )

    @model_validator(mode="after")
    def _report(self) -> Self:
        if self.reported_to is None:
            for name in ("reported_at", "report_department", "report_reference"):
                if getattr(self, name) is not None:
                    raise at_field(
                        "reported_to",
                        "report_target_missing",
                        Text("请选择向哪个部门报告", "Say to whom it was reported"),
                    )
            return self
        if self.reported_at is None:
            raise at_field(
                "reported_at", "report_time_missing", Text("请填写报告时间", "Give the time of the report")
            )
        if self.reported_to == ReportedTo.other_department and not self.report_department:
            raise at_field(
                "report_department",
                "report_department_missing",
                Text("向其他部门报告的, 请写明部门名称", "Name the department it was reported to"),
            )
        return self
