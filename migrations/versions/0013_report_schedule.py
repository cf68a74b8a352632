"""report_schedule: the units whose monthly report (月报) is made on a schedule (issue 24).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_schedule",
        sa.Column("unit_code", sa.String(length=32), primary_key=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_schedule")
