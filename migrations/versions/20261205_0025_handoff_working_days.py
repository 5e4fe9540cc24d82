"""A handoff step counted in working days keeps its count

A court's or commission's step whose rule counts working days (the rural land commission's
acceptance: 农村土地承包经营纠纷调解仲裁法 Art. 23, five working days) took weekends only when it
reached a year whose holiday schedule was not known yet, and was never counted again: a schedule
loaded later only moved a last day that was itself a day off. The handoff now keeps the day its
open step was counted from, its working days and whether the count was provisional, so the
scheduler counts it again once the schedule is loaded, as supervision orders and follow-ups do
(migration 0017); a partial index finds the provisional ones.

Handoffs that exist keep their dates as counted (their count is not known here: the rule file is
configuration), and their last day still moves off a day off as before.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each database's spelling of the query's condition (clocks.counted), so each uses the index.
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"


def upgrade() -> None:
    op.add_column("handoffs", sa.Column("counted_from", sa.Date(), nullable=True))
    op.add_column("handoffs", sa.Column("working_days", sa.Integer(), nullable=True))
    op.add_column(
        "handoffs", sa.Column("provisional", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_index(
        "ix_handoffs_provisional",
        "handoffs",
        ["status"],
        postgresql_where=sa.text(PROVISIONAL),
        sqlite_where=sa.text(PROVISIONAL_SQLITE),
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_provisional", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("provisional")
        batch.drop_column("working_days")
        batch.drop_column("counted_from")
