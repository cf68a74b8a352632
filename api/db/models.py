"""The data model (see ../shared/DESIGN.md). Table and column names are an interface:
analysts point QGIS at these tables directly.

Case workflow 接-约-办-访-评: received, scheduled, handled (办结, the case is closed),
visited (follow-up 回访), evaluated (评价, satisfaction 1-5).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from api.db.types import GeometryType, UTCDateTime

# BIGINT on PostgreSQL, INTEGER on SQLite (so it stays the rowid alias and autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")

OPEN_VALID_TO = None  # a unit version with valid_to NULL is the current one


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class AdminLevel(Base):
    """A level of the hierarchy, as data: depth 0 is the root (city)."""

    __tablename__ = "admin_level"

    depth: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(
        String(32), unique=True
    )  # city, district, town, village, grid
    name_zh: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))


class AdminUnit(Base):
    """One version of an administrative unit (city, town, village, grid, ...).

    A unit's code is stable across versions; a new boundary closes the old version
    (``valid_to``) instead of overwriting it. The current version has ``valid_to`` NULL.
    """

    __tablename__ = "admin_unit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(ForeignKey("admin_level.code"))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    population: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int | None] = mapped_column(Integer)
    area_km2: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[BaseGeometry | None] = mapped_column(GeometryType("MULTIPOLYGON"))
    valid_from: Mapped[dt.date] = mapped_column(Date, default=dt.date(1900, 1, 1))
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    ancestry: Mapped[list[UnitAncestry]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("code", "valid_from", name="uq_admin_unit_code_version"),
        Index("ix_admin_unit_parent_code", "parent_code"),
        Index("ix_admin_unit_level", "level"),
        Index("ix_admin_unit_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )

    def __repr__(self) -> str:
        return f"<AdminUnit {self.level} {self.code} {self.name}>"


class UnitAncestry(Base):
    """Flattened ancestry: one row per (unit version, ancestor), self included (distance 0).

    Any rollup to any level is one join and one GROUP BY on ``ancestor_code`` filtered by
    ``ancestor_level``. Kept in step with ``admin_unit`` by ``api.services.units``.
    """

    __tablename__ = "unit_ancestry"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("admin_unit.id", ondelete="CASCADE"), primary_key=True
    )
    ancestor_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    ancestor_level: Mapped[str] = mapped_column(String(32))
    distance: Mapped[int] = mapped_column(SmallInteger)

    unit: Mapped[AdminUnit] = relationship(back_populates="ancestry")

    __table_args__ = (Index("ix_unit_ancestry_ancestor", "ancestor_level", "ancestor_code"),)


class GridWorker(Base):
    """A grid worker (网格员) assigned to a grid: leader, full-time or part-time."""

    __tablename__ = "grid_worker"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint("role in ('leader', 'full_time', 'part_time')", name="ck_grid_worker_role"),
    )


class Facility(Base):
    """A governance center (综治中心) or linkage station (联动站) of a unit.

    ``status``: required (planned, not started), under_construction, built.
    Build rate = built / all rows of a kind (every row is required).
    """

    __tablename__ = "facility"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(24))
    rating: Mapped[float | None] = mapped_column(Float)
    video_linked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint("kind in ('center', 'linkage_station')", name="ck_facility_kind"),
        CheckConstraint(
            "status in ('required', 'under_construction', 'built')", name="ck_facility_status"
        ),
    )


class Case(Base):
    """A case: dispute, petition, hotline or 110 event, or hazard found on patrol.

    No complainant name or phone number is ever stored.
    """

    __tablename__ = "case"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime] = mapped_column()
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    leaf_unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"))
    village_code: Mapped[str | None] = mapped_column(String(32))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    # the point lies in no leaf but within ZHILI_LOCATE_TOLERANCE_M of this one (a gap or
    # sliver between units): placed in the nearest leaf, and said so
    placed_by_tolerance: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    status: Mapped[str] = mapped_column(String(16), default="received")
    received_at: Mapped[dt.datetime | None] = mapped_column()
    scheduled_at: Mapped[dt.datetime | None] = mapped_column()
    handled_at: Mapped[dt.datetime | None] = mapped_column()
    visited_at: Mapped[dt.datetime | None] = mapped_column()
    evaluated_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(24))
    deadline: Mapped[dt.datetime] = mapped_column()
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()
    # 分级分流 (api.services.desk): who handles the case now — a unit at any level and maybe
    # one of its departments, set by the routing rules at creation, moved by the actions;
    # ``version`` counts changes (a stale one is a 409); ``handler_since`` when the current
    # handler got it, ``accepted_at`` when it accepted it (受理), NULL until it does
    handling_unit_code: Mapped[str | None] = mapped_column(String(32))
    department_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    handler_since: Mapped[dt.datetime | None] = mapped_column()
    accepted_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_case_source_external_id"),
        Index("ix_case_handling_unit_status", "handling_unit_code", "status"),
        Index("ix_case_department_status", "department_id", "status"),
        Index("ix_case_leaf_reported_status", "leaf_unit_id", "reported_at", "status"),
        Index("ix_case_reported_at", "reported_at"),
        Index("ix_case_village_code", "village_code"),
        Index("ix_case_grid_code", "grid_code"),
        CheckConstraint(
            "status in ('received', 'scheduled', 'handled', 'visited', 'evaluated')",
            name="ck_case_status",
        ),
        CheckConstraint(
            "outcome is null or outcome in "
            "('mediated_success', 'mediation_failed', 'referred', 'resolved', 'withdrawn')",
            name="ck_case_outcome",
        ),
        CheckConstraint(
            "satisfaction is null or satisfaction between 1 and 5", name="ck_case_satisfaction"
        ),
    )


class CaseRollupDaily(Base):
    """Cases by the day they were reported (cohort), per leaf unit version, category, channel.

    Measures follow each case as it advances: ``closed`` counts cases of that cohort closed
    so far. Kept current on every ingest, rebuildable from ``case``
    (``api.engine.rollup``). ``evaluated`` counts cases rated (satisfaction given, 评),
    ``satisfied`` those rated 4 or 5; ``closed_on_time`` closed at or before the deadline;
    ``mediated`` with a mediation outcome; ``close_days_sum`` whole seconds to close / 86400.
    """

    __tablename__ = "case_rollup_daily"

    leaf_unit_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # admin_unit.id
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0)
    mediated: Mapped[int] = mapped_column(Integer, default=0)
    mediation_success: Mapped[int] = mapped_column(Integer, default=0)
    visited: Mapped[int] = mapped_column(Integer, default=0)
    evaluated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_sum: Mapped[int] = mapped_column(Integer, default=0)
    close_days_sum: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_case_rollup_daily_day", "day"),)


class CaseFlowDaily(Base):
    """Events on a day per leaf unit version and category, for stock figures at a date:
    open backlog at E = Σ opened − Σ closed up to E; overdue open at E = Σ became_overdue
    − Σ overdue_closed up to E.
    """

    __tablename__ = "case_flow_daily"

    leaf_unit_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # admin_unit.id
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    became_overdue: Mapped[int] = mapped_column(Integer, default=0)
    overdue_closed: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_case_flow_daily_day", "day"),)


class CaseCloseHistogram(Base):
    """Closed cases by reported day and whole days to close (0..365, 365 = a year or more),
    for percentiles (median, 90th) over any date range."""

    __tablename__ = "case_close_histogram"

    leaf_unit_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # admin_unit.id
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # reported day (cohort)
    days: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_case_close_histogram_day", "day"),)


class DatasetVersion(Base):
    """A counter per dataset (``boundaries``, ``cases``, ``grid_network``), bumped on every
    change; caches and ETags key on it."""

    __tablename__ = "dataset_version"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column()


class RollupChange(Base):
    """What one ingest transaction changed in a fact domain's rollup tables, tagged with
    the domain and the version of it that transaction made: the in-memory cube catches up
    from these rows instead of reading the rollup tables again (``api.engine.changelog``).

    ``deltas`` holds the summed deltas (compressed, see the changelog module); NULL marks a
    rebuild of the rollups, across which no cube catches up. ``token`` is random: it tells
    this database's version from the same number in a restored or re-seeded one. ``rows``
    counts the delta rows, for pruning: the newest changes are kept up to a number of rows.
    """

    __tablename__ = "rollup_change"

    domain: Mapped[str] = mapped_column(String(32), primary_key=True, server_default="cases")
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    token: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    deltas: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column()


class User(Base):
    """A person or system with a role and a home unit; every read is limited to its subtree."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(24))
    unit_code: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (
        CheckConstraint(
            "role in ('admin', 'official', 'village_worker', 'department', 'analyst', "
            "'display', 'intake', 'assessor')",
            name="ck_app_user_role",
        ),
    )


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()


class AuditLog(Base):
    """Append-only trail of exports, case changes, logins and token changes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column()
    user_name: Mapped[str | None] = mapped_column(String(64))
    unit_code: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class Alert(Base):
    """An early-warning alert on a unit: caseload anomaly, overdue pile-up, unstaffed grid."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open")
    observed: Mapped[float | None] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    last_seen_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    detail: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("status in ('open', 'closed')", name="ck_alert_status"),
        Index("ix_alert_status", "status"),
    )
