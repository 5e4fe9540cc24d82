"""Every test runs against SQLite and PostgreSQL, each with a schema built by the Alembic migrations.

Isolation: SQLite gets a fresh copy of the migrated database file per test; PostgreSQL truncates
every table before each test (tests commit for real, since concurrency is part of what they check).
With CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import chinese_calendar
import httpcore
import httpx
import pytest
from sqlalchemy import text

from mediation.app import create_app
from mediation.core import legal_time
from mediation.core.clock import FrozenClock
from mediation.core.db import Base
from mediation.core.pii import generate_key
from mediation.core.settings import Settings
from mediation.events.relay import Relay
from mediation.migrate import upgrade
from tests.receiver import Receiver
from tests.support import CSRF, Api

PG_ADMIN_DSN = os.environ.get("MEDIATION_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Monday 1 June 2026, 10:00 in Beijing: a plain working day, inside the years the holiday table knows.
DEFAULT_NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


# No personal data in logs (个人信息保护法 Art. 51): every log record the whole suite produces,
# at INFO and above, is scanned; one ID, phone, passport or travel permit number fails the run at
# the end, whether written plainly or in its groups (330681 19900517 0016, 138.0000.0001).
PII_IN_LOGS = (
    re.compile(r"\d{17}[\dXx]"),
    re.compile(r"1[3-9]\d{9}"),
    re.compile(r"(?<![0-9])\d{6}([ -])\d{8}\1\d{3}[\dXx](?![0-9])"),
    re.compile(r"(?<![0-9])1[3-9]\d([ .-])\d{4}\1\d{4}(?![0-9])"),
    re.compile(r"(?<![0-9])0(?:10|2\d|[3-9]\d{2})[ -]?[2-9]\d{2,3}[ -]?\d{4}(?![0-9])"),
    re.compile(r"(?<![0-9A-Za-z])(?:[CDEGHLMPS]\d{8}|E[A-Z]\d{7})(?![0-9A-Za-z])"),
)
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# A SHA-256 digest or HMAC in hex (the audit seal's line) can hold a run of eleven decimal digits.
HEX_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


class _PiiLogScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records = 0
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        text = self.format(record)
        # A UUID's last group can be twelve decimal digits; it is not a phone number.
        bare = HEX_DIGEST.sub("<digest>", UUID_TEXT.sub("<uuid>", text))
        if any(p.search(bare) for p in PII_IN_LOGS):
            self.found.append(text[:300])


PII_LOG_SCAN = _PiiLogScan()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(PII_LOG_SCAN)
    root.setLevel(logging.INFO)
    for noisy in ("sqlalchemy", "asyncio", "aiosqlite", "httpx", "httpcore", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (row locking, many concurrent writers) are not collected for SQLite:
    deselected, not skipped."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and "sqlite" in (
            callspec.params.get("database_url"),
            callspec.params.get("empty_database"),
        )
        (drop if on_sqlite and item.get_closest_marker("postgres_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # A pytest-xdist worker: what it found goes to the controller, which reports it.
        workeroutput["pii_in_logs"] = PII_LOG_SCAN.found
        return
    if PII_LOG_SCAN.found:
        print(f"\npersonal data found in {len(PII_LOG_SCAN.found)} log records, e.g.:")
        for line in PII_LOG_SCAN.found[:5]:
            print("  ", line)
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller of a pytest-xdist run gathers what each worker's scan found."""
    PII_LOG_SCAN.found.extend(getattr(node, "workeroutput", {}).get("pii_in_logs", []))


