"""A court asks for more materials, and the mediation side supplies them

民诉法解释 Art. 354: an application without the materials it needs is to be completed within a
period the court sets (限期补交); Art. 356: after acceptance the court may have the parties supplement
statements or proofs that are insufficient, incomplete or doubtful (限期补充); Art. 357: a party who
does not, without good reason, may be treated as withdrawing. A handoff keeps the court's requests
(`handoffs.materials_requests`, each with its answer), the open one's last day
(`materials_due_on`) and whether the clock flagged it as passed (`materials_overdue_flagged`).

The documents supplied are frozen into the dossier like those handed over at first: a dossier frozen
again for an open handoff names it (`dossiers.handoff_id`); a dossier frozen when a case was handed
off names none and is its handoff's by time, as before.

Existing handoffs get no request.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# As migration 0025 made it: SQLite's batch copy of the table is made without it, and it is made again.
PROVISIONAL = "provisional"
PROVISIONAL_SQLITE = "provisional = 1"


def upgrade() -> None:
    op.add_column(
        "handoffs", sa.Column("materials_requests", JSON, server_default=sa.text("'[]'"), nullable=False)
    )
    op.add_column("handoffs", sa.Column("materials_due_on", sa.Date(), nullable=True))
    op.add_column(
        "handoffs",
        sa.Column("materials_overdue_flagged", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its foreign key in place, named as the models' convention names it.
        op.execute(
            "ALTER TABLE dossiers ADD COLUMN handoff_id CHAR(32)"
            " CONSTRAINT fk_dossiers_handoff_id_handoffs REFERENCES handoffs (id)"
        )
    else:
        op.add_column(
            "dossiers",
            sa.Column(
                "handoff_id",
                sa.Uuid(),
                sa.ForeignKey("handoffs.id", name="fk_dossiers_handoff_id_handoffs"),
                nullable=True,
            ),
        )


def downgrade() -> None:
    # Not reading the tables referred to (disputes has an index SQLAlchemy cannot reflect).
    quiet = {"resolve_fks": False}
    with op.batch_alter_table("dossiers", reflect_kwargs=quiet) as batch:
        batch.drop_column("handoff_id")
    op.drop_index("ix_handoffs_provisional", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("materials_overdue_flagged")
        batch.drop_column("materials_due_on")
        batch.drop_column("materials_requests")
    op.create_index(
        "ix_handoffs_provisional",
        "handoffs",
        ["status"],
        postgresql_where=sa.text(PROVISIONAL),
        sqlite_where=sa.text(PROVISIONAL_SQLITE),
    )
