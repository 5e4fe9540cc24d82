"""Faults on PostgreSQL, against the service as it is deployed: `mediation serve` (uvicorn) in processes
of its own on 127.0.0.1, driven over real HTTP while the database misbehaves.

- connections killed under load (`pg_terminate_backend`): in-flight requests answer 503 problem+json,
  the next ones succeed, and every case still has one timeline entry, one event and one audit record
  per version;
- a query held past `statement_timeout`, and a pool with no free connection: 503 within the limit,
  and the connection goes back to the pool;
- SIGTERM with 50 requests in flight: all 50 complete before the process exits;
- PostgreSQL stopped and started again: `/readyz` fails while it is down, `/healthz` never does, and
  the service recovers on its own;
- two worker processes, 200 conflicting actions on one case at once: exactly one succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.transaction import Transaction
from sqlalchemy import func, select

from mediation.app import create_app
from mediation.audit.models import AuditRecord
from mediation.clocks.scheduler import tick
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute, TimelineEntry
from mediation.events.models import OutboxEvent
from mediation.migrate import upgrade
from tests.conftest import PG_ADMIN_DSN
from tests.support import Api, at_beijing, intake_body, person

# PostgreSQL only; servers of its own, timed against the clock, so alone (after the parallel part).
pytestmark = [pytest.mark.postgres_only, pytest.mark.serial]

PROBLEM = "application/problem+json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]


def _spawn(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)


@contextlib.asynccontextmanager
async def serve(settings: Settings, tmp: Path, workers: int = 1, **env: Any) -> AsyncIterator[Served]:
    """`mediation serve` on a free port with the test's database and secrets; `env` sets more
    `MEDIATION_*` settings (pool size, timeouts)."""
    port = _free_port()
    environment = {
        **os.environ,
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_ENCRYPTION_KEYS": str(settings.pii_encryption_keys),
        "MEDIATION_PII_INDEX_KEY": str(settings.pii_index_key),
        "MEDIATION_ARGON2_TIME_COST": "1",
        "MEDIATION_ARGON2_MEMORY_KIB": "1024",
        "MEDIATION_ARGON2_PARALLELISM": "1",
        "MEDIATION_RELAY_IN_APP": "false",
        "MEDIATION_CLOCK_IN_APP": "false",
        "MEDIATION_RATE_LIMIT_PER_MINUTE": "100000",
        "MEDIATION_DOCUMENTS_DIR": str(tmp / "documents"),
        **{f"MEDIATION_{k.upper()}": str(v) for k, v in env.items()},
    }
    log = tmp / f"serve-{port}.log"
    process = _spawn(
        [sys.executable, "-m", "mediation", "serve", "--port", str(port), "--workers", str(workers)],
        environment,
        log,
        tmp,
    )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as probe:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, f"the server exited:\n{served.output()}"
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"the server did not start:\n{served.output()}"
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _intake(serial: int) -> dict[str, Any]:
    """An intake whose parties are new to the run (serials below 10,000: the phone has four digits)."""
    return intake_body(parties=[person("applicant", "甲", serial), person("respondent", "乙", serial + 1)])


def _clerk(api: Api) -> dict[str, str]:
    return api.headers("clerk", "center")


def over_http(api: Api, client: httpx.AsyncClient) -> Api:
    """The same helper (bodies, users, keys) talking to the served process."""
    live = copy.copy(api)
    live.client = client
    live.agreements = {}
    return live


@contextlib.asynccontextmanager
async def table_locked(database_url: str, table: str, mode: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session holds `table` in `mode` until the block ends: whoever needs it waits."""
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(f"LOCK TABLE {table} IN {mode} MODE")
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def waiting_on_locks(database_url: str) -> int:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
        )
    finally:
        await conn.close()


