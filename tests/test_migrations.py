"""Migrations are the only way the schema changes, and they run both ways on both databases."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from mediation.core.db import Base
from mediation.migrate import downgrade, upgrade
from tests.conftest import PG_ADMIN_DSN


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
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


def test_upgrade_downgrade_upgrade(empty_database):
    expected = {t.name for t in Base.metadata.sorted_tables}
    upgrade(empty_database)
    assert expected <= _tables(empty_database)
    downgrade(empty_database, "base")
    assert _tables(empty_database) & expected == set()
    upgrade(empty_database)
    assert expected <= _tables(empty_database)


async def test_timeline_is_append_only_in_the_database(api):
    dispute = await api.intake()
    async with api.app.state.db.writer() as session:
        for statement in ("UPDATE timeline_entries SET reason = 'edited'", "DELETE FROM timeline_entries"):
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()
    assert [e["action"] for e in await api.timeline(dispute)] == ["register"]
