"""Response models of the statistics. Every figure counts the cases *registered* in the range."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

Source = Literal["rollup", "cases"]
SOURCE_DESCRIPTION = (
    "Where the figures come from: `rollup` (the pre-aggregated daily, monthly and yearly summaries, "
    "brought up to date at the start of the request) or `cases` (the caller's own cases read "
    "directly, for scopes narrower than a county). Both are computed by the same code."
)


class Interval(StrEnum):
    day = "day"
    week = "week"  # ISO weeks, Monday to Sunday
    month = "month"


class StatsFormat(StrEnum):
    json = "json"
    csv = "csv"


class CountOut(BaseModel):
    key: str | None = Field(
        description="The code counted (status, category, ... ; a body's id); null for cases with no body."
    )
    label: str = Field(description="Its name in the request language (a region's code is its own label).")
    count: int


class RateOut(BaseModel):
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator; null when the denominator is 0.")


class RatesOut(BaseModel):
    success: RateOut = Field(
        description="调解成功率: mediations that ended in an agreement / mediations concluded "
        "(agreement, failed, or withdrawn while mediating)."
    )
    confirmation: RateOut = Field(
        description="司法确认率: confirmed / decided confirmation requests (confirmed, rejected, not "
        "accepted; a withdrawn request is not decided)."
    )
    overdue: RateOut = Field(
        description="超期率: cases any of whose clocks ever went overdue / cases registered."
    )


class StageOut(BaseModel):
    stage: str = Field(examples=["mediation"])
    label: str
    starts: str = Field(description="The milestone that opens the stage.", examples=["mediation_started_at"])
    ends: str = Field(description="The milestone that closes it.", examples=["mediation_ended_at"])
    count: int = Field(description="Cases that have both milestones.")
    average_seconds: float | None = Field(description="Exact mean, from durations in whole seconds.")
    average_hours: float | None = Field(description="The same mean in hours.")
    p90_hours: int | None = Field(
        description="90th percentile by nearest rank over durations truncated to whole hours: 90 % of "
        "the cases took less than p90_hours + 1 hours."
    )


class SatisfactionOut(BaseModel):
    count: int = Field(description="Cases with a satisfaction rating from the follow-up visit.")
    average: float | None = Field(description="Mean rating (1-5); null without ratings.")
    distribution: list[CountOut] = Field(description="Ratings 1 to 5 and how many cases gave each.")


class TotalsOut(BaseModel):
    cases: int = Field(description="Cases registered in the range.")
    closed: int = Field(description="Of them, closed (结案) or declined.")
    mediations_concluded: int
    agreements: int
    confirmations_decided: int
    confirmed: int
    overdue: int


class OverviewOut(BaseModel):
    from_: date = Field(serialization_alias="from", description="First registration day (local time).")
    to: date = Field(description="Last registration day, inclusive.")
    region: str | None = Field(description="The region filter asked for (a GB/T 2260 code prefix).")
    as_of: datetime = Field(description="Every change committed before this moment is counted.")
    source: Source = Field(description=SOURCE_DESCRIPTION)
    duration_resolution_seconds: int = Field(description="The bucket width of the p90 durations.")
    totals: TotalsOut
    by_status: list[CountOut]
    by_category: list[CountOut]
    by_channel: list[CountOut]
    by_tier: list[CountOut]
    by_region: list[CountOut] = Field(description="By the place's full region code, in code order.")
    by_area: list[CountOut] = Field(
        description="One administrative level below the region asked for (or the caller's own): provinces, "
        "cities, counties, towns or villages, by code prefix, in code order."
    )
    by_body: list[CountOut] = Field(
        description="By the body holding the case now (null key: none), most cases first."
    )
    mediation_results: list[CountOut]
    confirmation_results: list[CountOut]
    rates: RatesOut
    stages: list[StageOut]
    satisfaction: SatisfactionOut


class PeriodOut(BaseModel):
    period: str = Field(description="2026-05-04, 2026-W19 (ISO week) or 2026-05.", examples=["2026-W19"])
    start: date = Field(description="First day of the period inside the range.")
    end: date = Field(description="Last day of the period inside the range.")
    registered: int
    closed: int
    mediations_concluded: int
    agreements: int
    success_rate: float | None
    confirmations_decided: int
    confirmed: int
    confirmation_rate: float | None
    overdue: int
    overdue_rate: float | None
    satisfaction_count: int
    satisfaction_average: float | None


class TrendOut(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    region: str | None
    interval: Interval
    as_of: datetime
    source: Source = Field(description=SOURCE_DESCRIPTION)
    periods: list[PeriodOut] = Field(description="Every period of the range in order, empty ones included.")
    total: PeriodOut = Field(description="The whole range as one period.")
