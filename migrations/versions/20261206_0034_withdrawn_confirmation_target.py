"""A case whose confirmation request was withdrawn is no longer addressed to the court

A confirmation request withdrawn by the parties, or treated as withdrawn (民诉法解释 Art. 357), now
leaves the case no longer addressed to the court: the court stops reading the case, its parties'
identity included, and receiving its events (个人信息保护法 Art. 6, 51: minimum necessary). The
cases withdrawn under the older release still name the court; here they stop: every case whose
latest handoff is a withdrawn confirmation request to the court it still names.

Data only. A downgrade leaves them as they are: which of them named the court before is not kept,
and the older release reads a case with no target as it reads one after a remediation.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            """
            UPDATE disputes
               SET handoff_target_id = NULL
             WHERE handoff_target_id IS NOT NULL
               AND EXISTS (
                   SELECT 1 FROM handoffs AS withdrawn
                    WHERE withdrawn.dispute_id = disputes.id
                      AND withdrawn.kind = 'judicial_confirmation'
                      AND withdrawn.status = 'withdrawn'
                      AND withdrawn.target_id = disputes.handoff_target_id
                      AND NOT EXISTS (
                          SELECT 1 FROM handoffs AS later
                           WHERE later.dispute_id = disputes.id
                             AND later.created_at > withdrawn.created_at
                      )
               )
            """
        )
    )


def downgrade() -> None:
    pass
