"""A supervision order lapses with its case

An order still `issued` or `escalated` when its case's follow-up ended (declined, withdrawn, handed
on to arbitration or litigation, closed, archived: attention.FINISHED) stayed open for good: listed
among the open orders, escalated by the scheduler on a withdrawn or referred case, and keeping the
case flagged. The service now lapses the open orders in the transition that ends the case
(status `lapsed`, with `lapsed_at` and `lapse_reason`). Here:

- the two columns are added;
- the orders left open on cases that had ended lapse as the service lapses them: at the moment the
  case reached its first ended state (these states lead only to one another), or when the order was
  issued if that was later, for the reason of that state, read off the case's timeline. No timeline
  entry or event is written for them: the timeline's entries are the case's versions, and the case
  did not change;
- the reason each case waits for a supervisor (`disputes.attention`) is worked out again where the
  older release left one that no longer holds, by the service's rule (disputes.attention): a risk
  while its alert is not resolved, else `triage_exhausted` only for a case waiting at the center for
  a body (none of these), else `supervision_overdue` while an escalated order is open on a case still
  followed, else none. That is `supervision_overdue` on an ended case, and `triage_exhausted` on a
  case no longer waiting at the center for a body.

A downgrade gives the lapsed orders back the state they lapsed in (escalated if they had been, else
issued), as the older release has them, and drops the columns.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# attention.FINISHED as of this revision.
ENDED = "('declined', 'withdrawn', 'referred_arbitration', 'referred_litigation', 'closed', 'archived')"


# The case's first timeline entry in an ended state: the transition that ended its follow-up.
def _ending(column: str) -> str:
    return (
        f"(SELECT t.{column} FROM timeline_entries t WHERE t.dispute_id = supervision_orders.dispute_id"
        f" AND t.to_status IN {ENDED} ORDER BY t.seq LIMIT 1)"
    )


ENDED_AT, ENDED_IN = _ending("occurred_at"), _ending("to_status")

# disputes.attention's rule, for a case that is not waiting at the center for a body.
OPEN_RISK = (
    "EXISTS (SELECT 1 FROM alert_cases ac JOIN alerts a ON a.id = ac.alert_id"
    " WHERE ac.dispute_id = disputes.id AND a.kind = 'risk' AND a.status <> 'resolved')"
)
OVERDUE_ORDER = (
    f"disputes.status NOT IN {ENDED} AND EXISTS (SELECT 1 FROM supervision_orders o"
    " WHERE o.dispute_id = disputes.id AND o.status = 'escalated')"
)


def upgrade() -> None:
    op.add_column("supervision_orders", sa.Column("lapsed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("supervision_orders", sa.Column("lapse_reason", sa.String(length=24), nullable=True))
    # A case's timeline is complete from its registration, so an ended case has its ending entry;
    # the case's own state and the time of the migration stand in should one be missing.
    op.execute(
        sa.text(
            f"""
            UPDATE supervision_orders
               SET status = 'lapsed',
                   lapsed_at = CASE
                       WHEN {ENDED_AT} IS NULL THEN CURRENT_TIMESTAMP
                       WHEN {ENDED_AT} > issued_at THEN {ENDED_AT}
                       ELSE issued_at
                   END,
                   lapse_reason = COALESCE(
                       {ENDED_IN},
                       (SELECT d.status FROM disputes d WHERE d.id = supervision_orders.dispute_id)
                   ),
                   version = version + 1
             WHERE status IN ('issued', 'escalated')
               AND dispute_id IN (SELECT id FROM disputes WHERE status IN {ENDED})
            """
        )
    )
    op.execute(
        sa.text(
            f"""
            UPDATE disputes
               SET attention = CASE
                   WHEN {OPEN_RISK} THEN 'risk'
                   WHEN {OVERDUE_ORDER} THEN 'supervision_overdue'
                   ELSE NULL
               END
             WHERE (attention = 'supervision_overdue' AND status IN {ENDED})
                OR (attention = 'triage_exhausted' AND (status <> 'accepted' OR body_id IS NOT NULL))
            """
        )
    )


def downgrade() -> None:
    op.execute(
        "UPDATE supervision_orders"
        " SET status = CASE WHEN escalated_at IS NULL THEN 'issued' ELSE 'escalated' END,"
        " version = version + 1"
        " WHERE status = 'lapsed'"
    )
    op.drop_column("supervision_orders", "lapse_reason")
    op.drop_column("supervision_orders", "lapsed_at")
