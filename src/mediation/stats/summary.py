"""The one summarising code of the statistics: cases in, a summary out, and summaries add up.

A summary is a JSON object of counters only: counts of cases, sums of whole seconds, and
histograms of durations in whole hours. The summary of a union of disjoint sets of cases is then
the sum of their summaries, and a difference of summaries is just as exact. So the rollup adds
day summaries up into months and years, moves a month by (new day - old day) when a day changes,
and a caller whose cases are not in the rollup gets a summary of the raw rows from these same
functions. Zero counters are left out, so equal sets of cases give equal summaries.

Definitions, shared by the rollup, the raw path and the API description:
- success rate: mediations ending in an agreement / all concluded mediations (agreement, failed,
  withdrawn during mediation);
- confirmation rate: confirmed / decided confirmation requests (a withdrawn request is not decided);
- overdue rate: cases any of whose clocks ever went red / all cases;
- a stage lasts from one milestone to the next (`STAGES`); a case counts in a stage once both
  milestones are set. Durations are whole seconds and averages exact; the 90th percentile is
  taken by nearest rank over durations cut down to whole hours (`RESOLUTION_SECONDS`), which is
  what lets it be summed exactly: a p90 of 26 means 90 % of the cases took less than 27 hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from mediation.core.i18n import Text

Summary = dict[str, Any]

RESOLUTION_SECONDS = 3600  # duration histograms count whole hours
NO_BODY = "none"  # the key counting cases not (or no longer) with a body
MEDIATION_RESULTS = ("agreement", "failed", "withdrawn")
SATISFACTION_SCORES = ("1", "2", "3", "4", "5")


class CaseFacts(NamedTuple):
    """What the statistics read of a case, in the order `stats.service.FACT_COLUMNS` selects it."""

    status: str
    category: str
    channel: str
    tier: str
    region_code: str
    body_id: uuid.UUID | None
    created_at: datetime
    closed_at: datetime | None
    accepted_at: datetime | None
    mediation_started_at: datetime | None
    mediation_ended_at: datetime | None
    mediation_result: str | None
    confirmation_requested_at: datetime | None
    confirmation_decided_at: datetime | None
    confirmation_result: str | None
    ever_overdue: bool
    satisfaction: int | None


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    label: Text
    starts: str  # the CaseFacts milestone that opens the stage
    ends: str  # and the one that closes it


STAGES = (
    Stage("intake", Text("受理", "Intake"), "created_at", "accepted_at"),
    Stage("assignment", Text("分流签收", "Assignment"), "accepted_at", "mediation_started_at"),
    Stage("mediation", Text("调解", "Mediation"), "mediation_started_at", "mediation_ended_at"),
    Stage(
        "confirmation",
        Text("司法确认", "Judicial confirmation"),
        "confirmation_requested_at",
        "confirmation_decided_at",
    ),
    Stage("total", Text("登记至结案", "Registration to closing"), "created_at", "closed_at"),
)
_SPANS = tuple((s.name, attrgetter(s.starts), attrgetter(s.ends)) for s in STAGES)
_SECOND = timedelta(seconds=1)


def add_case(summary: Summary, case: CaseFacts) -> None:
    """Count one case into `summary` (in place). Written out flat: a first build runs it for every
    case there is."""
    get = summary.get
    summary["cases"] = get("cases", 0) + 1
    if case.closed_at is not None:
        summary["closed"] = get("closed", 0) + 1
    if case.ever_overdue:
        summary["overdue"] = get("overdue", 0) + 1
    satisfaction = None if case.satisfaction is None else str(case.satisfaction)
    for dimension, key in (
        ("status", case.status),
        ("category", case.category),
        ("channel", case.channel),
        ("tier", case.tier),
        ("region", case.region_code),
        ("body", NO_BODY if case.body_id is None else str(case.body_id)),
        ("mediation", case.mediation_result),
        ("confirmation", case.confirmation_result),
        ("satisfaction", satisfaction),
    ):
        if key is None:
            continue
        counter = get(dimension)
        if counter is None:
            counter = summary[dimension] = {}
        counter[key] = counter.get(key, 0) + 1
    stages: dict[str, Any] | None = None
    for name, starts, ends in _SPANS:
        began, ended = starts(case), ends(case)
        if began is None or ended is None:
            continue
        # A milestone recorded before the one it follows (clock skew) counts as no time at all.
        seconds = max(0, (ended - began) // _SECOND)
        if stages is None:
            stages = summary.setdefault("stages", {})
        entry: dict[str, Any] | None = stages.get(name)
        if entry is None:
            entry = {"n": 0, "hours": {}}
            stages[name] = entry
        entry["n"] += 1
        if seconds:
            entry["seconds"] = entry.get("seconds", 0) + seconds
        # Keyed by the hour: a day's few cases fill a few keys of a range of thousands of hours.
        hours = entry["hours"]
        bucket = str(seconds // RESOLUTION_SECONDS)
        hours[bucket] = hours.get(bucket, 0) + 1


def summarise(cases: Iterable[CaseFacts]) -> Summary:
    summary: Summary = {}
    for case in cases:
        add_case(summary, case)
    return summary


def merge(target: Summary, source: Mapping[str, Any], sign: int = 1) -> Summary:
    """Add `source` into `target` (in place), or subtract it with `sign=-1`; zeros are dropped, so
    the result is the summary of the cases themselves."""
    for key, value in source.items():
        if type(value) is dict:  # the exact type: an ABC isinstance check doubles the cost
            inner = target.get(key)
            if inner is None:
                inner = target[key] = {}
            merge(inner, value, sign)
            if not inner:
                del target[key]
        else:
            total = target.get(key, 0) + sign * value
            if total:
                target[key] = total
            else:
                target.pop(key, None)
    return target


def merged(summaries: Iterable[Mapping[str, Any]]) -> Summary:
    """The sum of stored summaries (the inner loop of every statistics request)."""
    total: Summary = {}
    for summary in summaries:
        accumulate(total, summary)
    return total


def accumulate(target: Summary, source: Mapping[str, Any]) -> None:
    """`merge(target, source)` for summaries without negative counts (stored ones, or those of
    cases): no sum can be zero, so nothing needs dropping, and new parts are copied whole."""
    get = target.get
    for key, value in source.items():
        if type(value) is int:
            target[key] = get(key, 0) + value
        elif (inner := get(key)) is None:
            target[key] = _copy(value)
        else:
            accumulate(inner, value)


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if type(v) is dict else v for k, v in value.items()}


class Headline(NamedTuple):
    """The figures a trend needs, kept beside each rollup row as plain columns."""

    cases: int = 0
    closed: int = 0
    mediations_concluded: int = 0
    agreements: int = 0
    confirmations_decided: int = 0
    confirmed: int = 0
    overdue: int = 0
    satisfaction_count: int = 0
    satisfaction_sum: int = 0

    def plus(self, other: Headline) -> Headline:
        return Headline(*(a + b for a, b in zip(self, other, strict=True)))


def headline(summary: Mapping[str, Any]) -> Headline:
    mediation = summary.get("mediation", {})
    confirmation = summary.get("confirmation", {})
    satisfaction = summary.get("satisfaction", {})
    return Headline(
        cases=summary.get("cases", 0),
        closed=summary.get("closed", 0),
        mediations_concluded=sum(mediation.get(r, 0) for r in MEDIATION_RESULTS),
        agreements=mediation.get("agreement", 0),
        confirmations_decided=sum(v for k, v in confirmation.items() if k != "withdrawn"),
        confirmed=confirmation.get("confirmed", 0),
        overdue=summary.get("overdue", 0),
        satisfaction_count=sum(satisfaction.values()),
        satisfaction_sum=sum(int(score) * n for score, n in satisfaction.items()),
    )


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


class StageFigures(NamedTuple):
    cases: int
    average_seconds: float | None
    p90_hours: int | None


def stage_figures(summary: Mapping[str, Any], stage: str) -> StageFigures:
    entry = summary.get("stages", {}).get(stage, {})
    count = entry.get("n", 0)
    return StageFigures(
        count, ratio(entry.get("seconds", 0), count), nearest_rank(entry.get("hours", {}), 9, 10)
    )


def nearest_rank(histogram: Mapping[str, int], numerator: int, denominator: int) -> int | None:
    """The nearest-rank percentile (numerator/denominator, e.g. 9/10) of a histogram of whole
    units (`histogram["26"]` observations of 26): the smallest value with at least ceil(p * n) of
    the observations at or below it."""
    n = sum(histogram.values())
    if n <= 0:
        return None
    rank = -(-n * numerator // denominator)
    seen = 0
    for value in sorted(map(int, histogram)):
        seen += histogram[str(value)]
        if seen >= rank:
            return value
    return None  # unreachable: the counts add up to n
