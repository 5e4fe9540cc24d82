"""Case clocks (deadline runs with pauses, extensions and levels), early-warning alerts,
supervision orders, case owners and complexity, follow-up visits

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_clocks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("rule_id", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("unit", sa.String(length=15), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("pausable", sa.Boolean(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("warn_at", TZ, nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("paused_at", TZ, nullable=True),
        sa.Column("pause_reason", sa.String(length=30), nullable=True),
        sa.Column("extended_by", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("at_risk_fired_at", TZ, nullable=True),
        sa.Column("overdue_fired_at", TZ, nullable=True),
        sa.Column("stopped_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("history", JSON, nullable=False),
        sa.ForeignKeyConstraint(["dispute_id"], ["disputes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_clocks_running_warn", "case_clocks", ["stopped_at", "warn_at"])
    op.create_index("ix_case_clocks_dispute_name", "case_clocks", ["dispute_id", "name"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("open_key", sa.String(length=200), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("acknowledged_at", TZ, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=120), nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    op.create_index("ix_alerts_kind", "alerts", ["kind"])
    op.create_index("ix_alerts_region_code", "alerts", ["region_code"])
    op.create_index("ix_alerts_status", "alerts", ["status"])
    op.create_table(
        "alert_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("matched", JSON, nullable=False),
        sa.Column("added_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["dispute_id"], ["disputes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "dispute_id"),
    )
    op.create_index("ix_alert_cases_alert_id", "alert_cases", ["alert_id"])
    op.create_index("ix_alert_cases_dispute_id", "alert_cases", ["dispute_id"])

    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_by", sa.String(length=120), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("responded_by", sa.String(length=120), nullable=True),
        sa.Column("responded_at", TZ, nullable=True),
        sa.Column("escalated_at", TZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"]),
        sa.ForeignKeyConstraint(["dispute_id"], ["disputes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_supervision_orders_dispute_id", "supervision_orders", ["dispute_id"])
    op.create_index("ix_supervision_orders_body_id", "supervision_orders", ["body_id"])
    op.create_index("ix_supervision_orders_status", "supervision_orders", ["status"])

    with op.batch_alter_table("disputes") as batch:
        batch.add_column(sa.Column("complexity", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("clock", JSON, nullable=True))
        batch.add_column(sa.Column("clock_level", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("clock_due_at", TZ, nullable=True))
        batch.add_column(sa.Column("owner", JSON, nullable=True))
        batch.create_index("ix_disputes_clock_level", ["clock_level"])
        batch.create_index("ix_disputes_clock_due_at", ["clock_due_at"])
    with op.batch_alter_table("follow_ups") as batch:
        batch.alter_column("body_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("attempts", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("follow_ups") as batch:
        batch.drop_column("attempts")
        batch.alter_column("body_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("disputes") as batch:
        batch.drop_index("ix_disputes_clock_due_at")
        batch.drop_index("ix_disputes_clock_level")
        for name in ("owner", "clock_due_at", "clock_level", "clock", "complexity"):
            batch.drop_column(name)
    op.drop_table("supervision_orders")
    op.drop_table("alert_cases")
    op.drop_table("alerts")
    op.drop_table("case_clocks")
