"""Statistics overview over 1,000,000 cases on PostgreSQL: the answer must come in under 200 ms.

Creates a scratch PostgreSQL database, migrates it, and loads a million cases with COPY: three
years of registrations in ten counties with their towns, 16 categories, every channel and tier,
200 bodies, and statuses whose milestones agree with them (a closed case was accepted, mediated
and ended before it closed). Builds the statistics rollup and reports how long that took, then
times `GET /v1/stats/overview` for a province-level supervisor (HTTP through the ASGI app,
authentication and the rollup's freshness check included) over the default 30 days and over
three years. Prints the figures; exits 1 when a p95 is over the target. The database is dropped
at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common import bench_settings
from sqlalchemy import text

from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.disputes.enums import Category, Channel
from mediation.migrate import upgrade
from mediation.stats.service import refresh

TARGET_MS = 200.0
CASES = int(os.environ.get("MEDIATION_BENCH_STATS_CASES", "1000000"))
BODIES = 200
RUNS = 60
BATCH = 50_000
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
COUNTIES = (
    "330102",
    "330105",
    "330106",
    "330110",
    "330602",
    "330603",
    "330604",
    "330624",
    "330681",
    "330683",
)
CATEGORY_WEIGHTS = (16, 22, 10, 9, 5, 8, 4, 2, 2, 8, 4, 2, 4, 6, 6, 2)  # neighbours and families lead
CHANNEL_WEIGHTS = (40, 15, 20, 15, 4, 3, 3)
TIERS = ("village", "town", "county", "city")
TIER_WEIGHTS = (45, 35, 17, 3)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

DISPUTE_COLUMNS = (
    "id",
    "case_number",
    "query_code_hash",
    "category",
    "subject_matters",
    "description",
    "channel",
    "region_code",
    "people_involved",
    "severity",
    "is_group",
    "is_risk",
    "tier",
    "status",
    "version",
    "body_id",
    "applied_on",
    "created_by",
    "created_at",
    "updated_at",
    "closed_at",
    "accepted_at",
    "mediation_started_at",
    "mediation_ended_at",
    "mediation_result",
    "confirmation_requested_at",
    "confirmation_decided_at",
    "confirmation_result",
    "ever_overdue",
    "satisfaction",
)


def _path(rng: random.Random, created: datetime) -> tuple[str, int, dict[str, Any]]:
    """A case's milestones, drawn in order and cut off at NOW: (status reached, version, milestones)."""
    reached: dict[str, Any] = {}

    def later(after: datetime, low: float, high: float, unit: timedelta) -> datetime:
        return after + unit * rng.uniform(low, high)

    if rng.random() < 0.05:
        at = later(created, 0.5, 48, HOUR)
        return ("declined", 2, {"closed_at": at}) if at <= NOW else ("registered", 1, reached)
    if (at := later(created, 0.5, 72, HOUR)) > NOW:
        return "registered", 1, reached
    reached["accepted_at"] = at
    if (at := later(at, 0.2, 24, HOUR)) > NOW:
        return "accepted", 2, reached
    reached["assigned"] = True
    if (at := later(at, 1, 96, HOUR)) > NOW:
        return "assigned", 3, reached
    reached["mediation_started_at"] = at
    if (at := later(at, 0.5, 30, DAY)) > NOW:
        return "mediating", 4, reached
    draw = rng.random()
    result = "agreement" if draw < 0.65 else "failed" if draw < 0.9 else "withdrawn"
    reached["mediation_ended_at"], reached["mediation_result"] = at, result
    if result == "withdrawn":
        return "withdrawn", 5, reached
    if result == "failed":
        if (at := later(at, 1, 10, DAY)) > NOW or rng.random() < 0.3:
            return "mediation_failed", 5, reached
        return rng.choice(("referred_litigation", "referred_arbitration")), 6, reached
    status, version = "agreement_signed", 5
    if rng.random() < 0.3:
        if (at := later(at, 1, 25, DAY)) > NOW:
            return status, version, reached
        reached["confirmation_requested_at"] = at
        if (at := later(at, 1, 30, DAY)) > NOW:
            return "confirmation_pending", 6, reached
        draw = rng.random()
        decision = "confirmed" if draw < 0.85 else "rejected" if draw < 0.95 else "not_accepted"
        reached["confirmation_decided_at"], reached["confirmation_result"] = at, decision
        if decision == "rejected":
            return "confirmation_rejected", 8, reached
        status, version = ("confirmed" if decision == "confirmed" else "agreement_signed"), 8
    if (at := later(at, 3, 60, DAY)) > NOW:
        return status, version, reached
    reached["closed_at"] = at
    if rng.random() < 0.6:
        reached["satisfaction"] = rng.choices((1, 2, 3, 4, 5), (2, 3, 10, 35, 50))[0]
    return "closed", version + 2, reached


