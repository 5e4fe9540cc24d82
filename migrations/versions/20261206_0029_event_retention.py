"""The event feed keeps its events for a retention period

A feed that keeps every event forever grows without end: a city or province platform writes tens
of millions a year. Events past `MEDIATION_EVENT_RETENTION_DAYS` are now deleted by the relay,
oldest first; the case's timeline and the audit trail keep the history. `outbox_horizon` records
the last position deleted, so the feed can tell a reader whose place lies before it that events
are missing (410) instead of carrying on as if none were.

Nothing has been deleted yet: the horizon starts at 0.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_horizon",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("purged_through", BIGINT, server_default="0", nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_horizon")),
    )
    op.execute("INSERT INTO outbox_horizon (id, purged_through) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("outbox_horizon")