async def until_a_session_waits_on_a_lock(database_url: str) -> None:
    """Returns once a session waits on a lock, or after five seconds (what the test checks next
    then tells)."""
    for _ in range(100):
        if await waiting_on_locks(database_url):
            return
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def timeline_entries_wait_for_another_session(
    database_url: str,
) -> AsyncIterator[tuple[asyncpg.Connection, Transaction]]:
    """Another session holds an advisory lock that a trigger makes every timeline entry written
    wait for: a request or a scheduler step writing one waits there with its case locked. The lock
    is held until that session's transaction ends (the second item: the block may end it early,
    else it ends with the block). That session looks for a deadlock only after 10 s, a request's
    after the server's default second, so it is never the one chosen as a deadlock's victim."""
    other = await asyncpg.connect(_dsn(database_url))
    try:
        await other.execute(
            "CREATE FUNCTION wait_for_other() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_advisory_xact_lock(42); RETURN NEW; END $$;"
            " CREATE TRIGGER wait_for_other AFTER INSERT ON timeline_entries"
            " FOR EACH ROW EXECUTE FUNCTION wait_for_other()"
        )
        transaction = other.transaction()
        await transaction.start()
        try:
            await other.execute("SET LOCAL deadlock_timeout = '10s'")
            await other.execute("SELECT pg_advisory_xact_lock(42)")
            yield other, transaction
        finally:
            if other.is_in_transaction():
                await transaction.rollback()
            await other.execute(
                "DROP TRIGGER wait_for_other ON timeline_entries; DROP FUNCTION wait_for_other()"
            )
    finally:
        await other.close()


def assert_problem(response: httpx.Response, status: int = 503) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"]
    assert "Traceback" not in response.text and "asyncpg" not in response.text


async def consistent(app: Any) -> dict[str, int]:
    """Every case has, for each of its versions, one timeline entry and one event, and its changes
    are audited (the intake at least; one request can add more than one version, e.g. an intake that
    joins an alert); answers the totals."""
    async with app.state.db.reader() as session:
        cases = {d.id: d.version for d in (await session.scalars(select(Dispute))).all()}
        timeline = Counter(
            dict(
                (
                    await session.execute(
                        select(TimelineEntry.dispute_id, func.count()).group_by(TimelineEntry.dispute_id)
                    )
                ).all()
            )
        )
        events = Counter(
            dict(
                (
                    await session.execute(
                        select(OutboxEvent.dispute_id, func.count()).group_by(OutboxEvent.dispute_id)
                    )
                ).all()
            )
        )
        records = await session.execute(
            select(AuditRecord.object_id, AuditRecord.action, AuditRecord.details).where(
                AuditRecord.outcome == "success", AuditRecord.object_type == "dispute"
            )
        )
        # One record per change request (named after its route); reads of personal data add
        # records of their own (`pii.read` and the like), which are not changes.
        audited = Counter(
            object_id
            for object_id, action, details in records.all()
            if details.get("method") != "GET" and "." not in action
        )
    for case_id, version in cases.items():
        assert timeline[case_id] == version, (case_id, version, timeline[case_id])
        assert events[case_id] == version, (case_id, version, events[case_id])
        assert 1 <= audited[str(case_id)] <= version, (case_id, version, audited[str(case_id)])
    return {"cases": len(cases), "versions": sum(cases.values())}


# ---- connections terminated under load -------------------------------------------------------------


