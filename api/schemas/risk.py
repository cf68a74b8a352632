"""The risk register's request bodies (the report itself is
``api.services.risk_review.RiskReportBody``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.services.risk import FOLLOW_DAYS

Kind = Literal["decision", "project", "large_event", "gathering", "religious"]


class RiskItemIn(BaseModel):
    """登记: an item of the register."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    deciding_unit: str = Field(min_length=1, max_length=32, description="unit code, any level")
    place: dict = Field(description="GeoJSON Point, Polygon or MultiPolygon (WGS84)")
    planned_at: dt.datetime = Field(description="the decision's or the event's date")
    ends_at: dt.datetime | None = Field(default=None, description="an event's last day")
    people_affected: int = Field(ge=0, le=100_000_000)
    department: str = Field(min_length=1, max_length=64, description="责任部门")


class AssignIn(BaseModel):
    """评估: the agency (its code) and optionally when the report is due."""

    model_config = ConfigDict(extra="forbid")
    agency: str = Field(min_length=1, max_length=32)
    due_at: dt.datetime | None = None


class DecisionIn(BaseModel):
    """决策: 实施 implement, 调整后实施 adjust, 暂缓 postpone, 不实施 reject."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["implement", "adjust", "postpone", "reject"]
    decided_at: dt.datetime | None = None
    follow_days: int = Field(default=FOLLOW_DAYS, ge=1, le=730)


class AgencyIn(BaseModel):
    """An assessment agency to register."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["in_house", "third_party"]


class FollowUpIn(BaseModel):
    """跟踪回访: the follow-up review due ``days`` after the decision, done."""

    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=1, le=730)
    note: str | None = Field(default=None, max_length=4000)
    done_at: dt.datetime | None = None
