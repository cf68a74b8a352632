"""The case desk (分级分流): departments, routing rules, department members, the case
timeline (case_action); a case's handling unit, department, version, handler_since and
accepted_at; the role ``department``.

Cases stored before keep a NULL handling unit (the desk reads it as the case's village, or
its leaf) and version 1.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROLES_BEFORE = "role in ('admin', 'official', 'village_worker', 'analyst', 'display', 'intake')"
ROLES_AFTER = (
    "role in ('admin', 'official', 'village_worker', 'department', 'analyst', 'display', 'intake')"
)


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, api.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "department",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_code", "kind", name="uq_department_unit_kind"),
    )
    op.create_table(
        "routing_rule",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("severity", sa.String(length=8), nullable=True),
        sa.Column("area_code", sa.String(length=32), nullable=True),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("department_kind", sa.String(length=24), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "department_member",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("department_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "case_action",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_unit_id", sa.BigInteger(), nullable=False),
        _time("at", nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=24), nullable=True),
        sa.Column("from_unit", sa.String(length=32), nullable=True),
        sa.Column("from_level", sa.String(length=32), nullable=True),
        sa.Column("from_department_id", sa.BigInteger(), nullable=True),
        sa.Column("to_unit", sa.String(length=32), nullable=True),
        sa.Column("to_level", sa.String(length=32), nullable=True),
        sa.Column("to_department_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("held_seconds", sa.Float(), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_case_action_key"),
    )
    with op.batch_alter_table("case_action") as batch:
        batch.create_index("ix_case_action_case", ["case_id", "id"], unique=False)
        batch.create_index("ix_case_action_at", ["at"], unique=False)
    # PostgreSQL adds nullable columns and one with a constant default without a rewrite
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("handling_unit_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("department_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(_time("handler_since"))
        batch.add_column(_time("accepted_at"))
        batch.create_index(
            "ix_case_handling_unit_status", ["handling_unit_code", "status"], unique=False
        )
        batch.create_index("ix_case_department_status", ["department_id", "status"], unique=False)
    with op.batch_alter_table("app_user") as batch:
        batch.drop_constraint("ck_app_user_role", type_="check")
        batch.create_check_constraint("ck_app_user_role", ROLES_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM department_member")
    op.execute("DELETE FROM app_user WHERE role = 'department'")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_constraint("ck_app_user_role", type_="check")
        batch.create_check_constraint("ck_app_user_role", ROLES_BEFORE)
    with op.batch_alter_table("case") as batch:
        batch.drop_index("ix_case_department_status")
        batch.drop_index("ix_case_handling_unit_status")
        batch.drop_column("accepted_at")
        batch.drop_column("handler_since")
        batch.drop_column("version")
        batch.drop_column("department_id")
        batch.drop_column("handling_unit_code")
    with op.batch_alter_table("case_action") as batch:
        batch.drop_index("ix_case_action_at")
        batch.drop_index("ix_case_action_case")
    op.drop_table("case_action")
    op.drop_table("department_member")
    op.drop_table("routing_rule")
    op.drop_table("department")
