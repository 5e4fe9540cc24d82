"""Loaded holiday schedules: a year's official calendar before `chinese-calendar` carries it

Periods are counted on the State Council's holiday schedule (民事诉讼法 Art. 85 and the working-day
periods of the rules). The schedule for a year is published in the autumn before it, and reaches
the installed `chinese-calendar` only with a new release; until then deadlines in that year count
weekends only and are flagged provisional. An administrator now loads the notice's days here;
the scheduler then recomputes the provisional deadlines, which a partial index finds on each pass.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each database's spelling of what the query says (clocks.calendar.due_for_recount), so each uses it.
RUNNING_PROVISIONAL = "provisional AND stopped_at IS NULL"
RUNNING_PROVISIONAL_SQLITE = "provisional = 1 AND stopped_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("loaded_by", sa.String(length=120), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"],
            ["calendar_years.year"],
            name=op.f("fk_calendar_days_year_calendar_years"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_index(op.f("ix_calendar_days_year"), "calendar_days", ["year"], unique=False)
    # Every scheduler pass looks for the running provisional clocks: a few rows among many.
    op.create_index(
        "ix_case_clocks_provisional_due_on",
        "case_clocks",
        ["due_on"],
        postgresql_where=sa.text(RUNNING_PROVISIONAL),
        sqlite_where=sa.text(RUNNING_PROVISIONAL_SQLITE),
    )


def downgrade() -> None:
    op.drop_index("ix_case_clocks_provisional_due_on", table_name="case_clocks")
    op.drop_index(op.f("ix_calendar_days_year"), table_name="calendar_days")
    op.drop_table("calendar_days")
    op.drop_table("calendar_years")
