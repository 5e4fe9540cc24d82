"""Handoffs are listed in the order they were made

`GET /v1/handoffs` paged by (requested_on, id): the day a handoff was requested, then its random
id. A handoff requested today after a court read a page could sort before that page's cursor (its
id lower than the last one listed) and the court, resuming its walk, never saw it. A handoff now
has a number, `handoffs.seq`, which only grows and the list pages by: the highest plus one, given
just before the transaction making it commits, under the journal lock every writer holds until its
commit, so numbers become visible in the order they were given (a sequence numbers at insert, and a
handoff committed late could still fall behind a cursor). It is empty only inside that transaction.
The index of `target_id` alone gives way to the list's (`target_id`, `seq`), which starts with it.

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

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# As migration 0025 made it: SQLite's batch copy of the table is made without it, and it is made again.
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"


def upgrade() -> None:
    op.drop_index("ix_handoffs_provisional", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("seq", BIGINT, nullable=True))
    op.execute(
        "UPDATE handoffs SET seq = numbered.n FROM ("
        " SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM handoffs"
        ") AS numbered WHERE numbered.id = handoffs.id"
    )
    with op.batch_alter_table("handoffs") as batch:
        batch.create_unique_constraint("uq_handoffs_seq", ["seq"])
        batch.create_index("ix_handoffs_target_id_seq", ["target_id", "seq"])
        batch.drop_index("ix_handoffs_target_id")
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
        batch.create_index("ix_handoffs_target_id", ["target_id"])
        batch.drop_index("ix_handoffs_target_id_seq")
        batch.drop_constraint("uq_handoffs_seq", type_="unique")
        batch.drop_column("seq")
    op.create_index(
        "ix_handoffs_provisional",
        "handoffs",
        ["status"],
        postgresql_where=sa.text(PROVISIONAL),
        sqlite_where=sa.text(PROVISIONAL_SQLITE),
    )
