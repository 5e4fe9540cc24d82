"""The statistics rollup carries a generation: a fresh value at every refresh that changes it

An overview is computed from the rollup alone, so while the rollup is unchanged the answer is too.
Each process keeps its latest overviews under the generation they were read at; a refresh by any
process writes a new one, and the next request that finds it computes the overview again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stats_refresh_state") as batch:
        batch.add_column(sa.Column("generation", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stats_refresh_state") as batch:
        batch.drop_column("generation")
