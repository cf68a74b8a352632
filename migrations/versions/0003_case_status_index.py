"""case index by leaf and time carries the status: the status breakdown reads the index
alone (an index-only scan) instead of one heap page per case

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_leaf_reported_status", ["leaf_unit_id", "reported_at", "status"]
        )
        batch_op.drop_index("ix_case_leaf_reported")


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index("ix_case_leaf_reported", ["leaf_unit_id", "reported_at"])
        batch_op.drop_index("ix_case_leaf_reported_status")
