"""A sitting moved keeps its earlier times

A body may now move (改期) a sitting still to be held: a party is ill, the room is taken. The
sitting keeps its id and takes the new time and place; `reschedules` keeps each move, oldest first
(the earlier and the new time and place, the reason, when and by whom). The sittings before this
release were never moved: an empty list. A downgrade drops the history; each sitting stays at
the time and place it was last moved to.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mediation_sessions") as batch:
        batch.add_column(sa.Column("reschedules", JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("mediation_sessions") as batch:
        batch.drop_column("reschedules")
