"""A version of who receives events: a fresh token whenever a subscription or its owner changes

Every write that records an event works out which webhook subscriptions receive it, and read
them from the database each time: one more statement in every write, for a list that changes a
few times a year. Each process now keeps the list under this token, which the writes read with
the journal head they lock anyway, and reads the list again only when the token has moved.

Triggers move it, so no way of changing the rows can forget to (the API, the relay disabling an
endpoint that answered 410, an operator's SQL): any change to a subscription, and a change to an
organisation's `active` flag or region code (the subscription's principal sees by them), or its
deletion. A later migration that rebuilds `bodies` or `webhook_subscriptions` on SQLite (batch
mode copies the table) must create their triggers again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:40:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An upsert, not an update: the row is recreated if the table was emptied (the writes treat a
# missing row as "unknown" and read the list), and a writer that recreates it concurrently is
# waited for, so the later of the two tokens is the one that stays.
POSTGRESQL = [
    """CREATE FUNCTION webhook_subscribers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO webhook_subscribers_version (id, token)
         VALUES (1, md5(random()::text || clock_timestamp()::text))
         ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER webhook_subscriptions_changed
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhook_subscriptions
       FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscribers_changed()""",
    """CREATE TRIGGER bodies_changed_for_webhooks
       AFTER UPDATE OF active, region_code OR DELETE OR TRUNCATE ON bodies
       FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscribers_changed()""",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER bodies_changed_for_webhooks ON bodies",
    "DROP TRIGGER webhook_subscriptions_changed ON webhook_subscriptions",
    "DROP FUNCTION webhook_subscribers_changed()",
]

# SQLite has row triggers only, one event each. Its writers take turns, so a plain replace is
# as safe as PostgreSQL's upsert.
_RENEW = (
    "INSERT OR REPLACE INTO webhook_subscribers_version (id, token) VALUES (1, lower(hex(randomblob(16))))"
)
SQLITE_TRIGGERS = {
    "webhook_subscriptions_inserted": "AFTER INSERT ON webhook_subscriptions",
    "webhook_subscriptions_updated": "AFTER UPDATE ON webhook_subscriptions",
    "webhook_subscriptions_deleted": "AFTER DELETE ON webhook_subscriptions",
    "bodies_updated_for_webhooks": "AFTER UPDATE OF active, region_code ON bodies",
    "bodies_deleted_for_webhooks": "AFTER DELETE ON bodies",
}


def upgrade() -> None:
    op.create_table(
        "webhook_subscribers_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscribers_version")),
    )
    op.execute(
        sa.text("INSERT INTO webhook_subscribers_version (id, token) VALUES (1, :token)").bindparams(
            token=uuid.uuid4().hex
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL:
            op.execute(statement)
    else:
        for name, when in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {_RENEW}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_DOWN:
            op.execute(statement)
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("webhook_subscribers_version")
