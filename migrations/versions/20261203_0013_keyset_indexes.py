"""Indexes for the other keyset lists: follow-ups, supervision orders and alerts

Their pages continue from a cursor with a row comparison, `(key, id) > (k, i)`, as the case list
does; with an index on the same columns the scan starts at the cursor instead of reading and
sorting every row before it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 20:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_follow_ups_due_on_id", "follow_ups", ["due_on", "id"]),
    ("ix_follow_ups_raised_at_id", "follow_ups", ["raised_at", "id"]),
    ("ix_supervision_orders_due_on_id", "supervision_orders", ["due_on", "id"]),
    ("ix_alerts_raised_at_id", "alerts", ["raised_at", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
