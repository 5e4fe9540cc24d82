"""A court-delegated case says when in the court's case it was delegated

特邀调解规定 Art. 27 gives a court's mediation thirty days before the case is filed (委派调解),
fifteen (ordinary procedure) or seven (simple procedure) after it is filed (委托调解). A case now
records which (`court_stage`: pre_filing, after_filing_ordinary, after_filing_simple) and, if
given, the court's number for its case (`court_case_number`). The court-delegated cases before
this release were all timed as delegated before filing: they are `pre_filing`. A case is
court-delegated when it names the inviting court or came by the court channel. Their running
mediation clocks stop being pausable, as the new rules make them. A downgrade drops both columns
(the clocks stay unpausable); the older release times every court-delegated case as pre-filing again.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place, not by Alembic's batch mode: on SQLite that rebuilds the table from what it
    # reflects and would lose the expression index of migration 0014.
    op.add_column("disputes", sa.Column("court_stage", sa.String(24), nullable=True))
    op.add_column("disputes", sa.Column("court_case_number", sa.String(64), nullable=True))
    op.execute(
        sa.text(
            """
            UPDATE disputes
               SET court_stage = 'pre_filing'
             WHERE inviting_court_id IS NOT NULL OR channel = 'court_delegated'
            """
        )
    )
    # A clock keeps what its rule said when it started: the court's periods started before this
    # release stop taking pauses too (特邀调解规定 Art. 27: longer only by agreement). One paused now
    # is resumed as before, and not paused again.
    op.execute(
        sa.text(
            """
            UPDATE case_clocks
               SET pausable = false
             WHERE rule_id = 'mediation.court_delegated' AND stopped_at IS NULL
            """
        )
    )


def downgrade() -> None:
    # SQLite drops a column in place (3.35 and later); no index or constraint names these.
    op.execute("ALTER TABLE disputes DROP COLUMN court_case_number")
    op.execute("ALTER TABLE disputes DROP COLUMN court_stage")