async def test_terminated_connections_answer_503_then_the_service_recovers_and_nothing_is_torn(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    stop = asyncio.Event()
    serials = iter(range(1000, 9000, 2))

    async with (
        serve(settings, tmp_path, db_pool_size=8) as served,
        httpx.AsyncClient(base_url=served.url, timeout=30) as client,
    ):
        live = over_http(api, client)

        async def worker() -> None:
            while not stop.is_set():
                response = await client.post(
                    "/v1/disputes", json=_intake(next(serials)), headers=_clerk(live)
                )
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    dispute = response.json()
                    response = await live.act(dispute, "accept")
                    statuses[response.status_code] += 1
                if response.status_code not in (200, 201):
                    if response.status_code != 503:
                        bad.append(response.text[:300])
                    else:
                        assert_problem(response)

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        await asyncio.sleep(1.5)  # under load
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                settings.database_url.rsplit("/", 1)[1],
            )
        finally:
            await admin.close()
        killed_at = time.monotonic()
        # The next requests succeed within a second.
        recovered = None
        while recovered is None and time.monotonic() - killed_at < 5:
            probe = await client.get("/v1/disputes", params={"limit": 1}, headers=live.auth("clerk"))
            if probe.status_code == 200:
                recovered = time.monotonic() - killed_at
            else:
                assert_problem(probe)
        await asyncio.sleep(1.0)  # and the load goes on
        stop.set()
        await asyncio.gather(*workers)

    assert killed >= 1
    assert recovered is not None and recovered < 1.0, recovered
    assert not bad, bad
    assert statuses[500] == 0
    assert statuses[201] > 10 and statuses[200] > 10, statuses
    totals = await consistent(app)
    assert totals["cases"] >= statuses[201]


# ---- statement timeout and pool exhaustion ---------------------------------------------------------


async def test_a_query_past_the_statement_timeout_answers_503_and_frees_its_connection(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    dispute = await api.intake()
    async with (
        serve(settings, tmp_path, db_pool_size=1, db_max_overflow=0, db_statement_timeout_ms=1000) as served,
        httpx.AsyncClient(base_url=served.url, timeout=30) as client,
    ):
        url = f"/v1/disputes/{dispute['id']}"
        assert (await client.get(url, headers=api.auth("clerk"))).status_code == 200
        async with table_locked(settings.database_url, "disputes", "ACCESS EXCLUSIVE"):
            started = time.monotonic()
            response = await client.get(url, headers=api.auth("clerk"))
            took = time.monotonic() - started
        assert_problem(response)
        assert took < 1.0 + 0.5, took
        # The pool's only connection came back: the next requests are served.
        for _ in range(3):
            assert (await client.get(url, headers=api.auth("clerk"))).status_code == 200


async def test_no_free_connection_answers_503_within_the_pool_timeout_without_hanging(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    dispute = await api.intake()
    async with (
        serve(
            settings,
            tmp_path,
            db_pool_size=1,
            db_max_overflow=0,
            db_pool_timeout_seconds=1.0,
            db_statement_timeout_ms=20_000,
        ) as served,
        httpx.AsyncClient(base_url=served.url, timeout=30) as client,
    ):
        url = f"/v1/disputes/{dispute['id']}"
        async with table_locked(settings.database_url, "disputes", "ACCESS EXCLUSIVE"):
            # The one connection is taken by a request waiting for the lock...
            holder = asyncio.create_task(client.get(url, headers=api.auth("clerk")))
            await until_a_session_waits_on_a_lock(settings.database_url)
            # ...so the next one gets no connection.
            started = time.monotonic()
            response = await client.get(url, headers=api.auth("clerk"))
            took = time.monotonic() - started
        assert_problem(response)
        assert took < 1.0 + 0.5, took
        assert response.headers.get("retry-after")
        assert (await holder).status_code == 200  # the lock gone, the waiting request completes
        assert (await client.get(url, headers=api.auth("clerk"))).status_code == 200


async def test_the_victim_of_a_deadlock_answers_503_to_retry_and_has_written_nothing(
    api: Api, app: Any, settings: Settings
) -> None:
    """Two transactions waiting on each other: PostgreSQL rolls one back (40P01). When that one is a
    request's, its client is told to send it again (503, Retry-After), not that the service broke."""
    dispute = await api.intake()
    before = (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth("clerk"))).json()
    # A timeline entry written waits for a lock the other session holds: the request has its case
    # locked by then.
    async with timeline_entries_wait_for_another_session(settings.database_url) as (other, _):
        acting = asyncio.create_task(api.act(before, "accept"))
        await until_a_session_waits_on_a_lock(settings.database_url)
        # The request waits for the other session, which now waits for the request's case.
        await other.execute("SELECT 1 FROM disputes WHERE id = $1 FOR UPDATE", uuid.UUID(dispute["id"]))
        response = await acting
    assert_problem(response)
    assert response.headers.get("retry-after") == "1"
    after = (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth("clerk"))).json()
    assert (after["status"], after["version"]) == (before["status"], before["version"])
    assert (await api.act(after, "accept")).status_code == 200
    await consistent(app)


