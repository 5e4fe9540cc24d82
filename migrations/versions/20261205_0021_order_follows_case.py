"""A supervision order follows its case from body to body

An order stayed addressed to the body it was issued to after that body transferred or returned the
case, or it went up a tier: the old body could no longer act on the case but was still the one to
answer, the body that took the case over never saw the order, and the scheduler escalated it
against the old body. An open order addressed to the body losing the case now waits, addressed to
no body, while the case is at the center, and is addressed to the next body that takes the case
(supervision.service). `body_id` is null while it waits.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 11:40:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each database's spelling of the partial index's condition (clocks.counted, migration 0017).
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"


def _without_the_partial_index(nullable: bool) -> None:
    # SQLite cannot change a column's nullability in place: the batch copies the table into a new
    # one, which would keep the partial index without its condition. It is made again after.
    op.drop_index("ix_supervision_orders_provisional", table_name="supervision_orders")
    # The copy reflects the tables the orders refer to, disputes among them, whose town index is an
    # expression SQLAlchemy cannot reflect; nothing here needs it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("supervision_orders") as batch:
            batch.alter_column("body_id", existing_type=sa.Uuid(), nullable=nullable)
    op.create_index(
        "ix_supervision_orders_provisional",
        "supervision_orders",
        ["due_on"],
        postgresql_where=sa.text(PROVISIONAL),
        sqlite_where=sa.text(PROVISIONAL_SQLITE),
    )


def upgrade() -> None:
    _without_the_partial_index(nullable=True)


def downgrade() -> None:
    # An order waiting for the case's next body goes back to the body that last had the case, where
    # the earlier revisions left it.
    op.execute(
        "UPDATE supervision_orders SET body_id = ("
        "SELECT a.body_id FROM assignments a WHERE a.dispute_id = supervision_orders.dispute_id "
        "ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1) "
        "WHERE body_id IS NULL"
    )
    _without_the_partial_index(nullable=False)
