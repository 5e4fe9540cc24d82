"""A document and a timeline entry keep the organisation their author acted for

Whose a document is (the organisation that may withdraw it, and that a court or commission is
shown it as its own filing) and whose reason a body's ending of its assignment gives (withheld
from other bodies) were read off the author's account or API key as it is now. Since an
administrator can move an account to another organisation, that gave what a mediator filed or
wrote at one body to the body they moved to. Each now records the organisation at the time:
`documents.submitted_by_organisation_id` and `timeline_entries.actor_organisation_id`.

Existing rows get the organisation their account or key has at the time of this migration (the
best there is: what an account belonged to before a move is not kept); the service's own
documents and entries, and those of accounts of no organisation, get none.

The timeline is append-only: its guard is lifted for the backfill and put back as it was.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The timeline's guard, as 0001 made it.
APPEND_ONLY_SQLITE = {
    f"timeline_entries_no_{change.lower()}": (
        f"CREATE TRIGGER timeline_entries_no_{change.lower()} BEFORE {change} ON timeline_entries"
        " BEGIN SELECT RAISE(ABORT, 'timeline_entries is append-only'); END"
    )
    for change in ("UPDATE", "DELETE")
}
APPEND_ONLY_POSTGRESQL = "timeline_entries_append_only"


def _backfill(table: str, column: str, actor: str, sqlite: bool) -> None:
    """Sets `column` to the organisation of the account or API key whose id is the text in `actor`
    (as the service writes it: `str(uuid)`); rows of anything else (`system`) keep NULL."""
    for owners in ("users", "api_keys"):
        if sqlite:
            # SQLite keeps a UUID as 32 hex digits; its tables here are a county's, not a province's.
            op.execute(
                f"UPDATE {table} SET {column} = (SELECT o.organisation_id FROM {owners} o"
                f" WHERE o.id = REPLACE({table}.{actor}, '-', '')) WHERE {column} IS NULL"
            )
        else:
            # One join, each row matched once and only matched rows written: a province's
            # timeline holds tens of millions of entries.
            op.execute(
                f"UPDATE {table} SET {column} = o.organisation_id FROM {owners} o"
                f" WHERE {table}.{actor} = CAST(o.id AS TEXT) AND o.organisation_id IS NOT NULL"
                f" AND {table}.{column} IS NULL"
            )


def _add_column(table: str, name: str, sqlite: bool) -> None:
    if not sqlite:
        op.add_column(table, sa.Column(name, sa.Uuid(), sa.ForeignKey("bodies.id"), nullable=True))
        return
    # SQLite adds a column with its foreign key in place (a batch copy of the table would drop the
    # timeline's triggers), named as the models' convention names it.
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN {name} CHAR(32)"
        f" CONSTRAINT fk_{table}_{name}_bodies REFERENCES bodies (id)"
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _add_column("documents", "submitted_by_organisation_id", sqlite)
    _add_column("timeline_entries", "actor_organisation_id", sqlite)
    _backfill("documents", "submitted_by_organisation_id", "submitted_by", sqlite)
    # The timeline's guard is lifted for the backfill alone, in this transaction.
    if sqlite:
        op.execute("DROP TRIGGER timeline_entries_no_update")
    else:
        op.execute(f"ALTER TABLE timeline_entries DISABLE TRIGGER {APPEND_ONLY_POSTGRESQL}")
    _backfill("timeline_entries", "actor_organisation_id", "actor_id", sqlite)
    if sqlite:
        op.execute(APPEND_ONLY_SQLITE["timeline_entries_no_update"])
    else:
        op.execute(f"ALTER TABLE timeline_entries ENABLE TRIGGER {APPEND_ONLY_POSTGRESQL}")


def downgrade() -> None:
    # Not reading the tables referred to (disputes has an index SQLAlchemy cannot reflect).
    quiet = {"resolve_fks": False}
    with op.batch_alter_table("timeline_entries", reflect_kwargs=quiet) as batch:
        batch.drop_column("actor_organisation_id")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column with a foreign key by copying the table, which leaves its triggers.
        for statement in APPEND_ONLY_SQLITE.values():
            op.execute(statement)
    with op.batch_alter_table("documents", reflect_kwargs=quiet) as batch:
        batch.drop_column("submitted_by_organisation_id")
