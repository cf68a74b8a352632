"""case.placed_by_tolerance: a case whose point lies in no leaf unit but within the
locate tolerance (``ZHILI_LOCATE_TOLERANCE_M``) of one is placed in the nearest leaf and
flagged; every case stored before was placed exactly (false).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL adds a column with a constant default without rewriting the table
    with op.batch_alter_table("case") as batch:
        batch.add_column(
            sa.Column(
                "placed_by_tolerance", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("case") as batch:
        batch.drop_column("placed_by_tolerance")
