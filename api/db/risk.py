"""The stability-risk register (社会稳定风险评估, 稳评): items, agencies, assessments,
reports, review rules (as data), follow-up links and reviews.

登记 → 评估 → 报告提交 → 自动审查 → 决策 → 跟踪: an item is registered, assigned to an
agency (``risk_assessment``), the agency submits reports (``risk_report``, every one kept:
a failing report stays a draft), the rules in ``risk_review_rule`` review each, a decision
is taken, and cases in the item's area after the decision are linked (``risk_link``) while
follow-up reviews fall due (``risk_follow_up``).

The item row carries the state the figures read (status, risk level, when it was assessed
and decided, incidents linked): the register's fact domain is one GROUP BY over it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, BigId
from api.db.types import GeometryType

# 重大决策, 重大项目, 大型活动, 群众自发性节庆聚集, 宗教活动
RISK_KINDS = ("decision", "project", "large_event", "gathering", "religious")
RISK_LEVELS = ("high", "medium", "low")
# 登记, 评估中, 已评估 (report passed), 已决策
RISK_STATUSES = ("registered", "assessing", "assessed", "decided")
# 实施, 调整后实施, 暂缓, 不实施
DECISIONS = ("implement", "adjust", "postpone", "reject")
AGENCY_KINDS = ("in_house", "third_party")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class RiskAgency(Base):
    """An assessment agency (评估机构), in-house or third-party, registered by a unit."""

    __tablename__ = "risk_agency"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(32), index=True)  # who registered it
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (CheckConstraint(_in("kind", AGENCY_KINDS), name="ck_risk_agency_kind"),)


class RiskAgencyMember(Base):
    """A user of role ``assessor`` working for an agency: it sees that agency's items only."""

    __tablename__ = "risk_agency_member"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[int] = mapped_column(ForeignKey("risk_agency.id"), index=True)


class RiskReviewRule(Base):
    """A rule of the automatic review (自动审查), as data: ``check`` names one of the
    checks the code knows, ``params`` its thresholds; inactive rules are skipped."""

    __tablename__ = "risk_review_rule"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    check: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)


class RiskItem(Base):
    """One item of the register: a major decision, project, large event, festive gathering
    or religious activity, decided by a unit at any level, at a place (point or polygon)."""

    __tablename__ = "risk_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    deciding_unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"))
    deciding_unit_code: Mapped[str] = mapped_column(String(32))
    place: Mapped[BaseGeometry] = mapped_column(GeometryType("GEOMETRY"))
    lon: Mapped[float] = mapped_column(Float)  # a point on the place, for lists and maps
    lat: Mapped[float] = mapped_column(Float)
    planned_at: Mapped[dt.datetime] = mapped_column()  # the decision's or the event's date
    people_affected: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(64))  # responsible department
    status: Mapped[str] = mapped_column(String(16), default="registered")
    risk_level: Mapped[str | None] = mapped_column(String(8))  # from the passed report
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("risk_agency.id"), index=True)
    assessment_due_at: Mapped[dt.datetime | None] = mapped_column()
    assessed_at: Mapped[dt.datetime | None] = mapped_column()  # a report passed review
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    follow_until: Mapped[dt.datetime | None] = mapped_column()  # end of the follow-up period
    incidents: Mapped[int] = mapped_column(Integer, default=0)  # risk_link rows
    registered_by: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(_in("kind", RISK_KINDS), name="ck_risk_item_kind"),
        CheckConstraint(_in("status", RISK_STATUSES), name="ck_risk_item_status"),
        CheckConstraint(
            f"risk_level is null or {_in('risk_level', RISK_LEVELS)}", name="ck_risk_item_level"
        ),
        CheckConstraint(
            f"decision is null or {_in('decision', DECISIONS)}", name="ck_risk_item_decision"
        ),
        CheckConstraint("people_affected >= 0", name="ck_risk_item_people"),
        Index("ix_risk_item_deciding_unit", "deciding_unit_id"),
        Index("ix_risk_item_planned_at", "planned_at"),
        Index("ix_risk_item_place", "place", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class RiskItemArea(Base):
    """A current unit (any level) the item's place intersects: officials of that unit's
    subtree read the item even when it was decided above them."""

    __tablename__ = "risk_item_area"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("risk_item.id", ondelete="CASCADE"), primary_key=True
    )
    unit_code: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (Index("ix_risk_item_area_unit", "unit_code"),)


class RiskAssessment(Base):
    """An assignment of an item to an agency (评估); a reassignment closes the previous."""

    __tablename__ = "risk_assessment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("risk_item.id", ondelete="CASCADE"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("risk_agency.id"))
    assigned_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default="open")  # open|passed|withdrawn
    passed_at: Mapped[dt.datetime | None] = mapped_column()
    assigned_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("status", ("open", "passed", "withdrawn")), name="ck_risk_asm_status"),
        Index("ix_risk_assessment_item", "item_id"),
        Index("ix_risk_assessment_agency", "agency_id"),
    )


class RiskReport(Base):
    """A report an agency submitted (报告提交), every submission kept: ``draft`` when the
    review failed (``failures``: each rule with its reason), ``passed`` otherwise."""

    __tablename__ = "risk_report"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("risk_item.id", ondelete="CASCADE"))
    assessment_id: Mapped[int] = mapped_column(ForeignKey("risk_assessment.id"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("risk_agency.id"))
    number: Mapped[int] = mapped_column(SmallInteger)  # 1, 2, ... per item
    status: Mapped[str] = mapped_column(String(8))
    body: Mapped[dict[str, Any]] = mapped_column()
    failures: Mapped[list[Any]] = mapped_column(JSON)
    risk_level: Mapped[str | None] = mapped_column(String(8))
    submitted_at: Mapped[dt.datetime] = mapped_column()
    submitted_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("status", ("draft", "passed")), name="ck_risk_report_status"),
        UniqueConstraint("item_id", "number", name="uq_risk_report_number"),
        Index("ix_risk_report_agency", "agency_id"),
    )


class RiskLink(Base):
    """A case (or a dispatch event) in the item's area during its follow-up period: the
    risk turned into an incident (风险转化为案事件)."""

    __tablename__ = "risk_link"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("risk_item.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # case | event
    ref_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column()


class RiskFollowUp(Base):
    """A follow-up review of a decided item, due 30 and 90 days after the decision."""

    __tablename__ = "risk_follow_up"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("risk_item.id", ondelete="CASCADE"), primary_key=True
    )
    days: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    done_at: Mapped[dt.datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
