"""Dispatch events (警情/事件), patrol bases and units, and the events' rollup tables: a
daily table by type, force kind and shift, and one histogram of whole minutes per step
(set off, on scene, support, cordon). See docs/events.md.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FORCES = "force_kind in ('police', 'unit_security', 'grid_patrol', 'volunteer')"
HISTOGRAMS = (
    "event_set_off_histogram",
    "event_scene_histogram",
    "event_support_histogram",
    "event_cordon_histogram",
)
COUNTS = (
    "events",
    "set_off_timed",
    "set_off_3min",
    "on_scene_timed",
    "on_scene_5min",
    "support_needed",
    "support_timed",
    "support_15min",
    "cordon_needed",
    "cordon_timed",
    "cordon_30min",
)


def upgrade() -> None:
    op.create_table(
        "patrol_base",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("force_kind", sa.String(16), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("unit_code", sa.String(32), nullable=True),
        sa.CheckConstraint(FORCES, name="ck_patrol_base_kind"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_patrol_base_unit_code", "patrol_base", ["unit_code"])
    op.create_table(
        "patrol_unit",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("force_kind", sa.String(16), nullable=False),
        sa.Column("base_code", sa.String(32), nullable=True),
        sa.CheckConstraint(FORCES, name="ck_patrol_unit_kind"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "dispatch_event",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("leaf_unit_id", BIG_ID, nullable=False),
        sa.Column("village_code", sa.String(32), nullable=True),
        sa.Column("grid_code", sa.String(32), nullable=True),
        sa.Column("placed_by_tolerance", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("shift", sa.String(8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_scene_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("support_requested", sa.Boolean(), nullable=False),
        sa.Column("support_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cordon_ordered", sa.Boolean(), nullable=False),
        sa.Column("cordon_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("force_kind", sa.String(16), nullable=False),
        sa.Column("patrol_unit_code", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type in ('crime', 'dispute', 'traffic', 'help', 'other')",
            name="ck_dispatch_event_type",
        ),
        sa.CheckConstraint(FORCES, name="ck_dispatch_event_force"),
        sa.CheckConstraint("shift in ('day', 'night')", name="ck_dispatch_event_shift"),
        sa.CheckConstraint(
            "outcome is null or outcome in "
            "('handled', 'referred', 'became_case', 'false_alarm', 'cancelled')",
            name="ck_dispatch_event_outcome",
        ),
        sa.ForeignKeyConstraint(["leaf_unit_id"], ["admin_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "external_id", name="uq_dispatch_event_source_external_id"),
    )
    op.create_index(
        "ix_dispatch_event_leaf_received", "dispatch_event", ["leaf_unit_id", "received_at"]
    )
    op.create_index("ix_dispatch_event_received_at", "dispatch_event", ["received_at"])
    op.create_table(
        "event_rollup_daily",
        sa.Column("leaf_unit_id", BIG_ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("force_kind", sa.String(16), nullable=False),
        sa.Column("shift", sa.String(8), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("leaf_unit_id", "day", "type", "force_kind", "shift"),
    )
    op.create_index("ix_event_rollup_daily_day", "event_rollup_daily", ["day"])
    for table in HISTOGRAMS:
        op.create_table(
            table,
            sa.Column("leaf_unit_id", BIG_ID, nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("days", sa.SmallInteger(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("leaf_unit_id", "day", "days"),
        )
        op.create_index(f"ix_{table}_day", table, ["day"])


def downgrade() -> None:
    for table in (*HISTOGRAMS, "event_rollup_daily", "dispatch_event", "patrol_unit"):
        op.drop_table(table)
    op.drop_table("patrol_base")
