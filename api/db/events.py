"""Dispatch events (警情/事件) and the patrol forces that answer them: the models, and the
vocabularies their check constraints hold (see docs/events.md).

Suzhou's dynamic patrol targets: 3 minutes to set off (响应出击), 5 to be on the scene (现场
处警), 15 for support from the area (区域支援), 30 for a city-wide cordon (全市合围). Four lines
of people answer: police on the street, unit security guards, grid patrols, volunteers.

Each event is counted on the local day it was received, in the leaf unit its point falls
in; its rollups (``event_rollup_daily`` and one histogram per interval) are kept by the
engine from the ``events`` fact domain (``api.engine.domains.events``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, BigId

# code → (zh, en); the report's split of 2.318 M dispatches: crime 5.2 %, disputes 12.3 %,
# traffic 26.2 %, help 51.2 %, the rest other
EVENT_TYPES = {
    "crime": ("违法犯罪", "Crime"),
    "dispute": ("纠纷", "Disputes"),
    "traffic": ("交通", "Traffic"),
    "help": ("求助", "Requests for help"),
    "other": ("其他", "Other"),
}
# finer categories of each type (free text is refused: a category names its type)
EVENT_CATEGORIES = {
    "crime": ("theft", "fraud", "assault", "robbery", "other_crime"),
    "dispute": ("neighbour", "family", "labour", "commercial", "other_dispute"),
    "traffic": ("collision", "congestion", "illegal_parking", "other_traffic"),
    "help": ("medical", "lost_person", "locked_out", "elderly", "other_help"),
    "other": ("noise", "animal", "hazard", "other"),
}
CATEGORY_TYPE = {c: t for t, cs in EVENT_CATEGORIES.items() for c in cs}
FORCE_KINDS = {
    "police": ("巡逻警力", "Police on patrol"),
    "unit_security": ("单位保安", "Unit security"),
    "grid_patrol": ("网格巡防", "Grid patrol"),
    "volunteer": ("志愿者", "Volunteers"),
}
SHIFTS = {"day": ("白天", "Day (07-19)"), "night": ("夜间", "Night (19-07)")}
DAY_STARTS, NIGHT_STARTS = 7, 19  # local hours
OUTCOMES = ("handled", "referred", "became_case", "false_alarm", "cancelled")
# the targets, in seconds from receipt
SET_OFF_S, ON_SCENE_S, SUPPORT_S, CORDON_S = 180, 300, 900, 1800


def _in(column: str, codes) -> str:
    return f"{column} in ({', '.join(repr(c) for c in codes)})"


class PatrolBase(Base):
    """A patrol base (巡防基地/警务站): a facility with a point, where forces stand by."""

    __tablename__ = "patrol_base"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    force_kind: Mapped[str] = mapped_column(String(16))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    unit_code: Mapped[str | None] = mapped_column(String(32), index=True)  # leaf it lies in

    __table_args__ = (CheckConstraint(_in("force_kind", FORCE_KINDS), name="ck_patrol_base_kind"),)


class PatrolUnit(Base):
    """A patrol unit (巡组): a car, a foot patrol, a guard team, of one force kind."""

    __tablename__ = "patrol_unit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    force_kind: Mapped[str] = mapped_column(String(16))
    base_code: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (CheckConstraint(_in("force_kind", FORCE_KINDS), name="ck_patrol_unit_kind"),)


class DispatchEvent(Base):
    """A dispatch event: received, set off, on scene, support arrived (when requested),
    cordon closed (when ordered), closed; the force that answered; the outcome; the case
    it became, if any. No caller's name or phone is stored."""

    __tablename__ = "dispatch_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(SmallInteger, default=2)  # 1 urgent .. 3 routine
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    leaf_unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"))
    village_code: Mapped[str | None] = mapped_column(String(32))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    placed_by_tolerance: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    shift: Mapped[str] = mapped_column(String(8))  # day | night, of the local receipt hour
    received_at: Mapped[dt.datetime] = mapped_column()
    set_off_at: Mapped[dt.datetime | None] = mapped_column()
    on_scene_at: Mapped[dt.datetime | None] = mapped_column()
    support_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    support_at: Mapped[dt.datetime | None] = mapped_column()
    cordon_ordered: Mapped[bool] = mapped_column(Boolean, default=False)
    cordon_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    force_kind: Mapped[str] = mapped_column(String(16))
    patrol_unit_code: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(BigInteger)  # case.id it became, if any
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_dispatch_event_source_external_id"),
        Index("ix_dispatch_event_leaf_received", "leaf_unit_id", "received_at"),
        Index("ix_dispatch_event_received_at", "received_at"),
        CheckConstraint(_in("type", EVENT_TYPES), name="ck_dispatch_event_type"),
        CheckConstraint(_in("force_kind", FORCE_KINDS), name="ck_dispatch_event_force"),
        CheckConstraint(_in("shift", SHIFTS), name="ck_dispatch_event_shift"),
        CheckConstraint(
            "outcome is null or " + _in("outcome", OUTCOMES), name="ck_dispatch_event_outcome"
        ),
    )


class EventRollupDaily(Base):
    """Events by the local day they were received (a cohort), per leaf unit version, type,
    force kind and shift; kept by the engine from the ``events`` domain's declaration."""

    __tablename__ = "event_rollup_daily"

    leaf_unit_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    force_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    shift: Mapped[str] = mapped_column(String(8), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    set_off_timed: Mapped[int] = mapped_column(Integer, default=0)
    set_off_3min: Mapped[int] = mapped_column(Integer, default=0)
    on_scene_timed: Mapped[int] = mapped_column(Integer, default=0)
    on_scene_5min: Mapped[int] = mapped_column(Integer, default=0)
    support_needed: Mapped[int] = mapped_column(Integer, default=0)
    support_timed: Mapped[int] = mapped_column(Integer, default=0)
    support_15min: Mapped[int] = mapped_column(Integer, default=0)
    cordon_needed: Mapped[int] = mapped_column(Integer, default=0)
    cordon_timed: Mapped[int] = mapped_column(Integer, default=0)
    cordon_30min: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_event_rollup_daily_day", "day"),)


def _histogram(table: str, what: str) -> type[Base]:
    """A histogram table of whole minutes from receipt to ``what`` per received day (the
    engine names the bucket column ``days``; here it holds minutes)."""
    attrs = {
        "__tablename__": table,
        "__doc__": f"Events by received day and whole minutes from receipt to {what} "
        "(0..120, 120 = two hours or more), for percentiles over any date range.",
        "leaf_unit_id": mapped_column(BigId, primary_key=True),
        "day": mapped_column(Date, primary_key=True),
        "days": mapped_column(SmallInteger, primary_key=True),
        "n": mapped_column(Integer, default=0, nullable=False),
        "__table_args__": (Index(f"ix_{table}_day", "day"),),
    }
    return type(table.title().replace("_", ""), (Base,), attrs)


EventSetOffHistogram = _histogram("event_set_off_histogram", "setting off")
EventSceneHistogram = _histogram("event_scene_histogram", "arriving on the scene")
EventSupportHistogram = _histogram("event_support_histogram", "support arriving")
EventCordonHistogram = _histogram("event_cordon_histogram", "the cordon closing")
HISTOGRAMS = (
    EventSetOffHistogram,
    EventSceneHistogram,
    EventSupportHistogram,
    EventCordonHistogram,
)
