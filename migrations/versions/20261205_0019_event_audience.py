"""Each event keeps the body and the court or commission it was addressed to when it happened

The event feed and the webhooks chose a body's or a court's events by the case as it stands now.
A body that transferred a case, or a court whose rejected confirmation was mediated again, then
lost every event of that case from its feed, the one that took the case away included, and its
webhook was never told. An event now records the body holding the case and the court or
commission it is addressed to as the change left them, or, when the change took the case away,
as they were before it; each sees the events it was a party to, and keeps seeing them.

The events written before this revision get the case's current holders: what they were shown by.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("body_id", sa.Uuid(), nullable=True))
    op.add_column("outbox_events", sa.Column("target_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE outbox_events SET "
        "body_id = (SELECT d.body_id FROM disputes d WHERE d.id = outbox_events.dispute_id), "
        "target_id = (SELECT d.handoff_target_id FROM disputes d WHERE d.id = outbox_events.dispute_id) "
        "WHERE dispute_id IS NOT NULL"
    )
    # The feed of a body or a court: its events in order after a position.
    for column in ("body_id", "target_id"):
        op.create_index(
            f"ix_outbox_events_{column}_position",
            "outbox_events",
            [column, "position"],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )


def downgrade() -> None:
    for column in ("target_id", "body_id"):
        op.drop_index(f"ix_outbox_events_{column}_position", table_name="outbox_events")
        # In place (SQLite 3.35 and later): a batch copy of the table would lose its partial index
        # of unsequenced events' definition as the models give it.
        op.execute(f"ALTER TABLE outbox_events DROP COLUMN {column}")
