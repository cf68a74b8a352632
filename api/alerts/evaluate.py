"""Score alert episodes against planted bursts: recall within a few days, false alerts per
1,000 unit-days. Used by bench/bench_alerts.py (the tests count on their own)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def evaluate_rows(
    rows: Sequence[Mapping[str, Any]],
    bursts: Sequence[Any],
    parent: Mapping[str, str | None],
    unit_days: int,
    within: int = 3,
) -> dict[str, float]:
    """``rows``: caseload alert rows (unit_code, category, opened_on, last_seen_on);
    ``bursts``: objects with village_code, category, start, days. A burst is found when an
    alert on its village (its category or all cases) is open on a day from its start to
    ``within`` days after. An alert is false when no burst explains it: not on a burst's
    village or that village's town, or opened outside [start − 1, end + 7]."""
    rows = [r for r in rows if r.get("kind", "caseload") == "caseload"]
    found, delays = 0, []
    for b in bursts:
        last = b.start + dt.timedelta(days=within)
        hits = [
            r
            for r in rows
            if r["unit_code"] == b.village_code
            and r["category"] in (None, b.category)
            and r["opened_on"] <= last
            and r["last_seen_on"] >= b.start
        ]
        if hits:
            found += 1
            delays.append(max(0, min((r["opened_on"] - b.start).days for r in hits)))

    def explained(r: Mapping[str, Any]) -> bool:
        for b in bursts:
            end = b.start + dt.timedelta(days=b.days - 1)
            where = (b.village_code, parent.get(b.village_code))
            if r["unit_code"] in where and (
                b.start - dt.timedelta(days=1) <= r["opened_on"] <= end + dt.timedelta(days=7)
            ):
                return True
        return False

    false = sum(not explained(r) for r in rows)
    return {
        "bursts": len(bursts),
        "found": found,
        "recall": round(found / len(bursts), 3) if bursts else float("nan"),
        "median_days_to_alert": statistics.median(delays) if delays else float("nan"),
        "alerts": len(rows),
        "false_alerts": false,
        "unit_days": unit_days,
        "false_per_1000_unit_days": round(1000 * false / unit_days, 3) if unit_days else 0.0,
    }
