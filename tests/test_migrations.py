"""Migrations are the only way the schema changes, and they run both ways on both databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

import mediation.models  # noqa: F401  (every table on Base.metadata)
from mediation.core.db import Base, UTCDateTime
from mediation.migrate import alembic_config, downgrade, upgrade
from tests.conftest import PG_ADMIN_DSN


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await engine.dispose()
        return names

    return asyncio.run(read())


def _columns(url: str, table: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})
        await engine.dispose()
        return names

    return asyncio.run(read())


def _indexes(url: str, table: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes(table)})
        await engine.dispose()
        return names

    return asyncio.run(read())


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips, or fails in CI, when PostgreSQL is unreachable
    name = f"mediation_migrations_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# SQLite's batch migrations (0017's downgrade) reflect the tables they refer to, disputes among
# them, whose town index is an expression SQLAlchemy cannot reflect; nothing there needs it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_downgrade_upgrade(empty_database):
    expected = {t.name for t in Base.metadata.sorted_tables}
    upgrade(empty_database)
    assert expected <= _tables(empty_database)
    downgrade(empty_database, "base")
    assert _tables(empty_database) & expected == set()
    upgrade(empty_database)
    assert expected <= _tables(empty_database)


# The database's own guards: the append-only timeline and audit journal, and the renewal of who
# receives events. SQLite has no ALTER for most changes, and a batch migration copies a table into a
# new one, which drops its triggers without a word; a later migration that does so to one of these
# tables (bodies, say) fails here instead of leaving the guard gone.
TRIGGERS = {
    "sqlite": {
        ("timeline_entries", "timeline_entries_no_update"),
        ("timeline_entries", "timeline_entries_no_delete"),
        ("audit_records", "audit_records_no_update"),
        ("audit_records", "audit_records_retention"),
        ("webhook_subscriptions", "webhook_subscriptions_inserted"),
        ("webhook_subscriptions", "webhook_subscriptions_updated"),
        ("webhook_subscriptions", "webhook_subscriptions_deleted"),
        ("bodies", "bodies_updated_for_webhooks"),
        ("bodies", "bodies_deleted_for_webhooks"),
    },
    "postgresql": {
        ("timeline_entries", "timeline_entries_append_only"),
        ("audit_records", "audit_records_guard"),
        ("webhook_subscriptions", "webhook_subscriptions_changed"),
        ("bodies", "bodies_changed_for_webhooks"),
    },
}


def _triggers(url: str) -> set[tuple[str, str]]:
    async def read() -> set[tuple[str, str]]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
            else:
                query = (
                    "SELECT DISTINCT event_object_table, trigger_name FROM information_schema.triggers "
                    "WHERE trigger_schema = current_schema()"
                )
            rows = (await conn.execute(text(query))).all()
        await engine.dispose()
        return {(table, name) for table, name in rows}

    return asyncio.run(read())


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_every_trigger_the_migrations_make_is_there_at_the_head(empty_database):
    dialect = "sqlite" if empty_database.startswith("sqlite") else "postgresql"
    upgrade(empty_database)
    assert _triggers(empty_database) == TRIGGERS[dialect]
    downgrade(empty_database, "base")
    assert _triggers(empty_database) == set()
    upgrade(empty_database)
    assert _triggers(empty_database) == TRIGGERS[dialect]


# Alembic cannot reflect an expression index to compare it; the town index's presence and use
# are checked on both databases by test_the_category_wave_is_read_off_its_index.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_migrated_schema_is_the_models_schema(empty_database):
    """The models describe no table, column, type, index or constraint the migrations do not make
    (and the other way round): a change to a model without its migration fails here."""
    upgrade(empty_database)

    async def compare() -> list[object]:
        engine = create_async_engine(empty_database)
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        await engine.dispose()
        return list(diffs)

    assert asyncio.run(compare()) == []


async def test_timeline_is_append_only_in_the_database(api):
    dispute = await api.intake()
    async with api.app.state.db.writer() as session:
        for statement in ("UPDATE timeline_entries SET reason = 'edited'", "DELETE FROM timeline_entries"):
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()
    assert [e["action"] for e in await api.timeline(dispute)] == ["register"]


def test_numbers_registered_before_encryption_are_encrypted_by_the_migration(empty_database, monkeypatch):
    from mediation.core.pii import PiiCipher
    from mediation.core.settings import get_settings
    from tests.conftest import TEST_SECRETS

    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(f"MEDIATION_{name.upper()}", value)
    get_settings.cache_clear()
    upgrade(empty_database, "0001")
    dispute_id, party_id = "5b0c9a8e-1f0e-4d7c-9a51-000000000001", "5b0c9a8e-1f0e-4d7c-9a51-000000000002"
    uuid_literal = (lambda u: u.replace("-", "")) if empty_database.startswith("sqlite") else (lambda u: u)

    async def seed_and_read() -> list[tuple]:
        engine = create_async_engine(empty_database)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters,"
                    " description, channel, region_code, people_involved, severity, is_group, is_risk,"
                    " tier, status, version, applied_on, created_by, created_at, updated_at)"
                    " VALUES (:id, '330681-2026-000001', 'x', 'neighbour', '[]', '旧数据', 'window',"
                    " '330681105201', 2, 'ordinary', false, false, 'village', 'registered', 1,"
                    " '2026-06-01', 'clerk', '2026-06-01 02:00:00', '2026-06-01 02:00:00')"
                ),
                {"id": uuid_literal(dispute_id)},
            )
            await conn.execute(
                text(
                    "INSERT INTO parties (id, dispute_id, position, role, kind, name, id_type, id_number,"
                    " phone, consent) VALUES (:id, :d, 0, 'applicant', 'person', '张三', 'resident_id',"
                    " '330681199005170016', '13800000001', 'unknown')"
                ),
                {"id": uuid_literal(party_id), "d": uuid_literal(dispute_id)},
            )
        await engine.dispose()
        upgrade_in_thread = asyncio.to_thread(upgrade, empty_database)
        await upgrade_in_thread
        engine = create_async_engine(empty_database)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM parties"))).mappings().all()
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("parties")}
            )
        await engine.dispose()
        assert "id_number" not in columns and "phone" not in columns
        return [dict(r) for r in rows]

    try:
        rows = asyncio.run(seed_and_read())
    finally:
        get_settings.cache_clear()
    (row,) = rows
    assert "330681199005170016" not in str(row) and "13800000001" not in str(row)
    assert row["id_number_masked"] == "330***********0016" and row["phone_masked"] == "138****0001"
    cipher = PiiCipher.from_secrets(TEST_SECRETS["pii_encryption_keys"], TEST_SECRETS["pii_index_key"])
    assert cipher.decrypt(row["id_number_enc"], table="parties", column="id_number", row_id=party_id) == (
        "330681199005170016"
    )
    assert cipher.decrypt(row["phone_enc"], table="parties", column="phone", row_id=party_id) == "13800000001"
    assert row["phone_index"] == cipher.index("13800000001", kind="phone")


def test_cases_registered_before_place_keys_get_theirs_from_the_migration(empty_database):
    """Migration 0018 gives every case with an address the place early warning recognises in it,
    as intake does from then on."""
    upgrade(empty_database, "0017")
    uuid_literal = (lambda u: u.replace("-", "")) if empty_database.startswith("sqlite") else (lambda u: u)
    cases = {
        "5b0c9a8e-1f0e-4d7c-9a51-000000000011": "诸暨市枫桥镇幸福小区3栋2单元501",
        "5b0c9a8e-1f0e-4d7c-9a51-000000000012": None,
    }

    async def run(statements: list[tuple[str, dict[str, object]]]) -> list[tuple]:
        engine = create_async_engine(empty_database)
        rows: list[tuple] = []
        async with engine.begin() as conn:
            for sql, params in statements:
                result = await conn.execute(text(sql), params)
                rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            [
                (
                    "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters,"
                    " description, channel, region_code, address, people_involved, severity, is_group,"
                    " is_risk, tier, status, version, applied_on, created_by, created_at, updated_at)"
                    " VALUES (:id, :number, 'x', 'property_management', '[]', '旧数据', 'window',"
                    " '330681105201', :address, 2, 'ordinary', false, false, 'village', 'registered', 1,"
                    " '2026-06-01', 'clerk', '2026-06-01 02:00:00', '2026-06-01 02:00:00')",
                    {"id": uuid_literal(case), "number": f"330681-2026-0000{n}", "address": address},
                )
                for n, (case, address) in enumerate(cases.items())
            ]
        )
    )
    upgrade(empty_database)
    rows = asyncio.run(run([("SELECT address, place_key FROM disputes ORDER BY case_number", {})]))
    assert rows == [("诸暨市枫桥镇幸福小区3栋2单元501", "诸暨市枫桥镇幸福小区"), (None, None)]


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_subscriptions_get_when_they_started_failing_from_the_attempt_log(empty_database):
    """Migration 0024 gives each subscription the first failed attempt (no answer, or a status
    outside 200-299) after its last accepted one, any failed one if none was accepted, and nothing
    when no failure follows the last acceptance; across the subscription's deliveries. Only a change
    of who receives events renews the subscribers' version, not one of this column. Down to 0023
    again, the column goes and the triggers stay, renewing it on any update as before."""
    upgrade(empty_database, "0023")
    dialect = "sqlite" if empty_database.startswith("sqlite") else "postgresql"
    stored = (lambda u: u.hex) if dialect == "sqlite" else (lambda u: u)
    body, events = uuid.UUID(int=1), [uuid.UUID(int=2), uuid.UUID(int=3)]
    day = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    # Each subscription's attempts, in the order they were written: (day, status code or no answer).
    history: dict[str, list[tuple[int, int | None]]] = {
        "failing again": [(1, 500), (2, 200), (3, 500), (4, None), (5, 503)],
        "never accepted": [(2, None), (1, 500), (3, 502)],
        "accepted last": [(1, 500), (2, 500), (3, 204)],
        "never sent": [],
        "redirected": [(1, 200), (2, 299), (3, 300)],
    }
    subscriptions = {name: uuid.uuid5(body, name) for name in history}

    def started(days: int, n: int) -> datetime:
        return day + timedelta(days=days, microseconds=n)  # the n-th attempt written

    async def run(*statements: tuple[str, dict[str, object]]) -> list[tuple[object, ...]]:
        engine = create_async_engine(empty_database)
        rows: list[tuple[object, ...]] = []
        async with engine.begin() as conn:
            for sql, params in statements:
                # Times bound and read as the application binds and reads them.
                stmt = text(sql).bindparams(
                    *(bindparam(name, type_=UTCDateTime()) for name in params if name.endswith("_at"))
                )
                if sql.startswith("SELECT"):
                    stmt = stmt.columns(failing_since=UTCDateTime())
                result = await conn.execute(stmt, params)
                rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    seed = [
        (
            "INSERT INTO bodies (id, name, kind, tier, region_code, active, created_at)"
            " VALUES (:id, '枫桥镇人民调解委员会', 'people_mediation_committee', 'town', '330681105',"
            " true, :created_at)",
            {"id": stored(body), "created_at": day},
        ),
    ]
    seed += [
        (
            "INSERT INTO outbox_events (id, type, source, subject, data, created_at)"
            " VALUES (:id, 'cn.mediation.dispute.registered', '/mediation', '330681-2026-000001', '{}',"
            " :created_at)",
            {"id": stored(event), "created_at": day},
        )
        for event in events
    ]
    for name, attempts in history.items():
        sub = subscriptions[name]
        seed.append(
            (
                "INSERT INTO webhook_subscriptions (id, organisation_id, role, url, event_types,"
                " secret_enc, active, created_by, created_at, updated_at) VALUES (:id, :body,"
                " 'body_admin', 'https://hooks.example.org/', '[]', 'x', true, 'admin', :created_at,"
                " :updated_at)",
                {"id": stored(sub), "body": stored(body), "created_at": day, "updated_at": day},
            )
        )
        # Attempts in turn on two deliveries: what counts is the subscription's, not a delivery's.
        deliveries = [uuid.uuid5(sub, str(n)) for n in range(2)]
        for delivery, event in zip(deliveries, events, strict=True):
            seed.append(
                (
                    "INSERT INTO webhook_deliveries (id, subscription_id, event_id, status, attempts,"
                    " next_attempt_at, created_at) VALUES (:id, :sub, :event, 'dead', 3, :next_at, :created_at)",
                    {
                        "id": stored(delivery),
                        "sub": stored(sub),
                        "event": stored(event),
                        "next_at": day,
                        "created_at": day,
                    },
                )
            )
        for n, (days, status) in enumerate(attempts):
            seed.append(
                (
                    "INSERT INTO webhook_attempts (id, delivery_id, attempt, relay_id, started_at,"
                    " status_code, latency_ms) VALUES (:id, :delivery, 1, 'relay', :started_at, :status, 5)",
                    {
                        "id": stored(uuid.uuid5(sub, f"attempt {n}")),
                        "delivery": stored(deliveries[n % 2]),
                        "started_at": started(days, n),
                        "status": status,
                    },
                )
            )
    asyncio.run(run(*seed))

    upgrade(empty_database, "0024")
    rows = asyncio.run(run(("SELECT id, failing_since FROM webhook_subscriptions", {})))
    failing = {uuid.UUID(str(sub_id)): since for sub_id, since in rows}
    assert {name: failing[sub] for name, sub in subscriptions.items()} == {
        "failing again": started(3, 2),
        "never accepted": started(1, 1),
        "accepted last": None,
        "never sent": None,
        "redirected": started(3, 2),
    }

    def version() -> object:
        return asyncio.run(run(("SELECT token FROM webhook_subscribers_version", {})))[0][0]

    before = version()
    asyncio.run(run(("UPDATE webhook_subscriptions SET failing_since = NULL", {})))
    assert version() == before
    asyncio.run(run(("UPDATE webhook_subscriptions SET active = false", {})))
    assert version() != before

    downgrade(empty_database, "0023")

    async def columns() -> set[str]:
        engine = create_async_engine(empty_database)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("webhook_subscriptions")}
            )
        await engine.dispose()
        return found

    assert "failing_since" not in asyncio.run(columns())
    assert _triggers(empty_database) == TRIGGERS[dialect]
    before = version()
    asyncio.run(run(("UPDATE webhook_subscriptions SET description = 'x'", {})))
    assert version() != before


@pytest.mark.postgres_only
def test_hosts_migrating_at_once_take_turns_and_all_succeed(empty_database):
    """Each replica of the container runs `mediation migrate` as it starts. Several starting at
    once used to run the same migrations side by side, and all but one failed (a table already
    there, or the version row moved under them) and exited. They now take turns on an advisory
    lock: the first migrates, the others find the schema current."""
    replicas = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from mediation.migrate import upgrade; upgrade(sys.argv[1])",
                empty_database,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [replica.communicate(timeout=300)[0].decode(errors="replace") for replica in replicas]
    assert [r.returncode for r in replicas] == [0, 0, 0], "\n\n".join(o[-2000:] for o in outputs)

    async def versions() -> list[str]:
        engine = create_async_engine(empty_database)
        async with engine.connect() as conn:
            found = [row[0] for row in await conn.execute(text("SELECT version_num FROM alembic_version"))]
        await engine.dispose()
        return found

    head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
    assert asyncio.run(versions()) == [head]
    assert {t.name for t in Base.metadata.sorted_tables} <= _tables(empty_database)


async def test_sittings_left_scheduled_on_cases_no_longer_in_mediation_are_cancelled(api, settings):
    """Migration 0031 cancels what the older release left `scheduled`: the sittings of a case no
    longer in mediation at the body that scheduled them. Those of a case still there stay."""
    from mediation.agreements.models import MediationSession

    async def schedule(dispute: dict) -> str:
        response = await api.client.post(
            f"/v1/disputes/{dispute['id']}/sessions",
            json={"scheduled_at": "2026-06-08T09:00:00+08:00", "place": "调解室"},
            headers=api.acting("body_mediator", dispute),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    ongoing = await api.drive("mediating")
    kept = await schedule(ongoing)
    withdrawn = await api.drive("mediating")
    left = await schedule(withdrawn)
    await api.step(await api.get(withdrawn), "withdraw")
    async with api.app.state.db.engine.begin() as conn:  # as the older release left it
        await conn.execute(
            text("UPDATE mediation_sessions SET status = 'scheduled' WHERE id = :id").bindparams(
                bindparam("id", type_=MediationSession.__table__.c.id.type)
            ),
            {"id": uuid.UUID(left)},
        )
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0030")
    await asyncio.to_thread(upgrade, settings.database_url)
    statuses = {}
    for dispute in (ongoing, withdrawn):
        listed = await api.client.get(
            f"/v1/disputes/{dispute['id']}/sessions", headers=api.auth("supervisor")
        )
        statuses |= {s["id"]: s["status"] for s in listed.json()}
    assert statuses == {kept: "scheduled", left: "cancelled"}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_handoffs_made_before_the_list_order_are_numbered_in_the_order_they_were_made(empty_database):
    """Migration 0040 numbers the handoffs there are by when they were made (then id), whatever
    their ids; handoffs made after it come after them; down and up again it numbers them alike."""
    upgrade(empty_database, "0039")
    sqlite = empty_database.startswith("sqlite")
    hexed = (lambda u: u.replace("-", "")) if sqlite else (lambda u: u)
    court = "5b0c9a8e-1f0e-4d7c-9a51-0000000000c1"
    case = "5b0c9a8e-1f0e-4d7c-9a51-0000000000d1"
    # Made in this order; the ids deliberately sort otherwise.
    made = {
        "ffffffff-0000-4000-8000-000000000001": "2026-06-01 02:00:00.000001",
        "00000000-0000-4000-8000-000000000002": "2026-06-01 02:00:00.000002",
        "88888888-0000-4000-8000-000000000003": "2026-06-01 02:00:00.000002",
        "11111111-0000-4000-8000-000000000004": "2026-06-02 01:00:00",
    }

    async def run(statements: list[tuple[str, dict[str, object]]]) -> list[tuple]:
        engine = create_async_engine(empty_database)
        rows: list[tuple] = []
        async with engine.begin() as conn:
            for sql, params in statements:
                result = await conn.execute(text(sql), params)
                rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            [
                (
                    "INSERT INTO bodies (id, name, kind, tier, region_code, active, categories, capacity,"
                    " version, created_at) VALUES (:id, '诸暨市人民法院', 'court', 'county', '330681', true,"
                    " '[]', 10, 1, '2026-06-01 00:00:00')",
                    {"id": hexed(court)},
                ),
                (
                    "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters,"
                    " description, channel, region_code, people_involved, severity, is_group,"
                    " is_risk, tier, status, version, applied_on, created_by, created_at, updated_at)"
                    " VALUES (:id, '330681-2026-000001', 'x', 'property_management', '[]', '旧数据', 'window',"
                    " '330681105201', 2, 'ordinary', false, false, 'village', 'registered', 1,"
                    " '2026-06-01', 'clerk', '2026-06-01 02:00:00', '2026-06-01 02:00:00')",
                    {"id": hexed(case)},
                ),
                *(
                    (
                        "INSERT INTO handoffs (id, dispute_id, kind, target_id, status, applicant_party_ids,"
                        " warnings, requested_on, accept_due_on, extended_days, created_by, created_at,"
                        " updated_at, version) VALUES (:id, :case, 'judicial_confirmation', :court, 'pending',"
                        f" '[]', '[]', '2026-06-01', '2026-06-04', 0, 'clerk', '{at}', '{at}', 1)",
                        {"id": hexed(handoff), "case": hexed(case), "court": hexed(court)},
                    )
                    for handoff, at in made.items()
                ),
            ]
        )
    )
    order = "SELECT id, seq FROM handoffs ORDER BY seq"
    numbered = [(h.replace("-", ""), n) for n, h in enumerate(made, start=1)]
    for _ in range(2):
        upgrade(empty_database)
        rows = asyncio.run(run([(order, {})]))
        assert [(str(i).replace("-", ""), n) for i, n in rows] == numbered
        assert "ix_handoffs_target_id" not in _indexes(empty_database, "handoffs")
        downgrade(empty_database, "0039")
        assert "seq" not in _columns(empty_database, "handoffs")
        assert "ix_handoffs_target_id" in _indexes(empty_database, "handoffs")
