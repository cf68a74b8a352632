"""Special populations at metro: what a map with disclosure control costs.

    python -m bench.bench_populations [DATABASE_URL]   # a metro copy with populations seeded

- suppression table: the pattern of one domain version (every unit at every level, every
  month, four protected counts: primary and complementary suppression to a fixed point),
  computed once per data version and kept with the cube. Timed cold (recomputed each time).
- map numbers: what the dashboard's map reads (``map_figures(choropleth_table(...))`` in
  this process, a session each, warm: the cube and the suppression table kept), for one
  month by village and by grid under the city: visit_coverage_rate, floating_per_100 (both
  suppressed) beside caseload (no suppression) for the same map. Target ≤ 20 ms median.

Not measured here: HTTP round trips and the server's own timing (``bench_api`` measures
those for the case metrics; the special-population maps take the same route), the
dashboard's browser rendering.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
from sqlalchemy import text

from api.db.session import dispose_engines, session_factory
from api.engine import MapQuery, MetricQuery, choropleth_table, engine_state
from api.engine.disclosure import disclosure_table
from api.engine.registry import DOMAINS
from api.memory import quiet_garbage_collector
from bench.common import timed
from dashboard.client import map_figures

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/zhili_metro_i23"
REPEAT = 30


def run(database_url: str = DEFAULT_URL, preset: str = "metro") -> dict:
    """The figures of this section (see the module docstring)."""
    url = database_url
    factory = session_factory(url)
    with factory() as session:
        city = session.execute(text("SELECT code FROM admin_unit WHERE parent_code IS NULL"))
        city = city.scalar()
        month = session.execute(
            text("SELECT MAX(month) FROM population_count WHERE is_current")
        ).scalar()
        rows = session.execute(text("SELECT COUNT(*) FROM population_count")).scalar()
        state = engine_state(session)
    period = f"{month:%Y-%m}"
    domain = DOMAINS["special_populations"]
    out: dict = {"city": city, "month": period, "count_rows": rows}

    def cold() -> None:
        state.cubes[domain.name].derived.clear()
        disclosure_table(state, domain)

    out["suppression_table"] = timed(cold, repeat=5, warmup=1)
    table = disclosure_table(state, domain)
    cells = sum(int(m.size) for m in table.masks.values())
    hidden = sum(int(m.sum()) for m in table.masks.values())
    small = sum(int(((v >= 1) & (v < table.threshold)).sum()) for v in table.values.values())
    out["cells"] = {"total": cells, "primary": small, "suppressed": hidden,
                    "months": len(table.months)}  # fmt: skip
    print(f"suppression table: {out['suppression_table']}  cells {out['cells']}", flush=True)

    before = quiet_garbage_collector()
    try:
        out["map_numbers"] = []
        for level in ("village", "grid"):
            for metric in ("caseload", "visit_coverage_rate", "floating_per_100"):
                shown, query = MapQuery(city, level), MetricQuery(metric, period=period)

                def numbers(shown=shown, query=query) -> list:
                    with factory() as session:
                        return map_figures(choropleth_table(session, shown, query))

                figures = numbers()
                row = {"level": level, "metric": metric, "units": len(figures),
                       "suppressed": int(np.sum([f.suppressed for f in figures])),
                       **timed(numbers, REPEAT, warmup=2)}  # fmt: skip
                out["map_numbers"].append(row)
                print(row, flush=True)
    finally:
        gc.set_threshold(*before)
        gc.collect()
    dispose_engines()
    return out


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)
