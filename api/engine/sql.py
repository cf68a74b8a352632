"""The SQL the engine writes for both databases: a timestamp's local day, whole seconds
between two timestamps, comparisons of timestamps, a day as a number.

On PostgreSQL the settings' zone is used by name (``AT TIME ZONE``); SQLite has no zone
database, so the zone's current UTC offset is applied (Asia/Shanghai has had no DST since
1991).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from api.settings import get_settings

EPOCH = dt.date(2000, 1, 1)  # day numbers count from here


@dataclass(frozen=True)
class SqlDialect:
    """SQL fragments for one database kind and time zone."""

    name: str  # postgresql | sqlite
    tz: str

    @classmethod
    def of(cls, dialect: str) -> SqlDialect:
        """The fragments for ``dialect`` in the settings' time zone."""
        return cls(dialect, get_settings().timezone)

    @property
    def binds(self) -> dict[str, str]:
        """The bind values the fragments refer to (``:tz`` on PostgreSQL)."""
        return {"tz": self.tz} if self.name == "postgresql" else {}

    def day(self, column: str) -> str:
        """The local day of a timestamp column."""
        if self.name == "postgresql":
            return f"(({column}) AT TIME ZONE :tz)::date"
        return f"date({column}, '{_offset_minutes(self.tz):+d} minutes')"

    def seconds(self, start: str, end: str) -> str:
        """Whole seconds from ``start`` to ``end``, at least 0."""
        if self.name == "postgresql":
            return (
                f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM {end}))::bigint"
                f" - FLOOR(EXTRACT(EPOCH FROM {start}))::bigint)"
            )
        return (
            f"MAX(0, CAST(strftime('%s', {end}) AS INTEGER)"
            f" - CAST(strftime('%s', {start}) AS INTEGER))"
        )

    def at_or_before(self, a: str, b: str) -> str:
        return f"{a} <= {b}" if self.name == "postgresql" else f"julianday({a}) <= julianday({b})"

    def after(self, a: str, b: str) -> str:
        return f"{a} > {b}" if self.name == "postgresql" else f"julianday({a}) > julianday({b})"

    def least(self, a: str, b: str) -> str:
        return f"{'LEAST' if self.name == 'postgresql' else 'MIN'}({a}, {b})"

    def day_number(self, column: str) -> str:
        """A date column as days since ``EPOCH``."""
        if self.name == "postgresql":
            return f"({column} - DATE '{EPOCH.isoformat()}')"
        return f"CAST(julianday({column}) - julianday('{EPOCH.isoformat()}') AS INTEGER)"


def code_index(column: str, codes: tuple[str, ...]) -> str:
    """SQL: the position of ``column``'s value in ``codes`` (−1 when not there)."""
    whens = " ".join(f"WHEN '{code}' THEN {i}" for i, code in enumerate(codes))
    return f"CASE {column} {whens} ELSE -1 END" if codes else "-1"


@lru_cache(maxsize=8)
def _offset_minutes(zone: str) -> int:
    offset = dt.datetime.now(ZoneInfo(zone)).utcoffset() or dt.timedelta(0)
    return int(offset.total_seconds() // 60)
