"""Run the Alembic migrations from code (CLI, tests, container start)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection


def migrations_dir() -> Path:
    configured = os.environ.get("MEDIATION_MIGRATIONS_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations"]
    for candidate in candidates:
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("migrations/ not found; set MEDIATION_MIGRATIONS_DIR")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


@functools.cache
def _revisions() -> tuple[str, frozenset[str]] | None:
    """This release's head revision and every revision it knows; None where its migrations are
    not installed (nothing to compare with)."""
    try:
        script = ScriptDirectory.from_config(alembic_config(""))
    except FileNotFoundError:
        return None
    head = script.get_current_head()
    if head is None:
        return None
    return head, frozenset(revision.revision for revision in script.walk_revisions())


def _current_revision(connection: Connection) -> str | None:
    # Alembic's own table, read directly: its migration context logs at every look.
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def schema_problem(connection: AsyncConnection) -> str | None:
    """Why this release cannot work on the database behind `connection`, or None.

    A database never migrated, or migrated to an older revision than this release's, lacks tables
    or columns the service reads. One at a revision this release does not know was migrated by a
    newer release: it is used as it is, since a migration keeps what the release before it reads
    (an older release stays up while a newer one rolls out)."""
    current = await connection.run_sync(_current_revision)
    if current is None:
        return "the database is not migrated"
    revisions = _revisions()
    if revisions is None:
        return None
    head, known = revisions
    if current != head and current in known:
        return f"the database schema is at revision {current}, this release needs {head}"
    return None
