"""A case's timeline cannot be emptied by TRUNCATE either

The timeline is append-only (migration 0001): the database refuses to change or delete an entry.
On PostgreSQL a TRUNCATE fires no row trigger, so a role granted it (GRANT ALL on the table does)
could still empty every case's history. A statement trigger now refuses it to every role but a
superuser, as for the audit journal (migration 0027). SQLite has no TRUNCATE: its DELETE without
WHERE goes through the row triggers.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_TRUNCATE = """CREATE FUNCTION timeline_entries_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
       RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
     END IF;
     RETURN NULL;
   END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NO_TRUNCATE)
        op.execute(
            "CREATE TRIGGER timeline_entries_no_truncate BEFORE TRUNCATE ON timeline_entries"
            " FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_no_truncate()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER timeline_entries_no_truncate ON timeline_entries")
        op.execute("DROP FUNCTION timeline_entries_no_truncate()")
