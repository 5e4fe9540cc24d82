"""Each case keeps the place early warning recognises in its address, indexed

Early warning's place wave is the cases at one place (a housing project, a market) within a few
days in the county. Intake found them by reading every case of the county and window that had an
address and reducing each address in Python: a county registering thirty thousand cases a year
has some six hundred in a week, read again at every intake that names a place. The reduced
address (`alerts.detect.place_key`) is now kept with the case and indexed with its time, so the
query reads the place's own cases. The cases registered before this revision get theirs here.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    op.add_column("disputes", sa.Column("place_key", sa.String(200), nullable=True))
    _fill()
    op.create_index(
        "ix_disputes_place_key_created_at",
        "disputes",
        ["place_key", "created_at"],
        postgresql_where=sa.text("place_key IS NOT NULL"),
        sqlite_where=sa.text("place_key IS NOT NULL"),
    )


def _fill() -> None:
    """The place of every case with an address, in batches by id, as intake computes it now."""
    from mediation.alerts.detect import place_key

    disputes = sa.table(
        "disputes",
        sa.column("id", sa.Uuid()),
        sa.column("address", sa.String()),
        sa.column("place_key", sa.String()),
    )
    connection = op.get_bind()
    set_place = (
        disputes.update()
        .where(disputes.c.id == sa.bindparam("case_id"))
        .values(place_key=sa.bindparam("place"))
    )
    after = None
    while True:
        query = (
            sa.select(disputes.c.id, disputes.c.address)
            .where(disputes.c.address.is_not(None))
            .order_by(disputes.c.id)
            .limit(BATCH)
        )
        if after is not None:
            query = query.where(disputes.c.id > after)
        rows = connection.execute(query).all()
        if not rows:
            return
        places = [{"case_id": i, "place": p} for i, address in rows if (p := place_key(address))]
        if places:
            connection.execute(set_place, places)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_disputes_place_key_created_at", table_name="disputes")
    # SQLite drops the column in place (3.35 and later): a batch copy of the table would lose the
    # expression index of migration 0014, which cannot be reflected.
    op.execute("ALTER TABLE disputes DROP COLUMN place_key")
