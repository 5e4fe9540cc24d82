"""Case milestones for the statistics (stage boundaries, mediation and confirmation results,
overdue flag, satisfaction), filled from the timeline for existing cases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TZ = sa.DateTime(timezone=True)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("accepted_at", TZ, nullable=True),
        sa.Column("mediation_started_at", TZ, nullable=True),
        sa.Column("mediation_ended_at", TZ, nullable=True),
        sa.Column("mediation_result", sa.String(length=12), nullable=True),
        sa.Column("confirmation_requested_at", TZ, nullable=True),
        sa.Column("confirmation_decided_at", TZ, nullable=True),
        sa.Column("confirmation_result", sa.String(length=16), nullable=True),
        sa.Column("ever_overdue", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
    ]


def _first(actions: str, *, last: bool = False, extra: str = "") -> str:
    agg = "MAX" if last else "MIN"
    return (
        f"(SELECT {agg}(t.occurred_at) FROM timeline_entries t WHERE t.dispute_id = disputes.id "
        f"AND t.action IN ({actions}){extra})"
    )


def upgrade() -> None:
    with op.batch_alter_table("disputes") as batch:
        for column in _columns():
            batch.add_column(column)
        batch.create_index("ix_disputes_updated_at", ["updated_at"])
    # Existing cases: the same milestones, read off their timeline.
    ended = "'agree', 'fail', 'withdraw'"
    from_mediating = " AND t.from_status = 'mediating'"
    decided = "'confirm', 'reject', 'not_accept', 'withdraw_confirmation'"
    accept, sign_for, request = "'accept'", "'sign_for'", "'request_confirmation'"
    op.execute(
        "UPDATE disputes SET "
        f"accepted_at = {_first(accept)}, "
        f"mediation_started_at = {_first(sign_for)}, "
        f"mediation_ended_at = {_first(ended, last=True, extra=from_mediating)}, "
        f"confirmation_requested_at = {_first(request, last=True)}, "
        f"confirmation_decided_at = {_first(decided, last=True)}"
    )
    op.execute(
        "UPDATE disputes SET mediation_result = (SELECT CASE t.action WHEN 'agree' THEN 'agreement' "
        "WHEN 'fail' THEN 'failed' ELSE 'withdrawn' END FROM timeline_entries t "
        "WHERE t.dispute_id = disputes.id AND t.occurred_at = disputes.mediation_ended_at "
        f"AND t.action IN ({ended}) LIMIT 1) WHERE mediation_ended_at IS NOT NULL"
    )
    op.execute(
        "UPDATE disputes SET confirmation_result = (SELECT CASE t.action WHEN 'confirm' THEN 'confirmed' "
        "WHEN 'reject' THEN 'rejected' WHEN 'not_accept' THEN 'not_accepted' ELSE 'withdrawn' END "
        "FROM timeline_entries t WHERE t.dispute_id = disputes.id "
        f"AND t.occurred_at = disputes.confirmation_decided_at AND t.action IN ({decided}) LIMIT 1) "
        "WHERE confirmation_decided_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("disputes") as batch:
        batch.drop_index("ix_disputes_updated_at")
        for column in reversed(_columns()):
            batch.drop_column(column.name)
