"""Special populations: groups (data), import batches with their history, monthly counts
per village or grid, department and group (never a person); and user permissions beyond a
role (``special_populations``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.db.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

GROUPS = [
    ("community_correction", "社区矫正对象", "Under community correction", "person"),
    (
        "released_prisoner",
        "刑满释放人员（安置帮教）",
        "Released prisoners (resettlement)",
        "person",
    ),
    ("severe_mental_disorder", "严重精神障碍患者", "Severe mental disorder", "person"),
    ("drug_rehabilitation", "社区戒毒/康复人员", "Community drug rehabilitation", "person"),
    ("key_youth", "重点青少年", "Key youth", "person"),
    ("floating", "流动人口", "Registered floating population", "floating"),
    ("rental_housing", "出租房屋", "Rental housing units", "rental"),
    ("help_station", "特殊人群教育帮扶站", "Education and help stations", "help_station"),
]


def upgrade() -> None:
    group = op.create_table(
        "population_group",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.CheckConstraint(
            "kind in ('person', 'floating', 'rental', 'help_station')",
            name="ck_population_group_kind",
        ),
    )
    op.bulk_insert(
        group, [{"code": c, "name_zh": z, "name_en": e, "kind": k} for c, z, e, k in GROUPS]
    )
    op.create_table(
        "population_batch",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("source_name", sa.String(255), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=True),
        sa.Column("replaced_by", sa.BigInteger(), nullable=True),
        sa.Column("replaced_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_population_batch_month", "population_batch", ["month", "department"])
    op.create_table(
        "population_count",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "batch_id",
            sa.BigInteger(),
            sa.ForeignKey("population_batch.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("is_current", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("counted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("leaf_unit_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column(
            "group_code", sa.String(32), sa.ForeignKey("population_group.code"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.Column("under_management", sa.Integer(), nullable=False),
        sa.Column("visited", sa.Integer(), nullable=False),
        sa.Column("lost_contact", sa.Integer(), nullable=False),
        sa.Column("newly_registered", sa.Integer(), nullable=False),
        sa.Column("left", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "registered >= 0 AND under_management >= 0 AND visited >= 0 AND lost_contact >= 0 "
            'AND newly_registered >= 0 AND "left" >= 0',
            name="ck_population_count_non_negative",
        ),
    )
    op.create_index("ix_population_count_batch", "population_count", ["batch_id"])
    op.create_index(
        "ix_population_count_month", "population_count", ["month", "department", "is_current"]
    )
    op.create_table(
        "user_permission",
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("permission", sa.String(32), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("user_permission")
    op.drop_index("ix_population_count_month", "population_count")
    op.drop_index("ix_population_count_batch", "population_count")
    op.drop_table("population_count")
    op.drop_index("ix_population_batch_month", "population_batch")
    op.drop_table("population_batch")
    op.drop_table("population_group")
