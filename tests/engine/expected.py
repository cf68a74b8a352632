"""Right answers computed straight from the case dicts, independently of the rollups."""

from __future__ import annotations

import datetime as dt
import math

from api.domain import CATEGORY_BY_CODE

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def day(at: dt.datetime | None) -> dt.date | None:
    return None if at is None else at.astimezone(SHANGHAI).date()


def leaves_under(world, code: str, leaves: dict[str, int]) -> set[str]:
    """Leaf codes at or below ``code`` (following world.parent)."""
    out = set()
    for leaf in leaves:
        cur = leaf
        while cur is not None:
            if cur == code:
                out.add(leaf)
                break
            cur = world.parent.get(cur)
    return out


def cohort(cases, under: set[str], start: dt.date, end: dt.date) -> list[dict]:
    return [c for c in cases if c["leaf_code"] in under and start <= day(c["reported_at"]) <= end]


def close_days(c: dict) -> int:
    secs = int(c["handled_at"].timestamp()) - int(c["reported_at"].timestamp())
    return min(365, max(0, secs) // 86400)


def ratio(n: float, d: float, scale: float = 1.0) -> float | None:
    return n / d * scale if d else None


def expected(metric: str, cases, under: set[str], population: int, start, end) -> float | None:
    """The value of ``metric`` over the leaves ``under`` for [start, end]."""
    cs = cohort(cases, under, start, end)
    closed = [c for c in cs if c["handled_at"] is not None]
    mediated = [c for c in cs if c["outcome"] in ("mediated_success", "mediation_failed")]
    rated = [c for c in cs if c["satisfaction"] is not None]
    if metric == "caseload":
        return float(len(cs))
    if metric == "caseload_per_10k":
        return ratio(len(cs), population, 10_000)
    if metric == "resolution_rate":
        return ratio(len(closed), len(cs))
    if metric == "on_time_rate":
        return ratio(sum(c["handled_at"] <= c["deadline"] for c in closed), len(closed))
    if metric == "mediation_rate":
        disputes = [c for c in closed if CATEGORY_BY_CODE[c["category"]].group == "dispute"]
        return ratio(len(mediated), len(disputes))
    if metric == "mediation_success_rate":
        return ratio(sum(c["outcome"] == "mediated_success" for c in mediated), len(mediated))
    if metric == "visit_rate":
        return ratio(sum(c["visited_at"] is not None for c in cs), len(closed))
    if metric == "satisfaction":
        return ratio(sum(c["satisfaction"] for c in rated), len(rated))
    if metric == "satisfaction_rate":
        return ratio(sum(c["satisfaction"] >= 4 for c in rated), len(rated))
    if metric in ("median_days_to_close", "p90_days_to_close"):
        days = sorted(close_days(c) for c in closed)
        if not days:
            return None
        q = 0.5 if metric.startswith("median") else 0.9
        return float(days[max(1, math.ceil(q * len(days) - 1e-9)) - 1])
    every = [c for c in cases if c["leaf_code"] in under and day(c["reported_at"]) <= end]
    still_open = [c for c in every if c["handled_at"] is None or day(c["handled_at"]) > end]
    if metric == "open_backlog":
        return float(len(still_open))
    if metric == "overdue_open":
        return float(sum(day(c["deadline"]) <= end for c in still_open))
    raise KeyError(metric)


CASE_METRICS = (
    "caseload",
    "caseload_per_10k",
    "resolution_rate",
    "on_time_rate",
    "mediation_rate",
    "mediation_success_rate",
    "visit_rate",
    "satisfaction",
    "satisfaction_rate",
    "median_days_to_close",
    "p90_days_to_close",
    "open_backlog",
    "overdue_open",
)
