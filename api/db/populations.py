"""Special populations (特殊人群): monthly COUNTS per village or grid, department and group,
never a person. Groups are data (table ``population_group``); each import is one month of
one department (a ``population_batch``); a re-import replaces that month and keeps the
replaced batch and its rows (``is_current`` false) as history.

A user may read these figures only with the permission ``special_populations`` (table
``user_permission``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, BigId

# What a group's rows count: persons of a special group (登记/在管/走访/失联/新增/减少),
# the floating population, rental housing units, or the help stations of a village.
GROUP_KINDS = ("person", "floating", "rental", "help_station")
SPECIAL_POPULATIONS = "special_populations"  # the permission that shows these figures


class PopulationGroup(Base):
    """A group counted by the departments (社区矫正对象, 刑满释放人员, ...): data, not code."""

    __tablename__ = "population_group"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(
            "kind in ('person', 'floating', 'rental', 'help_station')",
            name="ck_population_group_kind",
        ),
    )


class PopulationBatch(Base):
    """One import: one month of one department. ``replaced_by`` names the import that
    replaced it (its rows stay, no longer current)."""

    __tablename__ = "population_batch"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date)  # the first day of the month
    department: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[dt.datetime] = mapped_column()
    imported_by: Mapped[str | None] = mapped_column(String(64))
    replaced_by: Mapped[int | None] = mapped_column(BigInteger)
    replaced_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_population_batch_month", "month", "department"),)


class PopulationCount(Base):
    """Counts of one group in one leaf unit (a village or a grid) for one month, as one
    department delivered them. Only rows with ``is_current`` count."""

    __tablename__ = "population_count"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("population_batch.id", ondelete="CASCADE")
    )
    is_current: Mapped[bool] = mapped_column(Boolean, server_default=true())
    month: Mapped[dt.date] = mapped_column(Date)
    # noon local time of the month's first day: the figure engine dates the month by it
    counted_at: Mapped[dt.datetime] = mapped_column()
    department: Mapped[str] = mapped_column(String(64))
    leaf_unit_id: Mapped[int] = mapped_column(BigInteger)  # admin_unit.id (village or grid)
    unit_code: Mapped[str] = mapped_column(String(32))
    group_code: Mapped[str] = mapped_column(ForeignKey("population_group.code"))
    kind: Mapped[str] = mapped_column(String(16))  # the group's kind, kept with the row
    registered: Mapped[int] = mapped_column(Integer, default=0)
    under_management: Mapped[int] = mapped_column(Integer, default=0)
    visited: Mapped[int] = mapped_column(Integer, default=0)
    lost_contact: Mapped[int] = mapped_column(Integer, default=0)
    newly_registered: Mapped[int] = mapped_column(Integer, default=0)
    left: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_population_count_batch", "batch_id"),
        Index("ix_population_count_month", "month", "department", "is_current"),
        CheckConstraint(
            "registered >= 0 AND under_management >= 0 AND visited >= 0 AND lost_contact >= 0 "
            'AND newly_registered >= 0 AND "left" >= 0',
            name="ck_population_count_non_negative",
        ),
    )


class UserPermission(Base):
    """A permission beyond a user's role (``special_populations``)."""

    __tablename__ = "user_permission"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(32), primary_key=True)
