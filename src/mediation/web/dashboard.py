"""The supervision dashboard: the statistics service's figures, the deadline lists and the alerts,
with charts drawn as inline SVG on the server (no script, prints as it shows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mediation.alerts.router import alert_out
from mediation.alerts.service import AlertService
from mediation.core.principal import Permission, Principal
from mediation.disputes.router import service
from mediation.disputes.service import DisputeService, ListFilters
from mediation.handoffs.ledger import overdue_step
from mediation.handoffs.service import HandoffService
from mediation.identity.auth import require
from mediation.stats.router import service as stats_service
from mediation.stats.schemas import CountOut, Interval, PeriodOut
from mediation.stats.service import StatsService
from mediation.web.cases import viewer_for
from mediation.web.rendering import WebRoute, render
from mediation.web.session import staff

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Staff = Annotated[Principal, Depends(staff)]
Service = Annotated[DisputeService, Depends(service)]
Stats = Annotated[StatsService, Depends(stats_service)]


@dataclass
class Bar:
    label: str
    key: str | None
    count: int
    x: float
    y: float
    width: float
    height: float


def bar_chart(counts: list[CountOut], width: int = 520, bar_height: int = 22) -> dict[str, Any]:
    """Horizontal bars, longest first; geometry only, the template draws it."""
    rows = sorted((c for c in counts if c.count), key=lambda c: -c.count)
    top = max((c.count for c in rows), default=0) or 1
    label_width, gap = 150, 6
    bars = [
        Bar(
            label=c.label,
            key=c.key,
            count=c.count,
            x=label_width,
            y=i * (bar_height + gap),
            width=max(2.0, (width - label_width - 50) * c.count / top),
            height=bar_height,
        )
        for i, c in enumerate(rows)
    ]
    return {"bars": bars, "width": width, "height": max(1, len(bars)) * (bar_height + gap)}


def _md(day: date) -> str:
    return f"{day.month}月{day.day}日"


def period_names(period: PeriodOut, interval: Interval) -> tuple[str, str]:
    """The axis label and the full name of a period as a clerk reads dates: "11月30日起" and
    "2026年11月30日至12月6日" for a week, not the API's ISO week "2026-W49" (a week is named by
    the first day inside the range, which may be after its Monday)."""
    start, end = period.start, period.end
    if interval == Interval.month:
        return f"{start.year}年{start.month}月", f"{start.year}年{_md(start)}至{_md(end)}"
    if interval == Interval.week:
        last = _md(end) if end.year == start.year else f"{end.year}年{_md(end)}"
        return f"{_md(start)}起", f"{start.year}年{_md(start)}至{last}"
    return _md(start), f"{start.year}年{_md(start)}"


def line_chart(
    periods: list[PeriodOut], series: list[tuple[str, str, str]], interval: Interval, width: int = 1200
) -> dict[str, Any]:
    """Lines over the periods for each (field, name, colour) in `series`, with a y axis from zero."""
    # The right margin holds half of the last period's label ("11月30日起"), centred on its point.
    height, left, right, bottom, top_pad = 220, 40, 40, 30, 10
    values = [getattr(p, f) or 0 for p in periods for f, _, _ in series]
    top = max(values, default=0)
    top = max(1, top + (-top % 5) if top > 5 else top + 1)
    inner_w, inner_h = width - left - right, height - bottom - top_pad
    step = inner_w / max(1, len(periods) - 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return left + i * step, top_pad + inner_h * (1 - value / top)

    lines = []
    for field, name, colour in series:
        points = [point(i, getattr(p, field) or 0) for i, p in enumerate(periods)]
        lines.append(
            {
                "name": name,
                "colour": colour,
                "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
                "dots": [
                    {"x": x, "y": y, "value": getattr(p, field) or 0, "period": period_names(p, interval)[1]}
                    for (x, y), p in zip(points, periods, strict=True)
                ],
            }
        )
    ticks = [{"y": point(0, v)[1], "value": v} for v in (0, top / 2, top)]
    every = max(1, -(-len(periods) // 10))
    labels = [
        {"x": point(i, 0)[0], "text": period_names(p, interval)[0]}
        for i, p in enumerate(periods)
        if i % every == 0
    ]
    return {
        "width": width,
        "height": height,
        "right": right,
        "lines": lines,
        "ticks": ticks,
        "labels": labels,
        "baseline": top_pad + inner_h,
        "left": left,
    }


MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 7, 366, 90


def _days(value: str | None) -> int | None:
    """The span the figures cover, in days, or None when the address gives no usable one."""
    if not value:
        return DEFAULT_DAYS
    try:
        days = int(value)
    except ValueError:
        return None
    return days if MIN_DAYS <= days <= MAX_DAYS else None


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    principal: Staff,
    svc: Service,
    stats: Stats,
    days: str | None = None,
) -> HTMLResponse:
    require(principal, Permission.stats_read)
    span = _days(days)
    if span is None:
        # Only an address edited by hand gets here: the page's own choices are all in range.
        detail = (
            f"统计天数须为 {MIN_DAYS} 至 {MAX_DAYS} 之间的整数 (页面上可选近30天、近90天、近半年或近一年)。"
        )
        return render(request, "error.html", {"title": "页面地址有误", "detail": detail, "status": 422}, 422)
    today = svc.clock.today()
    first = today - timedelta(days=span - 1)
    overview = await stats.overview(principal, first, today, None)
    interval = Interval.day if span <= 31 else Interval.week if span <= 120 else Interval.month
    trend = await stats.trend(principal, first, today, None, interval)
    # The dashboard lists cases by number and name only: read masked, nothing disclosed or recorded.
    view = viewer_for(request, principal, reveal=False)
    overdue, more_overdue = await svc.search(ListFilters(clock_level="overdue"), principal, 10, None)
    at_risk, more_at_risk = await svc.search(ListFilters(clock_level="at_risk"), principal, 10, None)
    latest, _ = await svc.search(ListFilters(), principal, 10, None)
    # A court or commission past its day to accept or to decide (法释〔2011〕5号 Art. 4; 民事诉讼法
    # Art. 126; 劳动争议调解仲裁法 Art. 29, 43): the case is not late at the center, but waits on it.
    unanswered, more_unanswered = await HandoffService(svc).search(
        principal, status=None, kind=None, overdue=True, cursor=None, limit=10
    )
    # The parties past the day a court set for more materials (民诉法解释 Art. 354, 356): the court
    # may treat the application as withdrawn (Art. 357), and the body and the center see to it.
    unsupplied, more_unsupplied = await HandoffService(svc).search(
        principal, status=None, kind=None, overdue=None, cursor=None, limit=10, materials_overdue=True
    )
    warnings = AlertService(svc)
    alerts, _ = await warnings.search(principal, status="open", kind=None, cursor=None, limit=10)
    alert_cases = {a.id: [d for _, d in await warnings.cases(a, principal)][:5] for a in alerts}
    return render(
        request,
        "dashboard.html",
        {
            "overview": overview,
            "trend": trend,
            "days": span,
            "first": first,
            "today": today,
            "status_chart": bar_chart(overview.by_status),
            "category_chart": bar_chart(overview.by_category),
            "trend_chart": line_chart(
                trend.periods,
                [
                    ("registered", "登记", "#1f5fa8"),
                    ("closed", "结案", "#2e8b57"),
                    ("overdue", "超期", "#c0392b"),
                ],
                interval,
            ),
            "overdue": [view.dispute(d) for d in overdue],
            "more_overdue": more_overdue is not None,
            "at_risk": [view.dispute(d) for d in at_risk],
            "more_at_risk": more_at_risk is not None,
            "alerts": [(alert_out(a, principal), alert_cases[a.id]) for a in alerts],
            "latest": [view.dispute(d) for d in latest],
            "unanswered": [(h, number, target, overdue_step(h, today)) for h, number, target in unanswered],
            "more_unanswered": more_unanswered is not None,
            "unsupplied": [(h, number, target, h.materials_due_on) for h, number, target in unsupplied],
            "more_unsupplied": more_unsupplied is not None,
        },
    )