MILESTONES = (
    "closed_at",
    "accepted_at",
    "mediation_started_at",
    "mediation_ended_at",
    "mediation_result",
    "confirmation_requested_at",
    "confirmation_decided_at",
    "confirmation_result",
)


def _case(rng: random.Random, n: int, bodies: list[uuid.UUID]) -> tuple[Any, ...]:
    created = NOW - SPAN * rng.random()
    county = rng.choice(COUNTIES)
    region = f"{county}{rng.randint(1, 12):03d}{rng.choice((0, 0, rng.randint(201, 230))):03d}"
    status, version, reached = _path(rng, created)
    stamps = [v for v in reached.values() if isinstance(v, datetime)]
    return (
        uuid.UUID(int=rng.getrandbits(128)),
        f"{county}-{created.year}-{n:07d}",
        "0" * 64,
        rng.choices(list(Category), CATEGORY_WEIGHTS)[0].value,
        "[]",
        "基准测试用纠纷。",
        rng.choices(list(Channel), CHANNEL_WEIGHTS)[0].value,
        region,
        rng.randint(2, 12),
        "ordinary",
        False,
        False,
        rng.choices(TIERS, TIER_WEIGHTS)[0],
        status,
        version,
        rng.choice(bodies) if reached.get("assigned") else None,
        created.date(),
        "bench",
        created,
        max([created, *stamps]),
        *(reached.get(name) for name in MILESTONES),
        rng.random() < 0.08,
        reached.get("satisfaction"),
    )


def _batches(bodies: list[uuid.UUID]) -> Iterator[list[tuple[Any, ...]]]:
    rng = random.Random(20261122)
    for start in range(0, CASES, BATCH):
        yield [_case(rng, n, bodies) for n in range(start, min(start + BATCH, CASES))]


