"""The desk's rollups: ``desk_rollup_daily`` (leaf × local day × action × flow node before
→ after), kept by every action like the cases' and the events' tables, and the flow nodes
on each timeline entry (``case_action.from_node``, ``to_node``: a level, or a kind of
department at a level). Existing entries get their nodes, and the table is filled from
them. See docs/desk.md.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LEVELS = ("grid", "village", "town", "district", "city")
COUNTS = (
    "desk_actions",
    "desk_closes",
    "desk_closes_local",
    "desk_escalations",
    "desk_dispatches",
    "desk_returns",
)


def _node(side: str) -> str:
    kind = f"(SELECT d.kind FROM department d WHERE d.id = case_action.{side}_department_id)"
    level = f"COALESCE(case_action.{side}_level, '')"
    return (
        f"CASE WHEN {kind} IS NULL THEN 'level:' || {level} "
        f"ELSE 'dept:' || {level} || ':' || {kind} END"
    )


def upgrade() -> None:
    with op.batch_alter_table("case_action") as batch:
        batch.add_column(sa.Column("from_node", sa.String(48), server_default="", nullable=False))
        batch.add_column(sa.Column("to_node", sa.String(48), server_default="", nullable=False))
    op.execute(f"UPDATE case_action SET from_node = {_node('from')}, to_node = {_node('to')}")
    op.create_table(
        "desk_rollup_daily",
        sa.Column("leaf_unit_id", BIG_ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_node", sa.String(48), nullable=False),
        sa.Column("to_node", sa.String(48), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("desk_dispatch_wait_seconds", sa.BigInteger(), nullable=False),
        *(
            column
            for level in LEVELS
            for column in (
                sa.Column(f"desk_turns_{level}", sa.Integer(), nullable=False),
                sa.Column(f"desk_held_seconds_{level}", sa.BigInteger(), nullable=False),
            )
        ),
        sa.PrimaryKeyConstraint("leaf_unit_id", "day", "action", "from_node", "to_node"),
    )
    op.create_index("ix_desk_rollup_daily_day", "desk_rollup_daily", ["day"])
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM case_action LIMIT 1")).first() is not None:
        from sqlalchemy.orm import Session

        from api.engine import DESK, rebuild

        rebuild(Session(bind=bind), DESK)  # the same rows every action keeps


def downgrade() -> None:
    op.drop_table("desk_rollup_daily")
    with op.batch_alter_table("case_action") as batch:
        batch.drop_column("to_node")
        batch.drop_column("from_node")
