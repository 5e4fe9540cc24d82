"""Statistics for supervisors: every figure equals a brute-force recount of the same cases.

The cases are registered and moved through the real API with the frozen clock advanced between
steps, so each has its own stage durations; satisfaction and the overdue flag are set directly, as
the follow-up visits and the clocks would. The recount reads the raw tables (the timeline for the
stage boundaries, the cases for the rest) in plain loops and shares no code with the statistics.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
import math
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, update

from mediation.bodies.models import Body
from mediation.disputes.models import Dispute, TimelineEntry
from mediation.identity.models import User
from mediation.stats import service as stats_service
from mediation.stats.models import StatsRefreshState, StatsRollup
from mediation.stats.service import plan, refresh
from mediation.stats.summary import CaseFacts, merge, summarise
from tests.support import ROLE

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 24, 16, 30, tzinfo=UTC)  # 00:30 on 25 March in Beijing
END = datetime(2026, 6, 20, 2, 0, tzinfo=UTC)  # after the last step of any case

OUR_REGIONS = ("330681105201", "330681105214", "330681001003", "330681102000")
THEIR_REGIONS = ("330604001000", "330604100201")
CATEGORIES = ("neighbour", "marriage_family", "contract", "labour", "consumer", "property_management", "debt")
CHANNELS = ("window", "online", "grid", "hotline", "petition", "police")
SEVERITIES = ("ordinary", "ordinary", "major", "serious")
MEDIATE = ["accept", "assign", "sign_for"]
OUR_PATHS = [
    [],
    ["decline"],
    ["accept"],
    ["accept", "assign"],
    MEDIATE,
    [*MEDIATE, "agree"],
    [*MEDIATE, "fail"],
    [*MEDIATE, "withdraw"],
    [*MEDIATE, "agree", "request_confirmation", "court_accept", "confirm"],
    [*MEDIATE, "agree", "request_confirmation", "court_accept", "reject"],
    [*MEDIATE, "agree", "record_performance", "close"],
    [*MEDIATE, "fail", "refer_litigation"],
]
THEIR_PATHS = [
    [],
    ["accept"],
    [*MEDIATE, "fail"],
    [*MEDIATE, "agree", "record_performance", "close"],
    ["decline"],
]


@dataclass
class Plan:
    index: int
    at: datetime
    theirs: bool
    path: list[str]
    gaps: list[int]  # minutes before each step
    intake: dict[str, Any]
    dispute: dict[str, Any] = field(default_factory=dict)


def plans(count: int) -> list[Plan]:
    out = []
    for i in range(count):
        theirs = i % 5 == 4
        path = (THEIR_PATHS if theirs else OUR_PATHS)[(i * 7) % (5 if theirs else len(OUR_PATHS))]
        if CATEGORIES[i % len(CATEGORIES)] == "labour" and path[-1:] == ["refer_litigation"]:
            # A labour dispute goes to arbitration before any court (劳动争议调解仲裁法 Art. 5).
            path = [*path[:-1], "refer_arbitration"]
        regions = THEIR_REGIONS if theirs else OUR_REGIONS
        out.append(
            Plan(
                index=i,
                # Every 37 hours: registrations fall at all hours of the Beijing day, midnight included.
                at=START + timedelta(hours=37 * i, minutes=(i * 17) % 60),
                theirs=theirs,
                path=path,
                gaps=[60 * (1 + (i * 13 + k * 29) % 70) + (i * 11 + k * 23) % 60 for k in range(len(path))],
                intake={
                    "region_code": regions[i % len(regions)],
                    "category": CATEGORIES[i % len(CATEGORIES)],
                    "channel": CHANNELS[(i * 5) % len(CHANNELS)],
                    "severity": SEVERITIES[i % len(SEVERITIES)],
                    "people_involved": 2 + (i % 4) * 4,
                },
            )
        )
    return out


async def _perform(api: Any, plan: Plan, action: str) -> dict[str, Any]:
    if action == "court_accept":
        return await api.target_accepts(plan.dispute)
    payload = None
    headers = None
    if plan.theirs:
        if ROLE[action] == "clerk":
            headers = api.headers("clerk", "other_center")
        if action == "assign":
            payload = {"body_id": str(api.bodies["other_village"]), "override_reason": "村调委会熟悉双方情况"}
    if action == "refer_arbitration":
        payload = {"commission_id": str(api.bodies["labour_commission"])}
    response = await api.act(plan.dispute, action, payload, headers=headers)
    if response.status_code == 412:
        # Something else touched the case meanwhile (a repeat-dispute check, a clock): act on
        # its current version.
        reader = api.auth("clerk", "other_center") if plan.theirs else api.auth()
        current = await api.client.get(f"/v1/disputes/{plan.dispute['id']}", headers=reader)
        response = await api.act(current.json(), action, payload, headers=headers)
    assert response.status_code == 200, f"{action}: {response.text}"
    return response.json()


async def seed(api: Any, count: int) -> list[Plan]:
    """Register `count` cases and move each along its path, in time order across all of them."""
    clock = api.app.state.clock
    cases = plans(count)
    queue: list[tuple[datetime, int, int]] = [(p.at, p.index, -1) for p in cases]
    heapq.heapify(queue)
    while queue:
        at, index, step = heapq.heappop(queue)
        assert at < END
        clock.at = at
        plan = cases[index]
        if step < 0:
            plan.dispute = await api.intake("other_center" if plan.theirs else "center", **plan.intake)
        else:
            plan.dispute = await _perform(api, plan, plan.path[step])
        if step + 1 < len(plan.path):
            heapq.heappush(queue, (at + timedelta(minutes=plan.gaps[step + 1]), index, step + 1))
    clock.at = END - timedelta(days=5)
    # What the follow-up visits and the clocks record, stamped like any change to a case.
    async with api.app.state.db.writer() as session, session.begin():
        for plan in cases:
            values: dict[str, Any] = {}
            if plan.index % 3 == 0 and plan.path:
                values["satisfaction"] = 1 + plan.index % 5
            if plan.index % 4 == 1:
                values["ever_overdue"] = True
            if values:
                await session.execute(
                    update(Dispute)
                    .where(Dispute.id == uuid.UUID(plan.dispute["id"]))
                    .values(**values, updated_at=clock.now(), version=Dispute.version + 1)
                )
    clock.at = END
    return cases


# ---- the recount ---------------------------------------------------------------------------------


@dataclass
class Case:
    status: str
    category: str
    channel: str
    tier: str
    region_code: str
    body: str | None
    registered: datetime
    ever_overdue: bool
    satisfaction: int | None
    stages: dict[str, int] = field(default_factory=dict)  # whole seconds
    mediation_result: str | None = None
    confirmation_result: str | None = None
    closed: bool = False

    @property
    def day(self) -> date:
        return self.registered.astimezone(BEIJING).date()


MEDIATION_ENDINGS = {"agree": "agreement", "fail": "failed", "withdraw": "withdrawn"}
DECISIONS = {
    "confirm": "confirmed",
    "reject": "rejected",
    "not_accept": "not_accepted",
    "withdraw_confirmation": "withdrawn",
}


async def raw_cases(api: Any) -> list[Case]:
    async with api.app.state.db.reader() as session:
        disputes = (await session.scalars(select(Dispute))).all()
        entries = (
            await session.scalars(select(TimelineEntry).order_by(TimelineEntry.dispute_id, TimelineEntry.seq))
        ).all()
    timeline: dict[uuid.UUID, list[TimelineEntry]] = {}
    for entry in entries:
        timeline.setdefault(entry.dispute_id, []).append(entry)
    cases = []
    for d in disputes:
        case = Case(
            status=d.status,
            category=d.category,
            channel=d.channel,
            tier=d.tier,
            region_code=d.region_code,
            body=str(d.body_id) if d.body_id else None,
            registered=d.created_at,
            ever_overdue=d.ever_overdue,
            satisfaction=d.satisfaction,
        )
        accepted = started = ended = requested = decided = closed = None
        requested_seq = -1
        for e in timeline[d.id]:
            if e.action == "accept" and accepted is None:
                accepted = e.occurred_at
            if e.action == "sign_for" and started is None:
                started = e.occurred_at
            if e.action in MEDIATION_ENDINGS and e.from_status == "mediating":
                ended, case.mediation_result = e.occurred_at, MEDIATION_ENDINGS[e.action]
            if e.action == "request_confirmation":
                requested, requested_seq = e.occurred_at, e.seq
                decided, case.confirmation_result = None, None
            if e.action in DECISIONS and e.seq > requested_seq and e.from_status == "confirmation_pending":
                decided, case.confirmation_result = e.occurred_at, DECISIONS[e.action]
            if e.to_status in ("closed", "declined") and closed is None:
                closed = e.occurred_at
        case.closed = closed is not None
        for name, began, finished in (
            ("intake", d.created_at, accepted),
            ("assignment", accepted, started),
            ("mediation", started, ended),
            ("confirmation", requested, decided),
            ("total", d.created_at, closed),
        ):
            if began is not None and finished is not None:
                case.stages[name] = math.floor((finished - began).total_seconds())
        cases.append(case)
    return cases


def recount(
    cases: list[Case], first: date, last: date, keep: Callable[[Case], bool] = lambda c: True
) -> dict:
    chosen = [c for c in cases if first <= c.day <= last and keep(c)]
    concluded = [c for c in chosen if c.mediation_result is not None]
    decided = [c for c in chosen if c.confirmation_result not in (None, "withdrawn")]
    rated = [c.satisfaction for c in chosen if c.satisfaction is not None]
    stages = {}
    for name in ("intake", "assignment", "mediation", "confirmation", "total"):
        seconds = [c.stages[name] for c in chosen if name in c.stages]
        if not seconds:
            stages[name] = (0, None, None)
            continue
        hours = sorted(s // 3600 for s in seconds)
        rank = math.ceil(0.9 * len(hours))
        stages[name] = (len(seconds), sum(seconds) / len(seconds), hours[rank - 1])
    agreements = sum(1 for c in concluded if c.mediation_result == "agreement")
    confirmed = sum(1 for c in decided if c.confirmation_result == "confirmed")
    overdue = sum(1 for c in chosen if c.ever_overdue)
    return {
        "cases": len(chosen),
        "closed": sum(1 for c in chosen if c.closed),
        "status": Counter(c.status for c in chosen),
        "category": Counter(c.category for c in chosen),
        "channel": Counter(c.channel for c in chosen),
        "tier": Counter(c.tier for c in chosen),
        "region": Counter(c.region_code for c in chosen),
        "body": Counter(c.body for c in chosen),
        "mediation": Counter(c.mediation_result for c in concluded),
        "confirmation": Counter(c.confirmation_result for c in chosen if c.confirmation_result),
        "success": (agreements, len(concluded), agreements / len(concluded) if concluded else None),
        "confirmation_rate": (confirmed, len(decided), confirmed / len(decided) if decided else None),
        "overdue": (overdue, len(chosen), overdue / len(chosen) if chosen else None),
        "stages": stages,
        "satisfaction": (len(rated), sum(rated) / len(rated) if rated else None, Counter(map(str, rated))),
    }


def _counts(items: list[dict[str, Any]]) -> Counter[str | None]:
    return Counter({item["key"]: item["count"] for item in items if item["count"]})


def assert_matches(overview: dict[str, Any], expected: dict[str, Any]) -> None:
    assert overview["totals"]["cases"] == expected["cases"]
    assert overview["totals"]["closed"] == expected["closed"]
    for dimension in ("status", "category", "channel", "tier", "region", "body"):
        assert _counts(overview[f"by_{dimension}"]) == expected[dimension], dimension
    assert _counts(overview["mediation_results"]) == expected["mediation"]
    assert _counts(overview["confirmation_results"]) == expected["confirmation"]
    rates = overview["rates"]
    for name, key in (("success", "success"), ("confirmation", "confirmation_rate"), ("overdue", "overdue")):
        got = rates[name]
        assert (got["numerator"], got["denominator"], got["rate"]) == expected[key], name
    stages = {s["stage"]: (s["count"], s["average_seconds"], s["p90_hours"]) for s in overview["stages"]}
    assert stages == expected["stages"]
    satisfaction = overview["satisfaction"]
    count, average, distribution = expected["satisfaction"]
    assert (satisfaction["count"], satisfaction["average"]) == (count, average)
    assert _counts(satisfaction["distribution"]) == distribution


async def _overview(api: Any, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/v1/stats/overview", params=params, headers=headers or api.auth())
    assert response.status_code == 200, response.text
    return response.json()


async def staff_of_new_center(api: Any, role: str, region_code: str, tier: str) -> dict[str, str]:
    """A center at another level of the region tree, with one signed-in member of staff."""
    now = datetime.now(UTC)
    async with api.app.state.db.writer() as session, session.begin():
        center = Body(
            id=uuid.uuid4(),
            name=f"{region_code}调处化解中心",
            kind="mediation_center",
            tier=tier,
            region_code=region_code,
            created_at=now,
        )
        session.add(center)
        await session.flush()
        user = User(
            id=uuid.uuid4(),
            username=f"stats-{role}-{region_code}",
            display_name="统计",
            role=role,
            organisation_id=center.id,
            password_hash="unused",
            active=True,
            created_at=now,
            password_changed_at=now,
        )
        session.add(user)
    token = api.app.state.identity.tokens.issue(user.id, role, center.id).token
    return {"Authorization": f"Bearer {token}"}


# ---- the overview --------------------------------------------------------------------------------


async def test_overview_equals_a_recount_of_the_raw_rows(api):
    await seed(api, 40)
    cases = await raw_cases(api)
    ours = lambda c: c.region_code.startswith("330681")  # noqa: E731
    today = END.astimezone(BEIJING).date()
    assert {c.status for c in cases if ours(c)} >= {
        "registered",
        "declined",
        "mediating",
        "closed",
        "confirmed",
    }

    default = await _overview(api)
    assert (default["from"], default["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    assert default["source"] == "rollup"
    assert default["duration_resolution_seconds"] == 3600
    assert_matches(default, recount(cases, today - timedelta(days=29), today, ours))

    ranges = [
        (date(2026, 3, 1), date(2026, 6, 30)),  # whole months
        (date(2026, 3, 27), date(2026, 5, 3)),  # days at both edges of a month
        (date(2026, 1, 1), date(2026, 12, 31)),  # a whole year
        (date(2025, 12, 20), date(2027, 1, 10)),  # a year and days either side
        (date(2026, 4, 12), date(2026, 4, 12)),  # one day
        (date(2026, 3, 25), date(2026, 3, 25)),  # the first case, registered at 00:30 Beijing time
        (date(2026, 7, 1), date(2026, 7, 31)),  # nothing registered
        (date(2026, 4, 2), date(2026, 12, 31)),  # the year's row minus what lies before
    ]
    for first, last in ranges:
        got = await _overview(api, **{"from": first.isoformat(), "to": last.isoformat()})
        assert got["source"] == "rollup"
        assert_matches(got, recount(cases, first, last, ours))
    # Days are Beijing days: the first case counts on 25 March, though it was still 24 March in UTC.
    assert (await _overview(api, **{"from": "2026-03-25", "to": "2026-03-25"}))["totals"]["cases"] == 1
    assert (await _overview(api, **{"from": "2026-03-24", "to": "2026-03-24"}))["totals"]["cases"] == 0
    everything = await _overview(api, **{"from": "2026-03-01", "to": "2026-06-30"})
    assert everything["totals"]["cases"] == sum(1 for c in cases if ours(c))
    named = {b["key"]: b["label"] for b in everything["by_body"]}
    assert named[str(api.bodies["village"])] == "枫源村人民调解委员会"
    assert named[None] == "未分流到调解组织"

    # A region filter inside the center: a town is below the rollup's counties, a county is not.
    window = {"from": "2026-03-01", "to": "2026-06-30"}
    town = await _overview(api, region="330681105", **window)
    assert town["source"] == "cases"
    assert_matches(
        town,
        recount(cases, date(2026, 3, 1), date(2026, 6, 30), lambda c: c.region_code.startswith("330681105")),
    )
    county = await _overview(api, region="330681", **window)
    assert county["source"] == "rollup"
    assert_matches(county, recount(cases, date(2026, 3, 1), date(2026, 6, 30), ours))
    # One level down: the county's towns, the town's villages, each the sum of its places.
    in_window = [c for c in cases if ours(c) and date(2026, 3, 1) <= c.day <= date(2026, 6, 30)]
    towns = Counter(c.region_code[:9] for c in in_window)
    assert {a["key"]: a["count"] for a in county["by_area"]} == dict(towns)
    villages = Counter(c.region_code[:12] for c in in_window if c.region_code.startswith("330681105"))
    assert {a["key"]: a["count"] for a in town["by_area"]} == dict(villages)

    # A city's supervisor sees both counties; filtered to one, the rollup still answers.
    city = await staff_of_new_center(api, "supervisor", "330600000000", "city")
    both = await _overview(api, city, **window)
    assert both["source"] == "rollup"
    assert_matches(both, recount(cases, date(2026, 3, 1), date(2026, 6, 30)))
    theirs = await _overview(api, city, region="330604", **window)
    assert_matches(
        theirs,
        recount(cases, date(2026, 3, 1), date(2026, 6, 30), lambda c: c.region_code.startswith("330604")),
    )
    assert theirs["totals"]["cases"] > 0


async def test_narrower_scopes_get_the_same_figures_from_their_own_cases(api):
    await seed(api, 25)
    cases = await raw_cases(api)
    first, last = date(2026, 3, 1), date(2026, 6, 30)
    window = {"from": first.isoformat(), "to": last.isoformat()}

    # A town's center: its prefix is longer than a county's.
    town = await staff_of_new_center(api, "clerk", "330681105000", "town")
    got = await _overview(api, town, **window)
    assert got["source"] == "cases"
    assert_matches(got, recount(cases, first, last, lambda c: c.region_code.startswith("330681105")))
    assert got["totals"]["cases"] > 0

    # A body administrator: the cases with its body now.
    village = str(api.bodies["village"])
    got = await _overview(api, api.auth("body_admin", "village"), **window)
    assert got["source"] == "cases"
    assert_matches(got, recount(cases, first, last, lambda c: c.body == village))
    assert got["totals"]["cases"] > 0
    assert [b["key"] for b in got["by_body"]] == [village]
    filtered = await _overview(api, api.auth("body_admin", "village"), region="330681105201", **window)
    assert_matches(
        filtered,
        recount(cases, first, last, lambda c: c.body == village and c.region_code.startswith("330681105201")),
    )


async def test_supervisors_and_clerks_read_statistics_others_do_not(api):
    for role in ("clerk", "supervisor"):
        assert (await api.client.get("/v1/stats/overview", headers=api.auth(role))).status_code == 200
    assert (
        await api.client.get("/v1/stats/overview", headers=api.auth("body_admin", "village"))
    ).status_code == 200
    for role in ("body_mediator", "court", "arbitration", "admin", "auditor"):
        response = await api.client.get("/v1/stats/trend", headers=api.auth(role))
        assert response.status_code == 403, role
        assert response.json()["required_permission"] == "stats:read"
    assert (await api.client.get("/v1/stats/overview", headers={"Authorization": ""})).status_code == 401


# ---- the trend -----------------------------------------------------------------------------------


def _week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


async def test_trend_by_day_week_and_month_equals_the_recount(api):
    await seed(api, 20)
    cases = await raw_cases(api)
    first, last = date(2026, 3, 20), date(2026, 6, 3)
    ours = [c for c in cases if c.region_code.startswith("330681") and first <= c.day <= last]
    overview = await _overview(api, **{"from": first.isoformat(), "to": last.isoformat()})
    for interval, key_of in (
        ("day", lambda d: d.isoformat()),
        ("week", _week_of),
        ("month", lambda d: f"{d:%Y-%m}"),
    ):
        response = await api.client.get(
            "/v1/stats/trend",
            params={"from": first.isoformat(), "to": last.isoformat(), "interval": interval},
            headers=api.auth(),
        )
        assert response.status_code == 200, response.text
        trend = response.json()
        periods = trend["periods"]
        # Every period of the range, in order, the first and last cut to the range.
        assert periods[0]["start"] == first.isoformat() and periods[-1]["end"] == last.isoformat()
        for before, after in itertools.pairwise(periods):
            assert date.fromisoformat(before["end"]) + timedelta(days=1) == date.fromisoformat(after["start"])
        if interval == "week":
            assert all(date.fromisoformat(p["start"]).weekday() == 0 for p in periods[1:])
        expected: dict[str, dict[str, int]] = {}
        for c in ours:
            row = expected.setdefault(key_of(c.day), Counter())
            row["registered"] += 1
            row["closed"] += c.closed
            row["mediations_concluded"] += c.mediation_result is not None
            row["agreements"] += c.mediation_result == "agreement"
            row["confirmations_decided"] += c.confirmation_result not in (None, "withdrawn")
            row["confirmed"] += c.confirmation_result == "confirmed"
            row["overdue"] += c.ever_overdue
            row["satisfaction_count"] += c.satisfaction is not None
        for period in periods:
            want = expected.get(period["period"], Counter())
            for name in (
                "registered",
                "closed",
                "mediations_concluded",
                "agreements",
                "confirmations_decided",
                "confirmed",
                "overdue",
                "satisfaction_count",
            ):
                assert period[name] == want[name], (interval, period["period"], name)
            concluded = period["mediations_concluded"]
            assert period["success_rate"] == (period["agreements"] / concluded if concluded else None)
        assert sum(p["registered"] for p in periods) == overview["totals"]["cases"] == len(ours)
        total = trend["total"]
        assert total["registered"] == overview["totals"]["cases"]
        assert total["agreements"] == overview["totals"]["agreements"]
        assert total["success_rate"] == overview["rates"]["success"]["rate"]
        assert total["overdue_rate"] == overview["rates"]["overdue"]["rate"]
        assert total["satisfaction_average"] == overview["satisfaction"]["average"]

    # The raw path gives the same series (a body administrator's cases).
    village = str(api.bodies["village"])
    response = await api.client.get(
        "/v1/stats/trend",
        params={"from": first.isoformat(), "to": last.isoformat(), "interval": "week"},
        headers=api.auth("body_admin", "village"),
    )
    trend = response.json()
    assert trend["source"] == "cases"
    mine = Counter(_week_of(c.day) for c in cases if c.body == village and first <= c.day <= last)
    assert {p["period"]: p["registered"] for p in trend["periods"] if p["registered"]} == mine


# ---- CSV -----------------------------------------------------------------------------------------


async def test_csv_exports_match_the_json(api):
    await seed(api, 12)
    params = {"from": "2026-03-01", "to": "2026-05-31"}
    overview = await _overview(api, **params)

    response = await api.client.get(
        "/v1/stats/overview", params={**params, "format": "csv"}, headers=api.auth()
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="stats-overview-2026-03-01-2026-05-31.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for Excel
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["维度", "代码", "名称", "数量", "分母", "比率", "平均值", "P90(小时)"]
    assert all(len(row) == 8 for row in rows)
    by = {(row[0], row[1]): row for row in rows[1:]}
    assert by[("meta", "from")][2] == "2026-03-01"
    assert int(by[("totals", "cases")][3]) == overview["totals"]["cases"]
    for item in overview["by_category"]:
        assert by[("category", item["key"])][2:4] == [item["label"], str(item["count"])]
    assert by[("status", "mediating")][2] == "调解中"
    for item in overview["by_body"]:
        assert int(by[("body", item["key"] or "")][3]) == item["count"]
    success = overview["rates"]["success"]
    row = by[("rate", "success")]
    assert (int(row[3]), int(row[4]), float(row[5])) == (
        success["numerator"],
        success["denominator"],
        success["rate"],
    )
    for stage in overview["stages"]:
        row = by[("stage", stage["stage"])]
        assert int(row[3]) == stage["count"]
        assert (float(row[6]) if row[6] else None) == stage["average_hours"]
        assert (int(row[7]) if row[7] else None) == stage["p90_hours"]

    # Accept: text/csv works as well; English headers follow Accept-Language.
    response = await api.client.get(
        "/v1/stats/trend",
        params={**params, "interval": "month"},
        headers={**api.auth(), "Accept": "text/csv", "Accept-Language": "en"},
    )
    assert response.status_code == 200
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="stats-trend-month-2026-03-01-2026-05-31.csv"'
    )
    trend_rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["period"] for r in trend_rows] == ["2026-03", "2026-04", "2026-05", "total"]
    assert sum(int(r["registered"]) for r in trend_rows[:-1]) == int(trend_rows[-1]["registered"])
    assert int(trend_rows[-1]["registered"]) == overview["totals"]["cases"]
    assert int(trend_rows[-1]["agreements"]) == overview["totals"]["agreements"]


# ---- keeping the rollup current -------------------------------------------------------------------


async def _rollup_rows(api: Any) -> dict[tuple[str, str, date], tuple[Any, ...]]:
    async with api.app.state.db.reader() as session:
        rows = (await session.scalars(select(StatsRollup))).all()
    return {
        (r.grain, r.region, r.period): (r.cases, r.closed, r.agreements, r.overdue, r.summary) for r in rows
    }


async def test_a_labour_case_sent_to_arbitration_from_mediation_counts_as_a_mediation_without_agreement(api):
    # 劳动争议调解仲裁法 Art. 14: fifteen days passed without agreement, arbitration is open; the
    # mediation ended, without an agreement, and counts so in the results and the success rate.
    clock = api.app.state.clock
    clock.at = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    dispute = await api.drive("mediating", category="labour")
    last_day = date.fromisoformat(dispute["clock"]["due_on"])
    clock.at += timedelta(days=(last_day - clock.today()).days + 1)
    referred = await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    assert referred["status"] == "referred_arbitration"
    overview = await _overview(api, **{"from": "2026-05-01", "to": "2026-05-31"})
    assert _counts(overview["mediation_results"]) == {"failed": 1}
    mediation = next(s for s in overview["stages"] if s["stage"] == "mediation")
    assert mediation["count"] == 1


async def test_a_change_after_a_statistics_call_shows_in_the_next(api):
    clock = api.app.state.clock
    clock.at = datetime(2026, 5, 30, 3, 0, tzinfo=UTC)
    first = await api.intake(category="contract")
    second = await api.intake(category="debt", channel="hotline")
    window = {"from": "2026-05-01", "to": "2026-05-31"}
    before = await _overview(api, **window)
    assert before["totals"]["cases"] == 2
    assert _counts(before["by_status"]) == {"registered": 2}
    assert before["as_of"].startswith("2026-05-30T03:00")

    clock.at += timedelta(hours=5, minutes=20)
    accepted = await api.step(await api.get(first), "accept")
    await api.intake(category="debt", region_code="330681001003")
    after = await _overview(api, **window)
    assert after["totals"]["cases"] == 3
    assert _counts(after["by_status"]) == {"registered": 2, "accepted": 1}
    assert _counts(after["by_category"]) == {"contract": 1, "debt": 2}
    intake = next(s for s in after["stages"] if s["stage"] == "intake")
    assert (intake["count"], intake["average_seconds"], intake["p90_hours"]) == (1, 5 * 3600 + 20 * 60, 5)

    # A change stamped by another writer (the follow-up visit's rating) is picked up too.
    clock.at += timedelta(minutes=1)
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Dispute)
            .where(Dispute.id == uuid.UUID(second["id"]))
            .values(satisfaction=4, ever_overdue=True, updated_at=clock.now(), version=Dispute.version + 1)
        )
    rated = await _overview(api, **window)
    assert (rated["satisfaction"]["count"], rated["satisfaction"]["average"]) == (1, 4.0)
    assert rated["rates"]["overdue"] == {"numerator": 1, "denominator": 3, "rate": 1 / 3}

    # Nothing changed: the next refresh finds nothing to do.
    db, settings = api.app.state.db, api.app.state.settings
    assert await refresh(db, clock, settings) == 0
    # Later changes across days and months, then the rollup kept by increments equals one rebuilt
    # from scratch, row for row.
    clock.at = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)
    await api.step(await api.get(accepted), "assign")
    await api.intake(category="labour")
    assert await refresh(db, clock, settings) == 2  # 30 May (the case moved) and 2 June (the new case)
    kept = await _rollup_rows(api)
    async with db.writer() as session, session.begin():
        await session.execute(delete(StatsRollup))
        await session.execute(delete(StatsRefreshState))
    assert await refresh(db, clock, settings) == 2
    assert await _rollup_rows(api) == kept
    months = {k: v for k, v in kept.items() if k[0] == "month" and k[1] == "330681"}
    assert {k[2]: v[0] for k, v in months.items()} == {date(2026, 5, 1): 3, date(2026, 6, 1): 1}


async def test_an_unchanged_rollup_answers_from_the_kept_overview_and_any_refresh_replaces_it(api):
    clock = api.app.state.clock
    db, settings = api.app.state.db, api.app.state.settings
    clock.at = datetime(2026, 5, 30, 3, 0, tzinfo=UTC)
    assigned = await api.step(await api.step(await api.intake(category="contract"), "accept"), "assign")
    await api.intake(category="debt")
    window = {"from": "2026-05-01", "to": "2026-05-31"}
    stats_service._OVERVIEWS.clear()  # earlier tests' answers, which the limit would push out
    first = await _overview(api, **window)
    kept = len(stats_service._OVERVIEWS)
    assert kept == 1

    # Nothing changed: the same answer, kept, with the time it is as of moved on.
    clock.at += timedelta(minutes=3)
    again = await _overview(api, **window)
    assert len(stats_service._OVERVIEWS) == kept
    assert again["as_of"].startswith("2026-05-30T03:03")
    assert {**again, "as_of": None} == {**first, "as_of": None}

    # The labels are in the request's language: English is an answer of its own.
    english = await _overview(api, {**api.auth(), "Accept-Language": "en"}, **window)
    assert len(stats_service._OVERVIEWS) == kept + 1
    status_label = {item["key"]: item["label"] for item in english["by_status"]}
    assert status_label["registered"] != {i["key"]: i["label"] for i in first["by_status"]}["registered"]
    assert english["totals"] == first["totals"]

    # A body renamed changes no case: the kept answer shows the new name all the same.
    body_id = assigned["body_id"]
    async with db.writer() as session, session.begin():
        await session.execute(update(Body).where(Body.id == uuid.UUID(body_id)).values(name="更名后的调委会"))
    renamed = await _overview(api, **window)
    assert {i["key"]: i["label"] for i in renamed["by_body"]}[body_id] == "更名后的调委会"

    # A change refreshed by someone else (the scheduler, another process) writes a new generation:
    # the next answer is computed again and counts it.
    clock.at += timedelta(minutes=1)
    async with db.writer() as session, session.begin():
        await session.execute(
            update(Dispute)
            .where(Dispute.id == uuid.UUID(assigned["id"]))
            .values(satisfaction=5, updated_at=clock.now(), version=Dispute.version + 1)
        )
    assert await refresh(db, clock, settings) == 1
    rated = await _overview(api, **window)
    assert (rated["satisfaction"]["count"], rated["satisfaction"]["average"]) == (1, 5.0)
    assert rated["totals"] == first["totals"]


async def _refresh_state(api: Any) -> StatsRefreshState:
    async with api.app.state.db.reader() as session:
        state = await session.get(StatsRefreshState, stats_service.STATE_ID)
    assert state is not None
    return state


async def test_a_window_left_full_by_a_burst_is_emptied_once_quiet_and_later_changes_still_count(api):
    """Each statistics request counts the cases stamped within REFRESH_MARGIN of the refresh mark.
    After a burst (a bulk load: every case at once) that window would hold the whole burst for as
    long as nothing else changed; once every case in it is older than the margin, one refresh
    empties it, with the rollup and its generation unchanged."""
    clock = api.app.state.clock
    db, settings = api.app.state.db, api.app.state.settings
    clock.at = datetime(2026, 5, 30, 3, 0, tzinfo=UTC)
    for category in ("contract", "debt", "labour"):
        await api.intake(category=category)
    window = {"from": "2026-05-01", "to": "2026-05-31"}
    stats_service._OVERVIEWS.clear()
    first = await _overview(api, **window)
    state = await _refresh_state(api)
    assert len(state.seen) == 3
    generation = state.generation

    # Within the margin the burst stays in the window: a transaction stamped then may not have
    # committed when the rollup read the cases.
    clock.at += timedelta(minutes=4)
    await _overview(api, **window)
    assert len((await _refresh_state(api)).seen) == 3

    # Past it, with nothing changed: the window is emptied once; the kept answer still stands.
    clock.at += timedelta(minutes=2)
    kept = len(stats_service._OVERVIEWS)
    quiet = await _overview(api, **window)
    state = await _refresh_state(api)
    assert (state.seen, state.generation, state.high_water) == ({}, generation, clock.now())
    assert {**quiet, "as_of": None} == {**first, "as_of": None}
    assert len(stats_service._OVERVIEWS) == kept
    assert await refresh(db, clock, settings) == 0

    # A change stamped before that refresh but committed after it is still inside the next window.
    emptied_at = clock.now()
    clock.at += timedelta(minutes=1)
    async with db.writer() as session, session.begin():
        await session.execute(
            update(Dispute)
            .where(Dispute.category == "debt")
            .values(satisfaction=3, updated_at=emptied_at - timedelta(minutes=2), version=Dispute.version + 1)
        )
    rated = await _overview(api, **window)
    assert (rated["satisfaction"]["count"], rated["satisfaction"]["average"]) == (1, 3.0)
    assert (await _refresh_state(api)).generation != generation
    # And a new case.
    await api.intake(category="neighbour")
    after = await _overview(api, **window)
    assert after["totals"]["cases"] == 4


async def test_a_long_first_build_runs_in_the_background_meanwhile_503(api, monkeypatch):
    monkeypatch.setattr(stats_service, "INLINE_BUILD_LIMIT", 1)
    await api.intake()
    await api.intake(category="debt")
    response = await api.client.get("/v1/stats/overview", headers=api.auth("supervisor"))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "60"
    await stats_service._first_builds[id(api.app.state.db)]
    built = await _overview(api, api.auth("supervisor"))
    assert built["totals"]["cases"] == 2


def test_summaries_add_up_and_subtract_exactly():
    at = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)

    def case(i: int) -> CaseFacts:
        return CaseFacts(
            status=("registered", "mediating", "closed")[i % 3],
            category=CATEGORIES[i % len(CATEGORIES)],
            channel=CHANNELS[i % len(CHANNELS)],
            tier="village",
            region_code=OUR_REGIONS[i % len(OUR_REGIONS)],
            body_id=None if i % 2 else uuid.UUID(int=i % 3),
            created_at=at,
            closed_at=at + timedelta(hours=i * 7) if i % 3 == 2 else None,
            accepted_at=at + timedelta(minutes=i * 37),
            mediation_started_at=None,
            mediation_ended_at=None,
            mediation_result=None,
            confirmation_requested_at=None,
            confirmation_decided_at=None,
            confirmation_result=None,
            ever_overdue=i % 4 == 0,
            satisfaction=i % 6 or None,
        )

    cases = [case(i) for i in range(30)]
    whole = summarise(cases)
    halves = merge(summarise(cases[:11]), summarise(cases[11:]))
    assert halves == whole
    assert merge(whole, summarise(cases[11:]), -1) == summarise(cases[:11])
    assert merge(summarise(cases[:5]), summarise(cases[:5]), -1) == {}


def test_a_range_is_read_as_rows_added_and_taken_away_exactly():
    stored: set[tuple[str, date]] = set()
    day = date(2023, 6, 1)
    while day <= date(2026, 6, 1):  # three years of cases, every day
        stored |= {("day", day), ("month", day.replace(day=1)), ("year", day.replace(month=1, day=1))}
        day += timedelta(days=1)

    def days_read(pieces: list[tuple[str, date, int]]) -> Counter[date]:
        counted: Counter[date] = Counter()
        for grain, start, sign in pieces:
            assert (grain, start) in stored
            end = {
                "day": start,
                "month": (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1),
                "year": start.replace(month=12, day=31),
            }[grain]
            for n in range((end - start).days + 1):
                if ("day", start + timedelta(days=n)) in stored:
                    counted[start + timedelta(days=n)] += sign
        return +counted

    for first, last in [
        (date(2023, 6, 2), date(2026, 6, 1)),
        (date(2026, 5, 3), date(2026, 6, 1)),
        (date(2026, 3, 27), date(2026, 5, 3)),
        (date(2025, 12, 20), date(2027, 1, 10)),
        (date(2024, 2, 29), date(2024, 2, 29)),
        (date(2020, 1, 1), date(2023, 5, 31)),
    ]:
        pieces = plan(first, last, stored)
        wanted = {("day", first + timedelta(days=n)) for n in range((last - first).days + 1)} & stored
        assert days_read(pieces) == Counter({d: 1 for _, d in wanted}), (first, last)
    # Three years up to today: four yearly rows less one day; the last 30 days: May less two days, and June.
    assert plan(date(2023, 6, 2), date(2026, 6, 1), stored) == [
        ("year", date(2023, 1, 1), 1),
        ("day", date(2023, 6, 1), -1),
        ("year", date(2024, 1, 1), 1),
        ("year", date(2025, 1, 1), 1),
        ("year", date(2026, 1, 1), 1),
    ]
    assert plan(date(2026, 5, 3), date(2026, 6, 1), stored) == [
        ("month", date(2026, 5, 1), 1),
        ("day", date(2026, 5, 1), -1),
        ("day", date(2026, 5, 2), -1),
        ("day", date(2026, 6, 1), 1),
    ]


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field", "code"),
    [
        ("overview", {"from": "2026-05-10", "to": "2026-05-01"}, "from", "range_reversed"),
        ("overview", {"from": "2010-01-01", "to": "2026-05-01"}, "to", "range_too_long"),
        ("trend", {"from": "1900-01-01", "to": "1900-02-01"}, "from", "date_out_of_range"),
        ("overview", {"region": "330604"}, "region", "outside_region"),
        ("overview", {"region": "33"}, "region", "outside_region"),
        ("overview", {"region": "3306041"}, "region", "string_pattern_mismatch"),
        ("trend", {"interval": "hour"}, "interval", "enum"),
        ("overview", {"from": "2026-02-30"}, "from", "date_from_datetime_parsing"),
        ("overview", {"format": "xlsx"}, "format", "enum"),
    ],
)
async def test_bad_input_is_a_bilingual_problem(api, path, params, field, code):
    response = await api.client.get(f"/v1/stats/{path}", params=params, headers=api.auth("supervisor"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["code"] == code, problem
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["detail"])  # Chinese by default
    english = await api.client.get(
        f"/v1/stats/{path}", params=params, headers={**api.auth("supervisor"), "Accept-Language": "en"}
    )
    assert english.status_code == 422
    assert english.json()["detail"].isascii()
