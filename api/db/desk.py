"""The case desk's tables (分级分流, see ``api.services.desk``): departments attached to
units, routing rules as data, department members, and each case's audited timeline.

- ``department`` (职能部门): 派出所, 司法所, 信访, 城管, ... — one row per kind at a unit.
- ``routing_rule``: category × severity × where → first handling level and department kind.
  A case is routed once, at creation; a rule changed later applies to new cases only.
- ``department_member``: which department a user of role ``department`` works for.
- ``case_action``: the timeline — who did what to which case, when, from which handler to
  which, why; ``key`` (the client's) is unique, so an action sent twice is done once. It is
  also the fact table of the ``desk`` fact domain (``api.engine.domains.desk``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, BigId


class Department(Base):
    """A functional department (职能部门) of a unit: ``kind`` from
    ``api.services.routing.DEPARTMENT_KINDS`` (police, mediation, petition, ...)."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("unit_code", "kind", name="uq_department_unit_kind"),)


class RoutingRule(Base):
    """One routing rule: cases of ``category`` (NULL: any) and ``severity`` (normal,
    serious; NULL: any) within ``area_code``'s subtree (NULL: anywhere) start at the
    ancestor of their leaf at ``level`` and, with ``department_kind``, at that unit's
    department of that kind. The most specific active rule wins (area, category, severity,
    then ``priority``)."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[str | None] = mapped_column(String(8))
    area_code: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(32))
    department_kind: Mapped[str | None] = mapped_column(String(24))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column()


class DepartmentMember(Base):
    """The department a user of role ``department`` works for (one each)."""

    __tablename__ = "department_member"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))


class CaseAction(Base):
    """One entry of a case's timeline: 受理 accept, 下派 dispatch, 上报 escalate, 转办
    transfer, 退回 return, the steps 约 schedule, 办 handle, 访 visit, 评 evaluate, and notes.

    ``from_*``/``to_*``: the handler (unit, its level, department) before and after.
    ``held_seconds``: how long the handler before the action had held the case (for the
    actions that end a handler's turn: 下派 上报 转办 退回 办); ``wait_seconds``: for 下派,
    the time since 受理 (or since the case reached the dispatcher when it was not
    accepted). ``leaf_unit_id`` and ``at`` place the fact for the figures."""

    __tablename__ = "case_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    leaf_unit_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))
    user_name: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(24))
    from_unit: Mapped[str | None] = mapped_column(String(32))
    from_level: Mapped[str | None] = mapped_column(String(32))
    from_department_id: Mapped[int | None] = mapped_column(BigInteger)
    to_unit: Mapped[str | None] = mapped_column(String(32))
    to_level: Mapped[str | None] = mapped_column(String(32))
    to_department_id: Mapped[int | None] = mapped_column(BigInteger)
    # the handler before and after as a flow node (``api.domain.desk_node``): the level, or
    # the kind of department at a level; kept for the rollups' keys (no join to department)
    from_node: Mapped[str] = mapped_column(String(48), server_default="")
    to_node: Mapped[str] = mapped_column(String(48), server_default="")
    reason: Mapped[str | None] = mapped_column(Text)
    held_seconds: Mapped[float | None] = mapped_column(Float)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("key", name="uq_case_action_key"),
        Index("ix_case_action_case", "case_id", "id"),
        Index("ix_case_action_at", "at"),
    )


class DeskRollupDaily(Base):
    """The desk's actions by the local day they were taken, per leaf unit version, action
    and flow (handler node before → after); kept by the engine from the ``desk`` domain's
    declaration (``api.engine.domains.desk``) on every action. The Sankey sums it."""

    __tablename__ = "desk_rollup_daily"

    leaf_unit_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    from_node: Mapped[str] = mapped_column(String(48), primary_key=True)
    to_node: Mapped[str] = mapped_column(String(48), primary_key=True)
    desk_actions: Mapped[int] = mapped_column(Integer, default=0)
    desk_closes: Mapped[int] = mapped_column(Integer, default=0)
    desk_closes_local: Mapped[int] = mapped_column(Integer, default=0)
    desk_escalations: Mapped[int] = mapped_column(Integer, default=0)
    desk_dispatches: Mapped[int] = mapped_column(Integer, default=0)
    desk_returns: Mapped[int] = mapped_column(Integer, default=0)
    desk_dispatch_wait_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    desk_turns_grid: Mapped[int] = mapped_column(Integer, default=0)
    desk_held_seconds_grid: Mapped[int] = mapped_column(BigInteger, default=0)
    desk_turns_village: Mapped[int] = mapped_column(Integer, default=0)
    desk_held_seconds_village: Mapped[int] = mapped_column(BigInteger, default=0)
    desk_turns_town: Mapped[int] = mapped_column(Integer, default=0)
    desk_held_seconds_town: Mapped[int] = mapped_column(BigInteger, default=0)
    desk_turns_district: Mapped[int] = mapped_column(Integer, default=0)
    desk_held_seconds_district: Mapped[int] = mapped_column(BigInteger, default=0)
    desk_turns_city: Mapped[int] = mapped_column(Integer, default=0)
    desk_held_seconds_city: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_desk_rollup_daily_day", "day"),)
