"""A referral's number is unique per issuing side, not per channel across the deployment

`external_reference` (a 12345 work order, a court's 诉前调 case number, a 信访 number, a police
report's) was unique per channel across the whole deployment. In a city or province deployment two
counties' platforms, or two courts, issue the same number for different disputes, and the second
county's case could not be registered. Each case now records whose numbering its reference belongs
to, `reference_scope` (disputes.references.reference_scope): the delegating court for a
court-delegated case, else the county the case is registered in; uniqueness is per channel,
reference and scope. The cases registered before get their scope here, as intake gives it now.

Every case stays valid: the narrower constraint is implied by the old one. References are left as
they were stored (intake now stores them in a canonical form): folding old ones could make two
cases' references equal, and which of them is the duplicate is not for a migration to decide.

A downgrade fails while two scopes hold the same number on one channel: the old constraint cannot
hold them both, and dropping a case is not for a migration to decide either.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 11:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_NAME = "uq_disputes_channel_external_reference"
OLD_COLUMNS = ["channel", "external_reference"]
NEW_NAME = "uq_disputes_channel_external_reference_reference_scope"
NEW_COLUMNS = ["channel", "external_reference", "reference_scope"]


def upgrade() -> None:
    op.add_column("disputes", sa.Column("reference_scope", sa.String(36), nullable=True))
    _fill()
    _replace_unique(OLD_NAME, OLD_COLUMNS, NEW_NAME, NEW_COLUMNS)


def _fill() -> None:
    """The county of every case with a reference (its code's first six digits, as its case number
    has them), then the delegating court of court-delegated ones, a statement per court."""
    disputes = sa.table(
        "disputes",
        sa.column("channel", sa.String()),
        sa.column("external_reference", sa.String()),
        sa.column("region_code", sa.String()),
        sa.column("inviting_court_id", sa.Uuid()),
        sa.column("reference_scope", sa.String()),
    )
    connection = op.get_bind()
    with_reference = disputes.c.external_reference.is_not(None)
    connection.execute(
        disputes.update()
        .where(with_reference)
        .values(reference_scope=sa.func.substr(disputes.c.region_code, 1, 6))
    )
    delegated = sa.and_(
        with_reference,
        disputes.c.channel == "court_delegated",
        disputes.c.inviting_court_id.is_not(None),
    )
    courts = connection.execute(sa.select(disputes.c.inviting_court_id).where(delegated).distinct()).scalars()
    for court in list(courts):
        connection.execute(
            disputes.update()
            .where(delegated, disputes.c.inviting_court_id == court)
            .values(reference_scope=str(court))
        )


def _replace_unique(old: str, old_columns: list[str], new: str, new_columns: list[str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(old, "disputes", type_="unique")
        op.create_unique_constraint(new, "disputes", new_columns)
        return
    # SQLite cannot drop a table's constraint: the table is made again (its documented twelve steps).
    # Done from its own CREATE statement rather than by Alembic's batch mode, which rebuilds the
    # table from what it reflects and would lose the expression index of migration 0014.
    connection = op.get_bind()
    created = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'disputes'"
    ).scalar_one()
    indexes = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'disputes' AND sql IS NOT NULL"
    ).scalars()
    indexes = list(indexes)
    before = f"CONSTRAINT {old} UNIQUE ({', '.join(old_columns)})"
    after = f"CONSTRAINT {new} UNIQUE ({', '.join(new_columns)})"
    if before not in created:
        raise RuntimeError(f"disputes: {before} not found in its CREATE TABLE")
    renamed = re.sub(r'^CREATE TABLE "?disputes"?', 'CREATE TABLE "disputes_rebuilt"', created, count=1)
    connection.exec_driver_sql(renamed.replace(before, after))
    connection.exec_driver_sql("INSERT INTO disputes_rebuilt SELECT * FROM disputes")
    connection.exec_driver_sql("DROP TABLE disputes")
    connection.exec_driver_sql('ALTER TABLE disputes_rebuilt RENAME TO "disputes"')
    for statement in indexes:
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    _replace_unique(NEW_NAME, NEW_COLUMNS, OLD_NAME, OLD_COLUMNS)
    # SQLite drops the column in place (3.35 and later), now that no constraint names it.
    op.execute("ALTER TABLE disputes DROP COLUMN reference_scope")