def _pg_reachable() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(
                f"PostgreSQL is required in CI and unreachable at {PG_ADMIN_DSN}: {problem}", pytrace=False
            )
        pytest.skip(f"PostgreSQL unreachable ({problem}); set CI=true to make this an error")
    name = f"mediation_test_{os.getpid()}"

    async def recreate() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(recreate())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    return url


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Tests reach nothing beyond this machine: a connection to any address but a loopback one (the
    relay connecting to a public address a test's resolver answered, say) is refused here, before
    it leaves, and listed for the test to look at."""
    refused: list[tuple[str, int]] = []
    connect = httpcore.AnyIOBackend.connect_tcp

    async def loopback_connect(
        self: httpcore.AnyIOBackend, host: str, port: int, *args: object, **kw: object
    ):  # type: ignore[no-untyped-def]
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        if not local:
            refused.append((host, port))
            raise httpcore.ConnectError(f"tests connect to loopback addresses only, not {host}")
        return await connect(self, host, port, *args, **kw)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", loopback_connect)
    return refused


# What a name lookup answers in the tests: loopback names and literal addresses as the system does,
# any other name "not found" at once. A test that needs a name to resolve patches the lookup.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@pytest.fixture(autouse=True)
def no_name_lookups_beyond_this_machine(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name lookups never leave the machine either: a test's made-up host name (a subscriber's
    `hooks.example.org`) is not sent to the resolver this machine is configured with, whose answer
    (and how long it takes: a resolver that drops queries holds each lookup for seconds) would
    otherwise decide the run. Such names are answered "not found" at once, and listed."""
    looked_up: list[str] = []
    system = socket.getaddrinfo

    def getaddrinfo(host: bytes | str | None, port: object, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name.lower().rstrip(".") in LOOPBACK_NAMES:
            return system(host, port, *args, **kwargs)
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
            return system(host, port, *args, **kwargs)
        except ValueError:
            pass
        name.encode("idna")  # a name no resolver could be asked for fails as the system's lookup does
        looked_up.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_database() -> Iterator[None]:
    yield
    name = f"mediation_test_{os.getpid()}"

    async def drop() -> None:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        except Exception:
            return
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(DEFAULT_NOW)


TEST_SECRETS = {
    "jwt_secret": generate_key(),
    "pii_encryption_keys": f"t1:{generate_key()}",
    "pii_index_key": generate_key(),
}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes, by parametrizing this fixture: the app is built with them (some, as
    the upload ceiling of the HTTP middleware, are read only when the app is created)."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, overrides: dict[str, Any]) -> Settings:
    # Cheap Argon2 parameters: the tests exercise the scheme, not its cost.
    return Settings(
        database_url=database_url,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        # The relay runs where a test starts it, so tests see deliveries exactly when they expect.
        relay_in_app=False,
        clock_in_app=False,
        documents_dir=tmp_path / "documents",
        # Test receivers listen on 127.0.0.1; the refusal of private targets has its own test.
        webhook_allow_private_targets=True,
        **TEST_SECRETS,
    ).model_copy(update=overrides)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[object]:
    application = create_app(settings, clock)
    db = application.state.db
    if not db.is_sqlite:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as c:
        yield c


@pytest.fixture
async def web(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A browser for the pages: a client of its own (its own cookies), the CSRF cookie set."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as c:
        c.cookies.set("mediation_csrf", CSRF)
        yield c


@pytest.fixture
async def api(client: httpx.AsyncClient, app: object) -> Api:
    helper = Api(client, app)
    await helper.create_bodies()
    await helper.create_principals()
    # Requests that name no credentials go as the window clerk.
    client.headers.update(helper.auth("clerk"))
    return helper


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver listening on 127.0.0.1."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def relay(app: Any) -> AsyncIterator[Relay]:
    """A relay a test runs cycle by cycle (the app runs none of its own in the tests)."""
    r = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-test")
    yield r
    await r.client.aclose()


@pytest.fixture
def calendar_package_until_2026(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The calendar package as these tests know it: no schedule after 2026. A release that carries
    2027 would otherwise turn the tests' unpublished year into a published one. Schedules the test
    loaded are dropped from the process afterwards (the next test's app reads its own database's)."""
    carried = chinese_calendar.is_workday

    def is_workday(day: date) -> bool:
        if day.year > 2026:
            raise NotImplementedError(f"no holiday schedule for {day.year}")
        return bool(carried(day))

    monkeypatch.setattr(chinese_calendar, "is_workday", is_workday)
    legal_time.is_working_day.cache_clear()
    yield
    legal_time.install_schedules({})
    legal_time.is_working_day.cache_clear()
