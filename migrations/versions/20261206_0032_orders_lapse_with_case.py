"""A supervision order lapses with its case

An order still `issued` or `escalated` when its case's follow-up ended (declined, withdrawn, handed
on to arbitration or litigation, closed, archived: attention.FINISHED) stayed open for good: listed
among the open orders, escalated by the scheduler on a withdrawn or referred case, and keeping the
case flagged. The service now lapses the open orders in the transition that ends the case
(status `lapsed`, with `lapsed_at` and `lapse_reason`); the two columns are added here.

A downgrade gives the lapsed orders back the state they lapsed in (escalated if they had been, else
issued), as the older release has them, and drops the columns.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("supervision_orders", sa.Column("lapsed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("supervision_orders", sa.Column("lapse_reason", sa.String(length=24), nullable=True))


def downgrade() -> None:
    op.execute(
        "UPDATE supervision_orders"
        " SET status = CASE WHEN escalated_at IS NULL THEN 'issued' ELSE 'escalated' END,"
        " version = version + 1"
        " WHERE status = 'lapsed'"
    )
    op.drop_column("supervision_orders", "lapse_reason")
    op.drop_column("supervision_orders", "lapsed_at")
