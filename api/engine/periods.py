"""Periods: inclusive date ranges from dates or shorthands, and the period to compare with.

Shorthands: ``2026`` (a year), ``2026-Q3`` (a quarter), ``2026-10`` (a month),
``2026-W05`` (an ISO week), ``2026-10-05`` (a day), ``last-30d`` (the 30 days ending on the
data's last day: the last day a case was reported, or today when there are none — so a
demo database seeded in the past still shows figures; on a live system it is today).

Comparison: ``yoy`` (同比) is the same dates a year before; a period of whole months maps to
the same months (2025-02 → 2024-02-01..2024-02-29, leap day included), otherwise each date
moves back one year and 29 February becomes 28 February. ``prev`` (环比) is the period of the
same length just before (whole months: the same number of months just before).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

MIN_DAY = dt.date(1990, 1, 1)
MAX_DAY = dt.date(2100, 12, 31)


class PeriodError(ValueError):
    """The period cannot be understood; the message says what to send instead."""


@dataclass(frozen=True)
class Period:
    """An inclusive range of local days."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def whole_months(self) -> bool:
        """True when the period starts on a 1st and ends on a month's last day."""
        last = calendar.monthrange(self.end.year, self.end.month)[1]
        return self.start.day == 1 and self.end.day == last

    def describe(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: dt.date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def parse_shorthand(text: str, last_day: dt.date) -> Period | None:
    """The period a shorthand names, or None when ``text`` is not one."""
    text = text.strip()
    if m := re.fullmatch(r"(\d{4})", text):
        y = int(m[1])
        return Period(dt.date(y, 1, 1), dt.date(y, 12, 31))
    if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", text):
        y, q = int(m[1]), int(m[2])
        return Period(dt.date(y, 3 * q - 2, 1), _month_end(y, 3 * q))
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})", text):
        y, mo = int(m[1]), int(m[2])
        if not 1 <= mo <= 12:
            raise PeriodError(f"bad month in {text!r}: use 01..12")
        return Period(dt.date(y, mo, 1), _month_end(y, mo))
    if m := re.fullmatch(r"(\d{4})-[Ww](\d{1,2})", text):
        try:
            monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError as exc:
            raise PeriodError(f"bad ISO week {text!r}: {exc}") from None
        return Period(monday, monday + dt.timedelta(days=6))
    if m := re.fullmatch(r"last-(\d{1,4})d", text):
        n = int(m[1])
        if n < 1:
            raise PeriodError("last-Nd needs N ≥ 1")
        return Period(last_day - dt.timedelta(days=n - 1), last_day)
    return None


def _parse_day(text: str, name: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(
            f"bad {name} {text!r}: use a date YYYY-MM-DD or a period such as 2026, "
            "2026-Q3, 2026-10, 2026-W05 or last-30d"
        ) from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise PeriodError(f"{name} {text!r} is out of range ({MIN_DAY}..{MAX_DAY})")
    return day


def resolve_period(
    start: str | None,
    end: str | None,
    last_day: dt.date,
    period: str | None = None,
    default: str = "last-30d",
) -> Period:
    """The period asked for: ``period`` (a shorthand), or ``start``/``end`` (dates, or a
    shorthand as ``start`` alone), or ``default``. ``last_day``: the data's last day."""
    if period:
        found = parse_shorthand(period, last_day)
        if found is None:
            raise PeriodError(
                f"bad period {period!r}: use 2026, 2026-Q3, 2026-10, 2026-W05 or last-30d"
            )
        return found
    if start and not end:
        found = parse_shorthand(start, last_day)
        if found is not None:
            return found
    if not start and not end:
        found = parse_shorthand(default, last_day)
        assert found is not None
        return found
    first = _parse_day(start, "start") if start else None
    last = _parse_day(end, "end") if end else None
    if first is None:
        assert last is not None
        first = last - dt.timedelta(days=29)
    if last is None:
        last = max(first, last_day)
    if first > last:
        raise PeriodError(f"start {first} is after end {last}")
    if (last - first).days > 366 * 20:
        raise PeriodError("a period may span at most 20 years")
    return Period(first, last)


def _year_before(day: dt.date) -> dt.date:
    if day.month == 2 and day.day == 29:
        return dt.date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)


def compare_period(period: Period, compare: str | None) -> Period | None:
    """The period to compare with: ``yoy`` (同比), ``prev`` (环比) or None."""
    if not compare:
        return None
    if compare == "yoy":
        if period.whole_months:
            return Period(
                dt.date(period.start.year - 1, period.start.month, 1),
                _month_end(period.end.year - 1, period.end.month),
            )
        return Period(_year_before(period.start), _year_before(period.end))
    if compare == "prev":
        if period.whole_months:
            months = (period.end.year - period.start.year) * 12 + (
                period.end.month - period.start.month + 1
            )
            y, m = _add_months(period.start, -months)
            return Period(dt.date(y, m, 1), period.start - dt.timedelta(days=1))
        length = dt.timedelta(days=period.days)
        return Period(period.start - length, period.end - length)
    raise PeriodError(f"bad compare {compare!r}: use yoy (同比) or prev (环比)")


def bins(period: Period, interval: str) -> list[Period]:
    """Consecutive day, ISO week (Monday first) or month bins covering ``period``,
    clipped to it."""
    if interval not in ("day", "week", "month"):
        raise PeriodError(f"bad interval {interval!r}: use day, week or month")
    out: list[Period] = []
    cursor = period.start
    while cursor <= period.end:
        if interval == "day":
            stop = cursor
        elif interval == "week":
            stop = cursor + dt.timedelta(days=6 - cursor.weekday())
        else:
            stop = _month_end(cursor.year, cursor.month)
        stop = min(stop, period.end)
        out.append(Period(cursor, stop))
        cursor = stop + dt.timedelta(days=1)
    if len(out) > 5000:
        raise PeriodError(f"{len(out)} {interval} bins: choose a longer interval")
    return out
