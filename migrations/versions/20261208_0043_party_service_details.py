"""A party's service address, an organisation's legal representative, and whom an agent acts for

A court confirming an agreement is given each party's service address (送达地址) and, for an agent,
the power of attorney of the party it acts for (民诉法解释 Art. 353-354; 法释〔2011〕5号 Art. 3);
an organisation acts through its legal representative or principal (法定代表人 / 主要负责人,
民事诉讼法 Art. 51). Three columns of `parties`, all optional:

- `service_address`: where the court's papers are served, when not the party's address;
- `legal_representative`: organisations only;
- `represents_position`: agents only, the `position` of the party of the same case it acts for.

Existing parties get none: nothing on record says them, and the service falls back to the
address, said as such.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("service_address", sa.String(200)),
    ("legal_representative", sa.String(100)),
    ("represents_position", sa.Integer()),
)


def upgrade() -> None:
    # Nullable columns without a default: added in place on both databases, no copy of the table.
    for name, type_ in COLUMNS:
        op.add_column("parties", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    # Not reading the tables referred to (disputes has an index SQLAlchemy cannot reflect).
    with op.batch_alter_table("parties", reflect_kwargs={"resolve_fks": False}) as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
