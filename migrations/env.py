"""Alembic environment: async engines, SQLite batch mode, URL from settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import mediation.models  # noqa: F401  (registers every table on the metadata)
from mediation.core.db import Base
from mediation.core.settings import get_settings

config = context.config
target_metadata = Base.metadata
# The advisory lock migrators take turns on (PostgreSQL): a number of this service's own.
MIGRATION_LOCK = 0x6D65_6469_6174  # "mediat"


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    url = _url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Every replica of the container runs `mediation migrate` as it starts. Several at
            # once take turns here, for the whole transaction: the first migrates, and the others
            # read the version only after it committed, find the schema current, and go on. Side
            # by side, all but one failed (a table already there) and exited.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
