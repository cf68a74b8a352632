"""rollup tables without foreign keys to admin_unit: every row a merge inserts fired a
per-row check against admin_unit (about a quarter of the rollup merges' time in a bulk import).
The rollups stay equal to a recount of table ``case``, whose own foreign key still holds
each case's unit, so a rollup row never names a unit that does not exist.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("case_rollup_daily", "case_flow_daily", "case_close_histogram")
# SQLite's foreign keys have no names: batch mode names them by this convention to drop them
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade() -> None:
    for table in TABLES:
        if op.get_bind().dialect.name == "postgresql":
            op.drop_constraint(f"{table}_leaf_unit_id_fkey", table, type_="foreignkey")
            continue
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.drop_constraint(f"{table}_leaf_unit_id_fkey", type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(
                f"{table}_leaf_unit_id_fkey",
                "admin_unit",
                ["leaf_unit_id"],
                ["id"],
                ondelete="CASCADE",
            )
