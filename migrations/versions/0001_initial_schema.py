"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 09:23:02.606801
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_level",
        sa.Column("depth", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=32), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("depth"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("observed", sa.Float(), nullable=True),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("last_seen_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint("status in ('open', 'closed')", name="ck_alert_status"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_status", ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role in ('admin', 'official', 'village_worker', 'analyst', 'display', 'intake')",
            name="ck_app_user_role",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)

    op.create_table(
        "dataset_version",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "facility",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("video_linked", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind in ('center', 'linkage_station')", name="ck_facility_kind"),
        sa.CheckConstraint(
            "status in ('required', 'under_construction', 'built')", name="ck_facility_status"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_facility_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "grid_worker",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "role in ('leader', 'full_time', 'part_time')", name="ck_grid_worker_role"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grid_worker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grid_worker_grid_code"), ["grid_code"], unique=False)

    op.create_table(
        "admin_unit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("area_km2", sa.Float(), nullable=True),
        sa.Column("geom", api.db.types.GeometryType("MULTIPOLYGON"), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["level"],
            ["admin_level.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "valid_from", name="uq_admin_unit_code_version"),
    )
    with op.batch_alter_table("admin_unit", schema=None) as batch_op:
        batch_op.create_index("ix_admin_unit_level", ["level"], unique=False)
        batch_op.create_index("ix_admin_unit_parent_code", ["parent_code"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_admin_unit_geom", "admin_unit", ["geom"], postgresql_using="gist")

    op.create_table(
        "api_token",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "case",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("reported_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column(
            "leaf_unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("village_code", sa.String(length=32), nullable=True),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scheduled_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("visited_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", api.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("deadline", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("satisfaction", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", api.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome is null or outcome in "
            "('mediated_success', 'mediation_failed', 'referred', 'resolved', 'withdrawn')",
            name="ck_case_outcome",
        ),
        sa.CheckConstraint(
            "status in ('received', 'scheduled', 'handled', 'visited', 'evaluated')",
            name="ck_case_status",
        ),
        sa.CheckConstraint(
            "satisfaction is null or satisfaction between 1 and 5", name="ck_case_satisfaction"
        ),
        sa.ForeignKeyConstraint(
            ["leaf_unit_id"],
            ["admin_unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "external_id", name="uq_case_source_external_id"),
    )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index("ix_case_grid_code", ["grid_code"], unique=False)
        batch_op.create_index(
            "ix_case_leaf_reported", ["leaf_unit_id", "reported_at"], unique=False
        )
        batch_op.create_index("ix_case_reported_at", ["reported_at"], unique=False)
        batch_op.create_index("ix_case_village_code", ["village_code"], unique=False)

    op.create_table(
        "case_close_histogram",
        sa.Column(
            "leaf_unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["leaf_unit_id"], ["admin_unit.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("leaf_unit_id", "day", "days"),
    )
    with op.batch_alter_table("case_close_histogram", schema=None) as batch_op:
        batch_op.create_index("ix_case_close_histogram_day", ["day"], unique=False)
    op.create_table(
        "case_flow_daily",
        sa.Column(
            "leaf_unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("became_overdue", sa.Integer(), nullable=False),
        sa.Column("overdue_closed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["leaf_unit_id"], ["admin_unit.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("leaf_unit_id", "day", "category"),
    )
    with op.batch_alter_table("case_flow_daily", schema=None) as batch_op:
        batch_op.create_index("ix_case_flow_daily_day", ["day"], unique=False)

    op.create_table(
        "case_rollup_daily",
        sa.Column(
            "leaf_unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("closed_on_time", sa.Integer(), nullable=False),
        sa.Column("mediated", sa.Integer(), nullable=False),
        sa.Column("mediation_success", sa.Integer(), nullable=False),
        sa.Column("visited", sa.Integer(), nullable=False),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("satisfaction_sum", sa.Integer(), nullable=False),
        sa.Column("close_days_sum", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["leaf_unit_id"], ["admin_unit.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("leaf_unit_id", "day", "category", "channel"),
    )
    with op.batch_alter_table("case_rollup_daily", schema=None) as batch_op:
        batch_op.create_index("ix_case_rollup_daily_day", ["day"], unique=False)

    op.create_table(
        "unit_ancestry",
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ancestor_code", sa.String(length=32), nullable=False),
        sa.Column("ancestor_level", sa.String(length=32), nullable=False),
        sa.Column("distance", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["admin_unit.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("unit_id", "ancestor_code"),
    )
    with op.batch_alter_table("unit_ancestry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unit_ancestry_ancestor", ["ancestor_level", "ancestor_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unit_ancestry", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_ancestry_ancestor")

    op.drop_table("unit_ancestry")
    with op.batch_alter_table("case_rollup_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_case_rollup_daily_day")

    op.drop_table("case_rollup_daily")
    with op.batch_alter_table("case_flow_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_case_flow_daily_day")

    op.drop_table("case_flow_daily")
    with op.batch_alter_table("case_close_histogram", schema=None) as batch_op:
        batch_op.drop_index("ix_case_close_histogram_day")

    op.drop_table("case_close_histogram")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_village_code")
        batch_op.drop_index("ix_case_reported_at")
        batch_op.drop_index("ix_case_leaf_reported")
        batch_op.drop_index("ix_case_grid_code")

    op.drop_table("case")
    op.drop_table("api_token")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_admin_unit_geom", table_name="admin_unit", postgresql_using="gist")
    with op.batch_alter_table("admin_unit", schema=None) as batch_op:
        batch_op.drop_index("ix_admin_unit_parent_code")
        batch_op.drop_index("ix_admin_unit_level")

    op.drop_table("admin_unit")
    with op.batch_alter_table("grid_worker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grid_worker_grid_code"))

    op.drop_table("grid_worker")
    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_facility_unit_code"))

    op.drop_table("facility")
    op.drop_table("dataset_version")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
    op.drop_table("app_user")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_unit_code"))
        batch_op.drop_index("ix_alert_status")

    op.drop_table("alert")
    op.drop_table("admin_level")
