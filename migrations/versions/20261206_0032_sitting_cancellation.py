"""A sitting called off keeps when and why

A body may now call off a sitting still to be held, with its reason (a party cannot come, the room
is taken); sittings are also called off with the case when mediation at the body ends (0031).
`cancelled_at` and `cancel_reason` keep when, and the body's reason when it gave one. The sittings
cancelled before this release were cancelled with their case: their last change is when.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mediation_sessions") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.execute(sa.text("UPDATE mediation_sessions SET cancelled_at = updated_at WHERE status = 'cancelled'"))


def downgrade() -> None:
    with op.batch_alter_table("mediation_sessions") as batch:
        batch.drop_column("cancel_reason")
        batch.drop_column("cancelled_at")
