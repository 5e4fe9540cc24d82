"""Handoffs are listed in the order they were made

`GET /v1/handoffs` paged by (requested_on, id): the day a handoff was requested, then its random
id. A handoff requested today after a court read a page could sort before that page's cursor (its
id lower than the last one listed) and the court, resuming its walk, never saw it. A handoff now
has a number given when it is made, `handoffs.seq`, which only grows (PostgreSQL: the sequence
`handoff_list_seq`; SQLite: the highest plus one, under the write lock), and the list pages by it.

Handoffs that exist are numbered in the order they were made (created_at, then id). A cursor
handed out before names a day and an id, and is refused as invalid (422 `invalid_cursor`): the
walk starts again from the first page.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE = "handoff_list_seq"
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# As migration 0025 made it: SQLite's batch copy of the table is made without it, and it is made again.
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(f"CREATE SEQUENCE {SEQUENCE} AS bigint")
    op.drop_index("ix_handoffs_provisional", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("seq", BIGINT, nullable=True))
    op.execute(
        "UPDATE handoffs SET seq = numbered.n FROM ("
        " SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM handoffs"
        ") AS numbered WHERE numbered.id = handoffs.id"
    )
    if postgresql:
        op.execute(f"SELECT setval('{SEQUENCE}', coalesce(max(seq), 0) + 1, false) FROM handoffs")
        op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY handoffs.seq")
    with op.batch_alter_table("handoffs") as batch:
        batch.alter_column("seq", existing_type=BIGINT, nullable=False)
        batch.create_unique_constraint("uq_handoffs_seq", ["seq"])
        batch.create_index("ix_handoffs_target_id_seq", ["target_id", "seq"])
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
        batch.drop_index("ix_handoffs_target_id_seq")
        batch.drop_constraint("uq_handoffs_seq", type_="unique")
        batch.drop_column("seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")
    op.create_index(
        "ix_handoffs_provisional",
        "handoffs",
        ["status"],
        postgresql_where=sa.text(PROVISIONAL),
        sqlite_where=sa.text(PROVISIONAL_SQLITE),
    )
