"""The map view a URL holds (``MapView``): unit, metric, period, comparison, class method,
kept breaks, language.

``/dashboard/unit/{code}?metric=&period=|start=&end=&compare=&method=&lang=`` — so the
browser's back button and a pasted link both work. One parser, one writer; the page's store
holds the same value, and callbacks pass it whole.

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


def is_month(period: str) -> bool:
    """True when ``period`` names one calendar month, ``YYYY-MM`` (the period of the
    figures published per month only)."""
    return month_start(period) is not None


def month_start(period: str) -> dt.date | None:
    """The first day of the calendar month ``period`` (``YYYY-MM``) names, else None."""
    if len(period) != 7 or period[4] != "-":
        return None
    try:
        return dt.date(int(period[:4]), int(period[5:]), 1)
    except ValueError:
        return None


def month_end(first: dt.date) -> dt.date:
    """The last day of the month that starts on ``first``."""
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class MapView:
    """What one map shows, as one value: the unit whose children it draws, the metric, the
    period, the comparison, the class method, kept breaks and the language.

    The URL holds it (``from_query`` / ``query``), the page's ``dcc.Store`` holds it
    (``from_store`` / ``store``), and the client's figures and exports take it whole.
    ``start``/``end`` are the custom dates a URL names, and once ``resolved`` the period's
    first and last day whatever the period; ``level`` is the level of the units on the map
    (the unit's children), once known."""

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
    level: str | None = None  # the level of the units the map shows
    show: str | None = None  # the level the user picked to map (None: the children)
    layers: tuple[str, ...] = ()  # the map's layers switched on (``dashboard.layers``)
    smooth: str = "none"  # eb: empirical-Bayes smoothed rates (per-capita metrics)

    @classmethod
    def from_query(cls, code: str, query: dict[str, str], default_metric: str) -> MapView:
        """The view a URL's query names; unknown or malformed values fall back to
        defaults (a mangled link is shown, not refused)."""
        start, end = _date(query.get("start")), _date(query.get("end"))
        period = query.get("period", "year")
        if start and end and start <= end:
            period = "custom"
        elif period not in PERIODS and not is_month(period):
            period = "year"
        if period != "custom":
            start = end = None
        compare = query.get("compare", "yoy")
        method = query.get("method", "quantiles")
        breaks = _breaks(query.get("breaks"))
        breaks_level = (query.get("breaks_level") or "")[:32] or None
        return cls(
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
            show=(query.get("show") or "")[:32] or None,
            layers=_layers(query.get("layers")),
            smooth="eb" if query.get("smooth") == "eb" else "none",
        )

    @classmethod
    def from_store(cls, data: dict) -> MapView:
        """The view ``store`` wrote. The browser sends a store back as it sends a URL, so
        each value is checked as a URL's is."""
        query = {
            key: value
            for key in (
                "metric",
                "period",
                "compare",
                "method",
                "lang",
                "breaks_level",
                "show",
                "smooth",
            )
            if isinstance(value := data.get(key), str)
        }
        breaks = data.get("breaks")
        if isinstance(breaks, list):
            query["breaks"] = ",".join(str(b) for b in breaks)
        layers = data.get("layers")
        if isinstance(layers, list):
            query["layers"] = ",".join(str(x) for x in layers)
        start, end = _date(data.get("start")), _date(data.get("end"))
        if query.get("period") == "custom" and start and end:
            query["start"], query["end"] = start.isoformat(), end.isoformat()
        code, level = data.get("code"), data.get("level")
        view = cls.from_query(code if isinstance(code, str) else "", query, "")
        if start and end and start <= end:  # a preset's days, as the page resolved them
            view = replace(view, start=start, end=end)
        return replace(view, level=level if isinstance(level, str) else None)

    def resolved(self, level: str | None, on: dt.date) -> MapView:
        """This view of a map of ``level`` units, its period's days as seen on day ``on``
        (the data's last day)."""
        start, end = period_dates(self, on)
        return replace(self, level=level, start=start, end=end)

    def kept_breaks(self, level: str | None) -> tuple[float, ...]:
        """The kept breaks when the map shows units of ``level``, else ``()``."""
        return self.breaks if self.breaks and level == self.breaks_level else ()

    @property
    def keep(self) -> tuple[float, ...]:
        """The kept breaks this map uses (``()``: it computes its own classes)."""
        return self.kept_breaks(self.level)

    def with_(self, **changes: object) -> MapView:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def query(self) -> str:
        """The URL query string (with its ``?``) for this view, code excluded."""
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
        if self.show:
            params["show"] = self.show
        if self.layers:
            params["layers"] = ",".join(self.layers)
        if self.smooth == "eb":
            params["smooth"] = "eb"
        if self.lang != "zh":
            params["lang"] = self.lang
        return "?" + urlencode(params)

    def path(self, code: str | None = None) -> str:
        """The dashboard path (with prefix and query) of this view at ``code``."""
        return f"/dashboard/unit/{code or self.code}{self.query()}"

    def store(self) -> dict:
        """The view as a ``dcc.Store`` holds it (JSON; ``from_store`` reads it back, and
        the page's script reads its keys: see ``assets/zhili.js``)."""
        return {
            "code": self.code,
            "level": self.level,
            "metric": self.metric,
            "period": self.period,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "compare": self.compare,
            "method": self.method,
            "lang": self.lang,
            "breaks": [format_break(b) for b in self.breaks],
            "breaks_level": self.breaks_level,
            "show": self.show,
            "layers": list(self.layers),
            "smooth": self.smooth,
        }


def format_break(value: float) -> str:
    """A break as the URL writes it: ``12`` for a whole number, else up to 6 decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}".rstrip("0")


BREAK_DIGITS = {"integer": 0, "decimal1": 1, "decimal2": 2, "percent": 4}


def round_break(value: float, fmt: str) -> float:
    """A class break rounded to the metric's format (``147.20000000000002`` → ``147``
    for a count, a share to 0.01 percentage point), as kept breaks are written."""
    return round(value, BREAK_DIGITS.get(fmt, 6)) + 0.0


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


def _layers(value: str | None) -> tuple[str, ...]:
    """Layer names of a URL's ``layers=a,b`` (short words; anything else is dropped)."""
    names = [x.strip() for x in (value or "").split(",")]
    return tuple(dict.fromkeys(x for x in names if x.isidentifier() and len(x) <= 32))[:8]


def _date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def period_dates(view: MapView, on: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the view's period, as seen on day ``on`` (the
    data's last day, so a demo seeded in the past still shows its figures)."""
    if view.period == "custom" and view.start and view.end:
        return view.start, view.end
    first = month_start(view.period)
    if first is not None:  # one calendar month, whole
        return first, month_end(first)
    if view.period == "month":
        return on.replace(day=1), on
    if view.period == "quarter":
        return dt.date(on.year, 3 * ((on.month - 1) // 3) + 1, 1), on
    if view.period == "30d":
        return on - dt.timedelta(days=29), on
    return dt.date(on.year, 1, 1), on
