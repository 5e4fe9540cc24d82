"""Dates counted in working days keep their count: supervision orders and follow-ups

A supervision order's default answer date and the follow-up raised for an overdue obligation are
set some working days ahead. Counted across a year whose holiday schedule was not known yet, they
took weekends only. They now keep the day they were counted from, their working days and whether
the count was provisional, so the scheduler counts them again once the schedule is loaded (the
same as the running clocks, migration 0016); a partial index finds the provisional ones.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each database's spelling of the query's condition (clocks.counted), so each uses the index.
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"

TABLES = ("supervision_orders", "follow_ups")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("counted_from", sa.Date(), nullable=True))
        op.add_column(table, sa.Column("working_days", sa.Integer(), nullable=True))
        op.add_column(
            table, sa.Column("provisional", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        op.create_index(
            f"ix_{table}_provisional",
            table,
            ["due_on"],
            postgresql_where=sa.text(PROVISIONAL),
            sqlite_where=sa.text(PROVISIONAL_SQLITE),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_provisional", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("provisional")
            batch.drop_column("working_days")
            batch.drop_column("counted_from")
