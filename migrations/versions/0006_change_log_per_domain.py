"""change log per fact domain: each row of ``rollup_change`` names the domain whose rollup
deltas it holds (every row so far is the cases'), so that any domain with rollup tables
catches its cube up from the log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _primary_key(batch, columns: list[str]) -> None:
    """Make ``columns`` the primary key (SQLite: the table is copied with it in place)."""
    if op.get_bind().dialect.name != "sqlite":
        batch.drop_constraint("rollup_change_pkey", type_="primary")
    batch.create_primary_key("rollup_change_pkey", columns)


def upgrade() -> None:
    with op.batch_alter_table("rollup_change") as batch:
        batch.add_column(sa.Column("domain", sa.String(32), nullable=False, server_default="cases"))
        _primary_key(batch, ["domain", "version"])


def downgrade() -> None:
    op.execute("DELETE FROM rollup_change WHERE domain <> 'cases'")
    with op.batch_alter_table("rollup_change") as batch:
        _primary_key(batch, ["version"])
        batch.drop_column("domain")
