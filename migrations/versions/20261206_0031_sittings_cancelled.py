"""Sittings no longer to be held are cancelled

A mediation session (调解会) scheduled at a body stayed `scheduled` for good when mediation there
ended (an agreement, a failure, a withdrawal) or the case left the body (returned, transferred,
escalated). The service now cancels them with the transition; the ones left behind before are
cancelled here: every sitting still `scheduled` whose case is no longer in mediation at the body
that scheduled it.

Data only. A downgrade leaves them cancelled: which of them were `scheduled` before is not kept,
and a sitting that will not be held is cancelled under the older release too.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            """
            UPDATE mediation_sessions
               SET status = 'cancelled', version = version + 1, updated_at = CURRENT_TIMESTAMP
             WHERE status = 'scheduled'
               AND NOT EXISTS (
                   SELECT 1 FROM disputes
                    WHERE disputes.id = mediation_sessions.dispute_id
                      AND disputes.status = 'mediating'
                      AND disputes.body_id = mediation_sessions.body_id
               )
            """
        )
    )


def downgrade() -> None:
    pass