async def load(dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The bodies, a province-level center with its supervisor, and the cases; answers (center, user)."""
    conn = await asyncpg.connect(dsn)
    try:
        center, user = uuid.uuid4(), uuid.uuid4()
        bodies = [uuid.uuid4() for _ in range(BODIES)]
        body_rows = [
            (center, "浙江省矛盾纠纷调处化解中心", "mediation_center", "city", "330000000000", True, NOW)
        ]
        body_rows += [
            (
                body,
                f"第{i:03d}调解委员会",
                "people_mediation_committee",
                TIERS[i % 3],
                f"{COUNTIES[i % len(COUNTIES)]}{1 + i % 12:03d}000",
                True,
                NOW,
            )
            for i, body in enumerate(bodies)
        ]
        await conn.copy_records_to_table(
            "bodies",
            records=body_rows,
            columns=["id", "name", "kind", "tier", "region_code", "active", "created_at"],
        )
        await conn.execute(
            "INSERT INTO users (id, username, display_name, role, organisation_id, password_hash, active, "
            "created_at, password_changed_at) VALUES ($1, 'bench-supervisor', '基准', 'supervisor', $2, 'x', "
            "true, $3, $3)",
            user,
            center,
            NOW,
        )
        for batch in _batches(bodies):
            await conn.copy_records_to_table("disputes", records=batch, columns=list(DISPUTE_COLUMNS))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return center, user


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


async def main(admin_dsn: str) -> int:
    name = f"mediation_bench_stats_{os.getpid()}"
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL at {admin_dsn} unreachable ({exc}); the statistics benchmark needs it")
        return 0
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = admin_dsn.rsplit("/", 1)[0]
    try:
        return await _run(
            f"{base}/{name}", base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        )
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def _run(dsn: str, url: str) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mediation-bench-stats-"))
    await asyncio.to_thread(upgrade, url)
    started = time.perf_counter()
    center, user = await load(dsn)
    load_s = time.perf_counter() - started
    settings = bench_settings(url, workdir)
    clock = FrozenClock(NOW)
    app = create_app(settings, clock)
    db = app.state.db
    started = time.perf_counter()
    days = await refresh(db, clock, settings)
    build_s = time.perf_counter() - started
    async with db.reader() as session:
        rollup_rows = await session.scalar(text("SELECT count(*) FROM stats_rollups"))
    token = app.state.identity.tokens.issue(user, "supervisor", center).token
    headers = {"Authorization": f"Bearer {token}"}
    today = NOW.date()
    scenarios = {
        "default range (30 days)": {},
        "three years": {"from": (today - timedelta(days=3 * 365)).isoformat(), "to": today.isoformat()},
    }
    timings: dict[str, list[float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        for label, params in scenarios.items():
            first = await client.get("/v1/stats/overview", params=params, headers=headers)
            assert first.status_code == 200, first.text
            body = first.json()
            assert body["source"] == "rollup", body["source"]
            print(f"  {label}: {body['totals']['cases']} cases, as_of {body['as_of']}")
            runs = []
            for _ in range(RUNS):
                start = time.perf_counter()
                response = await client.get("/v1/stats/overview", params=params, headers=headers)
                runs.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            timings[label] = runs
        # A case changes between two requests (a clerk's action, stamped a second later each
        # time): the request first brings the rollup up to date, counting that case's day again.
        changed_ms = []
        conn = await asyncpg.connect(dsn)
        for i in range(1, 11):
            await conn.execute(
                "UPDATE disputes SET version = version + 1, ever_overdue = NOT ever_overdue, updated_at = $1 "
                "WHERE id = (SELECT id FROM disputes OFFSET $2 LIMIT 1)",
                NOW + timedelta(seconds=i),
                i * 97_331 % CASES,
            )
            start = time.perf_counter()
            response = await client.get("/v1/stats/overview", headers=headers)
            changed_ms.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        await conn.close()
        three_years = scenarios["three years"]
        trend_ms = []
        for _ in range(10):
            start = time.perf_counter()
            response = await client.get(
                "/v1/stats/trend", params={**three_years, "interval": "week"}, headers=headers
            )
            trend_ms.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
    await db.dispose()

    print(f"statistics overview over {CASES:,} cases (postgresql, {RUNS} runs per range)")
    print(f"  load with COPY                 {load_s:6.1f} s")
    print(f"  initial rollup build           {build_s:6.1f} s  ({days} days, {rollup_rows} rollup rows)")
    ok = True
    for label, runs in timings.items():
        p95 = _p(runs, 95)
        ok = ok and p95 < TARGET_MS
        print(
            f"  GET /v1/stats/overview, {label:24s} p50 {_p(runs, 50):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {max(runs):6.1f} ms"
        )
    print(
        f"  GET /v1/stats/overview, a case changed since the last request  median {statistics.median(changed_ms):6.1f} ms"
    )
    print(f"  GET /v1/stats/trend, three years by week   median {statistics.median(trend_ms):6.1f} ms")
    print(f"  target: p95 under {TARGET_MS:.0f} ms -> {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    dsn = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--postgres" else None
    sys.exit(asyncio.run(main(dsn or "postgresql://postgres@127.0.0.1:5432/postgres")))
