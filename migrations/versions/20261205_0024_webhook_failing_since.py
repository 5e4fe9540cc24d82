"""A webhook subscription keeps when its receiver started failing

`webhook_subscriptions.failing_since` is the start of the first failed attempt (no answer, or a
status outside 200-299) after the subscription's last accepted one; NULL while the last attempt was
accepted, or none was made. The relay keeps it as it records outcomes and disables a subscription
whose failures have lasted `MEDIATION_WEBHOOK_DISABLE_AFTER_FAILING_DAYS`: it no longer reads the
minimum and maximum over every attempt the log keeps of the subscription (millions of rows for a
busy receiver) each time one of its deliveries goes dead.

Subscriptions that exist get it from the attempts the log keeps, as the relay counted it until now.

The triggers that renew the subscribers' version (0015) fire on an update of any column but this
one: it decides nothing about who receives events, and renewing the version whenever a receiver
starts or stops failing would make every process read the subscription list again, and relays
recording outcomes of different subscriptions queue for the version's row.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)

# Every column of the table but `failing_since`. A column added later that decides who receives
# events, or what they see, must be added here (and to the triggers' next migration).
_RENEWING = (
    "id, organisation_id, role, url, event_types, description, secret_enc, previous_secret_enc, "
    "previous_secret_expires_at, active, disabled_reason, created_by, created_at, updated_at"
)

# One statement on both databases. For each subscription: the earliest failed attempt later than
# its last accepted one, or than nothing if none was accepted (COALESCE: a comparison with no
# accepted attempt is NULL, and every failure counts then); NULL when there is no such attempt.
_ATTEMPTS_OF_THE_SUBSCRIPTION = (
    "FROM webhook_attempts {a} JOIN webhook_deliveries {d} ON {d}.id = {a}.delivery_id "
    "WHERE {d}.subscription_id = webhook_subscriptions.id"
)
BACKFILL = (
    "UPDATE webhook_subscriptions SET failing_since = ("
    " SELECT MIN(failed.started_at) "
    + _ATTEMPTS_OF_THE_SUBSCRIPTION.format(a="failed", d="failed_delivery")
    + " AND (failed.status_code IS NULL OR failed.status_code NOT BETWEEN 200 AND 299)"
    " AND COALESCE(failed.started_at > ("
    "  SELECT MAX(accepted.started_at) "
    + _ATTEMPTS_OF_THE_SUBSCRIPTION.format(a="accepted", d="accepted_delivery")
    + " AND accepted.status_code BETWEEN 200 AND 299"
    " ), TRUE)"
    ")"
)

_RENEW_SQLITE = (
    "INSERT OR REPLACE INTO webhook_subscribers_version (id, token) VALUES (1, lower(hex(randomblob(16))))"
)


def _sqlite_updated_trigger(of_columns: str | None) -> str:
    on = f"AFTER UPDATE OF {of_columns} ON" if of_columns else "AFTER UPDATE ON"
    return (
        f"CREATE TRIGGER webhook_subscriptions_updated {on} webhook_subscriptions BEGIN {_RENEW_SQLITE}; END"
    )


def _postgresql_trigger(of_columns: str | None) -> str:
    update = f"UPDATE OF {of_columns}" if of_columns else "UPDATE"
    return (
        f"CREATE TRIGGER webhook_subscriptions_changed AFTER INSERT OR {update} OR DELETE OR TRUNCATE"
        " ON webhook_subscriptions FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscribers_changed()"
    )


def _replace_update_trigger(of_columns: str | None) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER webhook_subscriptions_changed ON webhook_subscriptions")
        op.execute(_postgresql_trigger(of_columns))
    else:
        op.execute("DROP TRIGGER webhook_subscriptions_updated")
        op.execute(_sqlite_updated_trigger(of_columns))


def upgrade() -> None:
    # A plain ALTER on SQLite too: the table is not copied, and keeps its triggers.
    op.add_column("webhook_subscriptions", sa.Column("failing_since", TZ, nullable=True))
    _replace_update_trigger(_RENEWING)
    op.execute(BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace_update_trigger(None)
        op.drop_column("webhook_subscriptions", "failing_since")
        return
    # SQLite copies the table to drop a column, which drops its triggers: they are made again, as
    # 0015 made them.
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("failing_since")
    for name in (
        "webhook_subscriptions_inserted",
        "webhook_subscriptions_updated",
        "webhook_subscriptions_deleted",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(
        f"CREATE TRIGGER webhook_subscriptions_inserted AFTER INSERT ON webhook_subscriptions BEGIN {_RENEW_SQLITE}; END"
    )
    op.execute(_sqlite_updated_trigger(None))
    op.execute(
        f"CREATE TRIGGER webhook_subscriptions_deleted AFTER DELETE ON webhook_subscriptions BEGIN {_RENEW_SQLITE}; END"
    )
