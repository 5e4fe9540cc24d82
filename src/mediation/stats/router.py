"""HTTP API for the statistics under /v1/stats."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import problem_responses
from mediation.core.principal import Permission, Principal
from mediation.disputes.identity import REGION_PREFIX_PATTERN
from mediation.identity.auth import permission
from mediation.stats.export import overview_csv, trend_csv
from mediation.stats.schemas import Interval, OverviewOut, StatsFormat, TrendOut
from mediation.stats.service import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, StatsService

router = APIRouter(prefix="/v1/stats", route_class=UnitOfWorkRoute, tags=["statistics"])

StatsReader = Annotated[Principal, permission(Permission.stats_read)]
From = Annotated[
    date | None,
    Query(
        alias="from",
        description=f"First registration day, inclusive (local time). Default: {DEFAULT_RANGE_DAYS - 1} "
        "days before `to`, and not before 1990-01-01.",
    ),
]
To = Annotated[
    date | None,
    Query(
        alias="to",
        description=f"Last registration day, inclusive. Default: today. At most {MAX_RANGE_DAYS} days.",
    ),
]
Region = Annotated[
    str | None,
    Query(
        pattern=REGION_PREFIX_PATTERN,
        description="Only cases whose place's GB/T 2260 code starts with this (province 2 digits, city 4, "
        "county 6, town 9, village 12); inside the caller's region, else 422.",
    ),
]
Format = Annotated[
    StatsFormat | None,
    Query(alias="format", description="`csv` for a spreadsheet (as does `Accept: text/csv`)."),
]

DEFINITIONS = """
Cases are selected by their registration day in the center's local time (Asia/Shanghai), `from`
and `to` inclusive; every figure counts those cases, whatever happened to them later.

- Success rate (调解成功率): mediations ending in an agreement / mediations concluded (agreement,
  failed, or withdrawn while mediating).
- Confirmation rate (司法确认率): confirmed / decided confirmation requests (confirmed, rejected,
  not accepted; a withdrawn request is not decided).
- Overdue rate (超期率): cases any of whose clocks ever went overdue / cases.
- Stages: intake (registered → accepted), assignment (accepted → signed for by the body),
  mediation (signed for → mediation ended), confirmation (requested → decided), total
  (registered → closed). A case counts in a stage once both milestones are set. Averages are exact
  over durations in whole seconds; the p90 is the nearest-rank 90th percentile of the durations
  truncated to whole hours (`duration_resolution_seconds`).
- Satisfaction: the follow-up visit's rating (1-5), average and count of the cases rated.

A center's staff see their region; a body administrator its own body's cases. `?format=csv` or
`Accept: text/csv` answers a CSV file (UTF-8 with byte-order mark, for Excel).
"""


def _csv_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"The {what} as JSON, or as CSV with `format=csv` / `Accept: text/csv`.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(),
    }


async def service(request: Request) -> StatsService:
    app = request.app
    return StatsService(session_of(request), app.state.db, app.state.clock, app.state.settings)


Service = Annotated[StatsService, Depends(service)]


def _wants_csv(request: Request, requested: StatsFormat | None) -> bool:
    if requested is not None:
        return requested == StatsFormat.csv
    return "text/csv" in request.headers.get("accept", "")


def _json(result: BaseModel) -> Response:
    # Serialised in one pass by pydantic-core: an overview can list thousands of region codes, and
    # the generic encoder walks them in Python at several times the cost.
    return Response(result.model_dump_json(by_alias=True), media_type="application/json")


def _csv(content: str, filename: str) -> Response:
    return Response(
        content.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/overview",
    response_model=OverviewOut,
    summary="统计概览 Statistics overview",
    description="Counts by status, category, channel, tier, region and body; success, confirmation "
    "and overdue rates; stage durations; satisfaction.\n" + DEFINITIONS,
    responses=_csv_doc("overview"),
)
async def overview(
    request: Request,
    principal: StatsReader,
    svc: Service,
    first: From = None,
    last: To = None,
    region: Region = None,
    requested_format: Format = None,
) -> Response:
    result = await svc.overview(principal, first, last, region)
    if _wants_csv(request, requested_format):
        return _csv(overview_csv(result, svc.zone), f"stats-overview-{result.from_}-{result.to}.csv")
    return _json(result)


@router.get(
    "/trend",
    response_model=TrendOut,
    summary="统计趋势 Statistics by day, week or month",
    description="For each period of the range (ISO weeks start on Monday): cases registered, closed, "
    "mediations concluded and agreements with the success rate, confirmations, overdue cases, "
    "satisfaction; every period is listed, empty ones too, and the first and last are cut to the "
    "range.\n" + DEFINITIONS,
    responses=_csv_doc("trend"),
)
async def trend(
    request: Request,
    principal: StatsReader,
    svc: Service,
    first: From = None,
    last: To = None,
    region: Region = None,
    interval: Annotated[Interval, Query(description="day, week (ISO) or month.")] = Interval.month,
    requested_format: Format = None,
) -> Response:
    result = await svc.trend(principal, first, last, region, interval)
    if _wants_csv(request, requested_format):
        return _csv(trend_csv(result), f"stats-trend-{interval.value}-{result.from_}-{result.to}.csv")
    return _json(result)
