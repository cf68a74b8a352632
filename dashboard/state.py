"""The view state a URL holds: unit, metric, period, comparison, class method, language.

``/dashboard/unit/{code}?metric=&period=|start=&end=&compare=&method=&lang=`` — so the
browser's back button and a pasted link both work. One parser, one writer.

``breaks=b1,...,bk&breaks_level=village`` keeps the legend's class breaks fixed for every
map of that level (the user ticked "keep breaks" to compare villages across towns).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, replace
from urllib.parse import urlencode

PERIODS = ("month", "quarter", "year", "30d")
COMPARES = ("yoy", "prev", "none")  # 同比, 环比, none
METHODS = ("quantiles", "natural_breaks", "equal_interval")


@dataclass(frozen=True)
class ViewState:
    """What the unit page shows."""

    code: str
    metric: str
    period: str = "year"  # a preset, or "custom" with start/end
    start: dt.date | None = None
    end: dt.date | None = None
    compare: str = "yoy"  # yoy 同比, prev 环比, none
    method: str = "quantiles"
    lang: str = "zh"
    breaks: tuple[float, ...] = ()  # kept class upper bounds (empty: computed per map)
    breaks_level: str | None = None  # the level whose maps use the kept breaks

    def kept_breaks(self, level: str | None) -> tuple[float, ...]:
        """The kept breaks when the map shows units of ``level``, else ``()``."""
        return self.breaks if self.breaks and level == self.breaks_level else ()

    def with_(self, **changes: object) -> ViewState:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def query(self) -> str:
        """The URL query string (with its ``?``) for this state, code excluded."""
        params: dict[str, str] = {"metric": self.metric}
        if self.period == "custom" and self.start and self.end:
            params["start"] = self.start.isoformat()
            params["end"] = self.end.isoformat()
        else:
            params["period"] = self.period
        params["compare"] = self.compare
        params["method"] = self.method
        if self.breaks and self.breaks_level:
            params["breaks"] = ",".join(format_break(b) for b in self.breaks)
            params["breaks_level"] = self.breaks_level
        if self.lang != "zh":
            params["lang"] = self.lang
        return "?" + urlencode(params)

    def path(self, code: str | None = None) -> str:
        """The dashboard path (with prefix and query) of this state at ``code``."""
        return f"/dashboard/unit/{code or self.code}{self.query()}"


def format_break(value: float) -> str:
    """A break as the URL writes it: ``12`` for a whole number, else up to 6 decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}".rstrip("0")


def _breaks(value: str | None) -> tuple[float, ...]:
    """Two or more strictly ascending finite numbers, else ``()`` (a mangled link is
    shown with computed breaks rather than refused)."""
    try:
        found = tuple(float(b) for b in (value or "").split(",") if b.strip())
    except ValueError:
        return ()
    ascending = all(a < b for a, b in itertools.pairwise(found))
    finite = all(abs(b) < float("inf") for b in found)
    return found if len(found) >= 2 and ascending and finite else ()


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_state(code: str, query: dict[str, str], default_metric: str) -> ViewState:
    """The state from a URL's query; unknown or malformed values fall back to defaults."""
    start, end = _date(query.get("start")), _date(query.get("end"))
    period = query.get("period", "year")
    if start and end and start <= end:
        period = "custom"
    elif period not in PERIODS:
        period = "year"
    if period != "custom":
        start = end = None
    compare = query.get("compare", "yoy")
    method = query.get("method", "quantiles")
    breaks = _breaks(query.get("breaks"))
    breaks_level = (query.get("breaks_level") or "")[:32] or None
    return ViewState(
        code=code,
        metric=query.get("metric") or default_metric,
        period=period,
        start=start,
        end=end,
        compare=compare if compare in COMPARES else "yoy",
        method=method if method in METHODS else "quantiles",
        lang="en" if query.get("lang") == "en" else "zh",
        breaks=breaks if breaks_level else (),
        breaks_level=breaks_level if breaks else None,
    )


def period_dates(state: ViewState, on: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the state's period, as seen on day ``on`` (the
    data's last day, so a demo seeded in the past still shows its figures)."""
    if state.period == "custom" and state.start and state.end:
        return state.start, state.end
    if state.period == "month":
        return on.replace(day=1), on
    if state.period == "quarter":
        return dt.date(on.year, 3 * ((on.month - 1) // 3) + 1, 1), on
    if state.period == "30d":
        return on - dt.timedelta(days=29), on
    return dt.date(on.year, 1, 1), on