async def test_a_scheduler_step_chosen_as_a_deadlocks_victim_waits_for_the_next_pass_and_the_pass_goes_on(
    api: Api, app: Any, settings: Settings
) -> None:
    at_beijing(api, date(2026, 6, 1))
    cases = [await api.drive("mediating") for _ in range(2)]
    at_beijing(api, date(2026, 7, 2))  # both mediation clocks ran out on 1 July
    ids = [uuid.UUID(c["id"]) for c in cases]
    async with timeline_entries_wait_for_another_session(settings.database_url) as (other, transaction):
        passing = asyncio.create_task(
            tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)
        )
        await until_a_session_waits_on_a_lock(settings.database_url)
        # The case the scheduler holds while it waits: the other session now waits for it.
        held = None
        for case_id in ids:
            await other.execute("SAVEPOINT probe")
            try:
                await other.execute("SELECT 1 FROM disputes WHERE id = $1 FOR UPDATE NOWAIT", case_id)
                await other.execute("RELEASE SAVEPOINT probe")
            except asyncpg.LockNotAvailableError:
                await other.execute("ROLLBACK TO SAVEPOINT probe")
                held = case_id
        assert held is not None
        await other.execute("SELECT 1 FROM disputes WHERE id = $1 FOR UPDATE", held)
        await transaction.rollback()
        report = await passing
    assert (report.overdue, report.failed) == (1, 1), report
    report = await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)
    assert report.overdue == 1, report
    for case in cases:
        reasons = [e["action"] for e in await api.timeline(case)]
        assert reasons.count("clock_overdue") == 1, reasons
    await consistent(app)


