"""The audit journal's guards: processing records kept three years, no TRUNCATE

- The retention guard on audit_records also refuses to delete a record of personal data
  processing (`pii.read`, an unmasked ID or phone number shown) younger than three years
  (个人信息保护法 Art. 55-56); every other record is kept six months (网络安全法 Art. 21), counted
  as 184 days, the longest six months run (180 fell short by up to four days).
- PostgreSQL: TRUNCATE fires no row trigger, so a role granted it (GRANT ALL on the tables does)
  emptied the journal past the append-only guard, and with the head set back to the genesis the
  empty chain verified. A statement trigger now refuses TRUNCATE of audit_records,
  audit_chain_head and audit_seals to every role but a superuser, who can switch any trigger off
  anyway (session_replication_role) and whom the keyed seals answer for. SQLite has no TRUNCATE:
  its DELETE without WHERE goes through the row triggers.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOURNAL_TABLES = ("audit_records", "audit_chain_head", "audit_seals")

# One trigger on SQLite (RAISE takes a literal): the message names both periods.
SQLITE_RETENTION = """CREATE TRIGGER audit_records_retention BEFORE DELETE ON audit_records
   WHEN OLD.occurred_at > datetime('now', '-184 days')
     OR (OLD.action = 'pii.read' AND OLD.occurred_at > datetime('now', '-1095 days'))
   BEGIN SELECT RAISE(
     ABORT, 'audit records are kept at least six months (184 days), records of personal data processing three years'
   ); END"""
SQLITE_RETENTION_0002 = """CREATE TRIGGER audit_records_retention BEFORE DELETE ON audit_records
   WHEN OLD.occurred_at > datetime('now', '-180 days')
   BEGIN SELECT RAISE(ABORT, 'audit records are kept at least 180 days'); END"""

POSTGRESQL_GUARD = """CREATE OR REPLACE FUNCTION audit_records_guard() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' THEN
       RAISE EXCEPTION 'audit_records is append-only';
     END IF;
     IF OLD.occurred_at > now() - interval '184 days' THEN
       RAISE EXCEPTION 'audit records are kept at least six months (184 days)';
     END IF;
     IF OLD.action = 'pii.read' AND OLD.occurred_at > now() - interval '1095 days' THEN
       RAISE EXCEPTION 'records of personal data processing are kept at least three years';
     END IF;
     RETURN OLD;
   END $$"""
POSTGRESQL_GUARD_0002 = """CREATE OR REPLACE FUNCTION audit_records_guard() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' THEN
       RAISE EXCEPTION 'audit_records is append-only';
     END IF;
     IF OLD.occurred_at > now() - interval '180 days' THEN
       RAISE EXCEPTION 'audit records are kept at least 180 days';
     END IF;
     RETURN OLD;
   END $$"""
POSTGRESQL_NO_TRUNCATE = """CREATE FUNCTION audit_journal_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
       RAISE EXCEPTION '% is append-only: audit records are kept at least six months', TG_TABLE_NAME;
     END IF;
     RETURN NULL;
   END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_GUARD)
        op.execute(POSTGRESQL_NO_TRUNCATE)
        for table in JOURNAL_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION audit_journal_no_truncate()"
            )
    else:
        op.execute("DROP TRIGGER audit_records_retention")
        op.execute(SQLITE_RETENTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in JOURNAL_TABLES:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION audit_journal_no_truncate()")
        op.execute(POSTGRESQL_GUARD_0002)
    else:
        op.execute("DROP TRIGGER audit_records_retention")
        op.execute(SQLITE_RETENTION_0002)
