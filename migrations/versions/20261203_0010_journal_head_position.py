"""The journal head keeps the last event position it handed out

Numbering a transaction's events no longer asks for max(outbox_events.position) while holding
the journal head: the head row, locked anyway, carries the last position. One query fewer in the
one section every write in the deployment passes through in turn.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.add_column(sa.Column("last_position", BIGINT, server_default="0", nullable=False))
    op.execute(
        "UPDATE audit_chain_head SET last_position = (SELECT coalesce(max(position), 0) FROM outbox_events)"
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_column("last_position")
