"""Statistics rollup: one summary per local day, month and year of registration and region level,
and how far the rollup has followed the cases

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEADLINE = (
    "cases",
    "closed",
    "mediations_concluded",
    "agreements",
    "confirmations_decided",
    "confirmed",
    "overdue",
    "satisfaction_count",
    "satisfaction_sum",
)


def upgrade() -> None:
    # Filled by the first refresh (the first statistics request or the scheduler), from the cases.
    op.create_table(
        "stats_rollups",
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in HEADLINE),
        sa.Column("summary", JSON, nullable=False),
        sa.PrimaryKeyConstraint("grain", "region", "period", name=op.f("pk_stats_rollups")),
    )
    op.create_table(
        "stats_refresh_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("high_water", TZ, nullable=True),
        sa.Column("seen", JSON, nullable=False),
        sa.Column("refreshed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_refresh_state")),
    )


def downgrade() -> None:
    op.drop_table("stats_refresh_state")
    op.drop_table("stats_rollups")
