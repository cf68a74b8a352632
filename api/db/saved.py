"""Saved views and composed walls (issue 24): what a user keeps of the maps, and what an
admin puts on a command-center wall. New tables beside ``api.db.models`` (same ``Base``).

A saved view holds a map's state (unit, level, metric, period, comparison, classes,
layers), owned by a user, private or shared within a jurisdiction (``home_code``: the
owner's home unit); its ``slug`` is the short link ``/v/<slug>``. A wall is a named
sequence of views with durations, KPI cards, thresholds and an alerts ticker, at a unit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, BigId


class SavedView(Base):
    """A named map view: what it shows (``spec``: unit, level, metric, period or start/end,
    compare, classes, k, breaks, layers), whose it is and who else may open it."""

    __tablename__ = "saved_view"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("app_user.id", ondelete="CASCADE"))
    home_code: Mapped[str] = mapped_column(String(32))  # the jurisdiction it is shared in
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_code: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (
        Index("ix_saved_view_owner", "owner_id"),
        Index("ix_saved_view_home", "home_code"),
    )


class Wall(Base):
    """A composed command-center wall, addressed by ``name`` (``/dashboard/wall/<name>``):
    its unit, and ``spec`` (views with seconds, KPI metric ids, thresholds, ticker,
    refresh seconds). ``version`` grows on every change: a running wall sees it at its
    next refresh."""

    __tablename__ = "wall"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    unit_code: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column()


class ReportSchedule(Base):
    """A unit whose monthly report (月报) is made on a schedule (``zhili report
    run-scheduled``, or the app's monthly run): picked by an admin over it."""

    __tablename__ = "report_schedule"

    unit_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column()
