"""Coverage at metro: ``GET /api/v1/events/coverage``'s service (``api.services.reach``)
for the city, a district and a town, in process (no HTTP): the first request (cold: the
leaves, lattice, reach and events built) and 10 repeated ones (warm: cached parts, the
KD-tree queries and the greedy pick), beside one run of the plain reference for a town.

    python -m bench.bench_coverage DATABASE_URL   # a COPY of metro with events seeded
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from types import SimpleNamespace

from api.db.session import session_scope
from api.services.coverage import coverage_reference
from api.services.reach import coverage
from bench.bench_api import _pick_units

REPEAT = 10


def run(url: str) -> list[dict]:
    """Time the coverage of each picked unit; print and return the rows."""
    units = _pick_units(url)
    rows = []
    for key in ("root", "l1", "l2"):  # the city, its biggest district, its town
        code = units.get(key)
        if code is None:
            continue
        who = SimpleNamespace(unit_code=code)
        times = []
        for _ in range(REPEAT + 1):
            with session_scope(url) as session:
                t = time.perf_counter()
                answer = coverage(session, who, code, 5, suggest=3)
                times.append(time.perf_counter() - t)
        warm = sorted(times[1:])
        row = {
            "unit": key,
            "code": code,
            "events": answer["events"],
            "bases": answer["bases"],
            "cold_s": round(times[0], 2),
            "warm_median_ms": round(statistics.median(warm) * 1000, 1),
            "warm_p95_ms": round(warm[int(0.95 * (len(warm) - 1))] * 1000, 1),
            "events_share": answer["events_share"],
            "residents_share": answer["residents_share"],
            "gains": [s["events_gained"] for s in answer["suggestions"]],
        }
        if key == "l2":
            with session_scope(url) as session:
                t = time.perf_counter()
                ref = coverage_reference(session, who, code, 5, suggest=3)
                row["reference_s"] = round(time.perf_counter() - t, 2)
                row["reference_residents_share"] = ref["residents_share"]
                row["reference_gains"] = [s["events_gained"] for s in ref["suggestions"]]
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    run(sys.argv[1])
