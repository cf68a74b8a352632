"""The stability-risk register (社会稳定风险评估): agencies and their assessors, review rules
(as data, the four default rules inserted here), items with their place and the units it
touches, assessments, reports, follow-up links and reviews; the role ``assessor``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = api.db.types.UTCDateTime(timezone=True)
ROLES_BEFORE = "'admin', 'official', 'village_worker', 'department', 'analyst', 'display', 'intake'"
SECTIONS = [
    "risk_points",
    "consultation",
    "legality",
    "reasonableness",
    "feasibility",
    "controllability",
    "risk_level",
    "measures",
]
DEFAULT_RULES = [
    {
        "code": "sections",
        "check": "sections_present",
        "name_zh": "报告要素齐全",
        "name_en": "Every required section is present",
        "params": {"sections": SECTIONS},
        "active": True,
        "position": 1,
    },
    {
        "code": "consultation",
        "check": "consultation_fits_affected",
        "name_zh": "征求意见人数与影响人数相当",
        "name_en": "The number consulted fits the people affected",
        "params": {"share": 0.01, "minimum": 30, "maximum": 400},
        "active": True,
        "position": 2,
    },
    {
        "code": "high_risk_measures",
        "check": "measures_with_owners",
        "name_zh": "高风险须有落实到人到期的化解措施",
        "name_en": "A high risk has measures with owners and dates",
        "params": {"levels": ["high"]},
        "active": True,
        "position": 3,
    },
    {
        "code": "lead_time",
        "check": "lead_time",
        "name_zh": "计划日期留足评估时间",
        "name_en": "The planned date leaves time for the assessment",
        "params": {"min_days": 10},
        "active": True,
        "position": 4,
    },
]


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_constraint("ck_app_user_role", type_="check")
        batch.create_check_constraint("ck_app_user_role", f"role in ({ROLES_BEFORE}, 'assessor')")
    op.create_table(
        "risk_agency",
        sa.Column("id", BigId, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.CheckConstraint("kind in ('in_house', 'third_party')", name="ck_risk_agency_kind"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_risk_agency_unit_code", "risk_agency", ["unit_code"], unique=False)
    rules = op.create_table(
        "risk_review_rule",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.bulk_insert(rules, DEFAULT_RULES)
    op.create_table(
        "risk_agency_member",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("agency_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["risk_agency.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index(
        "ix_risk_agency_member_agency_id", "risk_agency_member", ["agency_id"], unique=False
    )
    op.create_table(
        "risk_item",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("deciding_unit_id", BigId, nullable=False),
        sa.Column("deciding_unit_code", sa.String(length=32), nullable=False),
        sa.Column("place", api.db.types.GeometryType("GEOMETRY"), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("planned_at", When, nullable=False),
        sa.Column("people_affected", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=True),
        sa.Column("agency_id", BigId, nullable=True),
        sa.Column("assessment_due_at", When, nullable=True),
        sa.Column("assessed_at", When, nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_at", When, nullable=True),
        sa.Column("follow_until", When, nullable=True),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=True),
        sa.Column("registered_at", When, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "decision is null or decision in ('implement', 'adjust', 'postpone', 'reject')",
            name="ck_risk_item_decision",
        ),
        sa.CheckConstraint(
            "kind in ('decision', 'project', 'large_event', 'gathering', 'religious')",
            name="ck_risk_item_kind",
        ),
        sa.CheckConstraint(
            "risk_level is null or risk_level in ('high', 'medium', 'low')",
            name="ck_risk_item_level",
        ),
        sa.CheckConstraint(
            "status in ('registered', 'assessing', 'assessed', 'decided')",
            name="ck_risk_item_status",
        ),
        sa.CheckConstraint("people_affected >= 0", name="ck_risk_item_people"),
        sa.ForeignKeyConstraint(["agency_id"], ["risk_agency.id"]),
        sa.ForeignKeyConstraint(["deciding_unit_id"], ["admin_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_risk_item_agency_id", "risk_item", ["agency_id"], unique=False)
    op.create_index("ix_risk_item_deciding_unit", "risk_item", ["deciding_unit_id"], unique=False)
    op.create_index("ix_risk_item_planned_at", "risk_item", ["planned_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_risk_item_place", "risk_item", ["place"], postgresql_using="gist")
    op.create_table(
        "risk_assessment",
        sa.Column("id", BigId, nullable=False),
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("agency_id", BigId, nullable=False),
        sa.Column("assigned_at", When, nullable=False),
        sa.Column("due_at", When, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("passed_at", When, nullable=True),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status in ('open', 'passed', 'withdrawn')", name="ck_risk_asm_status"),
        sa.ForeignKeyConstraint(["agency_id"], ["risk_agency.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["risk_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_risk_assessment_agency", "risk_assessment", ["agency_id"], unique=False)
    op.create_index("ix_risk_assessment_item", "risk_assessment", ["item_id"], unique=False)
    op.create_table(
        "risk_follow_up",
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("done_at", When, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["risk_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "days"),
    )
    op.create_table(
        "risk_item_area",
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["risk_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "unit_code"),
    )
    op.create_index("ix_risk_item_area_unit", "risk_item_area", ["unit_code"], unique=False)
    op.create_table(
        "risk_link",
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["risk_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "kind", "ref_id"),
    )
    op.create_table(
        "risk_report",
        sa.Column("id", BigId, nullable=False),
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("assessment_id", BigId, nullable=False),
        sa.Column("agency_id", BigId, nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=True),
        sa.Column("submitted_at", When, nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status in ('draft', 'passed')", name="ck_risk_report_status"),
        sa.ForeignKeyConstraint(["agency_id"], ["risk_agency.id"]),
        sa.ForeignKeyConstraint(["assessment_id"], ["risk_assessment.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["risk_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "number", name="uq_risk_report_number"),
    )
    op.create_index("ix_risk_report_agency", "risk_report", ["agency_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_risk_report_agency", table_name="risk_report")
    op.drop_table("risk_report")
    op.drop_table("risk_link")
    op.drop_index("ix_risk_item_area_unit", table_name="risk_item_area")
    op.drop_table("risk_item_area")
    op.drop_table("risk_follow_up")
    op.drop_index("ix_risk_assessment_item", table_name="risk_assessment")
    op.drop_index("ix_risk_assessment_agency", table_name="risk_assessment")
    op.drop_table("risk_assessment")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_risk_item_place", table_name="risk_item", postgresql_using="gist")
    op.drop_index("ix_risk_item_planned_at", table_name="risk_item")
    op.drop_index("ix_risk_item_deciding_unit", table_name="risk_item")
    op.drop_index("ix_risk_item_agency_id", table_name="risk_item")
    op.drop_table("risk_item")
    op.drop_index("ix_risk_agency_member_agency_id", table_name="risk_agency_member")
    op.drop_table("risk_agency_member")
    op.drop_table("risk_review_rule")
    op.drop_index("ix_risk_agency_unit_code", table_name="risk_agency")
    op.drop_table("risk_agency")
    op.execute("DELETE FROM app_user WHERE role = 'assessor'")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_constraint("ck_app_user_role", type_="check")
        batch.create_check_constraint("ck_app_user_role", f"role in ({ROLES_BEFORE})")