async def test_writes_beyond_the_per_process_limit_wait_their_turn_and_answer_503_after_the_pool_timeout(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    dispute = await api.intake()
    async with (
        serve(settings, tmp_path, write_concurrency=1, db_pool_timeout_seconds=1.0) as served,
        httpx.AsyncClient(base_url=served.url, timeout=30) as client,
    ):
        clerk = api.auth("clerk")
        async with table_locked(settings.database_url, "disputes", "ACCESS EXCLUSIVE"):
            # The process's one turn for a write is taken by an action waiting for the lock...
            holder = asyncio.create_task(
                client.post(
                    f"/v1/disputes/{dispute['id']}/actions/accept",
                    json={},
                    headers={**clerk, "If-Match": '"1"'},
                )
            )
            await until_a_session_waits_on_a_lock(settings.database_url)
            # ...so the next write waits no longer than for a pooled connection, holding no lock.
            started = time.monotonic()
            response = await client.post("/v1/disputes", json=_intake(7001), headers=clerk)
            took = time.monotonic() - started
        assert_problem(response)
        assert response.status_code == 503
        assert 1.0 <= took < 1.0 + 0.5, took
        assert response.headers.get("retry-after")
        assert (await holder).status_code == 200  # the lock gone, the write that had its turn completes
        assert (await client.post("/v1/disputes", json=_intake(7003), headers=clerk)).status_code == 201


# ---- graceful shutdown -----------------------------------------------------------------------------


async def test_sigterm_lets_fifty_requests_in_flight_complete(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    async with (
        # Fifty write transactions open at once: the per-process limit on writes is raised to let them in.
        serve(settings, tmp_path, db_pool_size=10, db_max_overflow=50, write_concurrency=50) as served,
        httpx.AsyncClient(base_url=served.url, timeout=60, limits=httpx.Limits(max_connections=60)) as client,
    ):
        live = over_http(api, client)
        async with table_locked(settings.database_url, "disputes", "EXCLUSIVE"):
            # Fifty intakes, each stopped at the locked table with its transaction open.
            requests = [
                asyncio.create_task(
                    live.client.post("/v1/disputes", json=_intake(9000 + 2 * i), headers=_clerk(live))
                )
                for i in range(50)
            ]
            for _ in range(200):
                if await waiting_on_locks(settings.database_url) >= 50:
                    break
                await asyncio.sleep(0.05)
            assert await waiting_on_locks(settings.database_url) >= 50
            served.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert served.process.poll() is None, "the server left before its requests completed"
        responses = await asyncio.gather(*requests)
        assert Counter(r.status_code for r in responses) == {201: 50}, [r.text for r in responses][:3]
        # Gone after its requests, by the signal it was sent (uvicorn raises it again once it has
        # shut down gracefully, so the exit status tells how the process ended).
        assert await asyncio.to_thread(served.process.wait, 30) in (0, -signal.SIGTERM)
    totals = await consistent(app)
    assert totals["cases"] == 50


# ---- two workers, one case -------------------------------------------------------------------------


async def test_two_workers_two_hundred_conflicting_actions_exactly_one_succeeds(
    api: Api, app: Any, settings: Settings, tmp_path: Path
) -> None:
    dispute = await api.intake()
    async with (
        serve(settings, tmp_path, workers=2) as served,
        httpx.AsyncClient(
            base_url=served.url, timeout=60, limits=httpx.Limits(max_connections=200)
        ) as client,
    ):
        live = over_http(api, client)
        responses = await asyncio.gather(*(live.act(dispute, "accept") for _ in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 409, 412}, statuses
    for response in responses:
        if response.status_code != 200:
            assert response.headers["content-type"].startswith(PROBLEM)
    assert await api.timeline_count(dispute["id"]) == 2
    assert await api.outbox_count(dispute["id"]) == 2
    await consistent(app)


# ---- PostgreSQL restarted --------------------------------------------------------------------------


@dataclass
class Cluster:
    """A PostgreSQL server of the test's own, so stopping it disturbs nothing else."""

    directory: Path
    port: int
    binaries: Path

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.binaries / "pg_ctl"),
                "-D",
                str(self.directory),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self.ctl("-o", options, "-l", str(self.directory / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    binaries = _binaries()
    if binaries is None or shutil.which("runuser") is None:
        pytest.fail("this test starts a PostgreSQL server of its own: Debian's postgresql is required")
    directory = Path(tempfile.mkdtemp(prefix="mediation-pg-"))
    shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(binaries / "initdb"),
            "-D",
            str(directory),
            "-A",
            "trust",
            "-U",
            "postgres",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = Cluster(directory, _free_port(), binaries)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_postgresql_restart_readyz_fails_healthz_stays_and_the_service_recovers(
    cluster: Cluster, settings: Settings, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{cluster.port}/postgres"
    await asyncio.to_thread(upgrade, url)
    own = settings.model_copy(update={"database_url": url})
    application = create_app(own)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as local:
            helper = Api(local, application)
            await helper.create_bodies()
            await helper.create_principals()
        await application.state.db.dispose()

    async with serve(own, tmp_path) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        live = over_http(helper, client)
        assert (await client.get("/readyz")).status_code == 200
        before = await live.intake()

        await asyncio.to_thread(cluster.stop)
        down = await client.get("/readyz")
        assert_problem(down)
        assert (await client.get("/healthz")).status_code == 200
        write = await client.post("/v1/disputes", json=_intake(9500), headers=_clerk(live))
        assert_problem(write)

        await asyncio.to_thread(cluster.start)
        started = time.monotonic()
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() - started < 10, "the service did not see the database come back"
            await asyncio.sleep(0.2)
        after = await live.intake(parties=[person("applicant", "丙", 71), person("respondent", "丁", 72)])
        assert after["case_number"] != before["case_number"]
        assert (
            await client.get(f"/v1/disputes/{before['id']}", headers=live.auth("clerk"))
        ).status_code == 200
