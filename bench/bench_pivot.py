"""The analysts' pivot at metro: village × month × category over a year, from the city.

    python -m bench.bench_pivot --database-url postgresql://.../zhili_metro_copy

Run it on a COPY of the metro database (``CREATE DATABASE x TEMPLATE zhili_metro``, then
``python -m api db upgrade --database-url``): the pivot only reads, but the copy keeps the
benchmark away from everyone else's. Prints medians and p95 (ms) of, with the engine's
state loaded (the first request of a process reads the cubes: not timed here, see
``bench_cube``):

- ``cells``: the engine's cells (``api.engine.pivot_cells``): the cube's rows of the year,
  one bincount per measure;
- ``table``: the cells laid out as the JSON rows the API returns (``pivot_table``);
- ``http``: ``GET /api/v1/pivot`` in process (TestClient), JSON serialised, as the admin;
- the same for resolution_rate (numerator and denominator) and for grid × month without
  a breakdown (8,820 grids, the per-bin Frame path).
"""

from __future__ import annotations

import argparse
import json

from bench.common import timed

REPEAT = 20


def run(database_url: str, preset: str = "metro") -> dict:
    """Time the pivot on ``database_url`` (a copy of the metro database)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from api.app import create_app
    from api.db.session import session_scope
    from api.engine import MetricQuery, PivotQuery, engine_state, pivot_cells
    from api.services.auth import create_user, find_user, issue_token
    from api.services.pivot import pivot_table
    from api.settings import Settings

    out: dict = {}
    with session_scope(database_url) as session:
        city = session.execute(
            text("SELECT code FROM admin_unit WHERE parent_code IS NULL AND valid_to IS NULL")
        ).scalar()
        state = engine_state(session)
        last = state.last_fact_day()
        year = str(last.year - 1)  # a whole year of data
        cases = [
            (
                "village_month_category_caseload",
                "caseload",
                "village",
                ("unit", "period"),
                ("category",),
            ),
            (
                "village_month_category_resolution",
                "resolution_rate",
                "village",
                ("unit", "period"),
                ("category",),
            ),
            ("town_category_month_caseload", "caseload", "town", ("category", "unit"), ("period",)),
            ("grid_month_caseload", "caseload", "grid", ("unit",), ("period",)),
        ]
        for name, metric, level, rows, columns in cases:
            pq = PivotQuery(MetricQuery(metric=metric, period=year), level, rows, columns, "month")
            cells = pivot_cells(session, city, pq)
            shape = tuple(cells.value.shape)
            out[name] = {
                "cells": timed(lambda pq=pq: pivot_cells(session, city, pq), repeat=REPEAT),
                "table": timed(lambda pq=pq: pivot_table(session, city, pq), repeat=REPEAT),
                "shape": shape,
            }
            print(name, shape, "cells", out[name]["cells"], "table", out[name]["table"])
    with session_scope(database_url) as session:  # the copy's own user
        user = find_user(session, "bench-pivot") or create_user(
            session, "bench-pivot", "admin", city
        )
        token = issue_token(session, user, ttl_days=1)
    app = create_app(Settings(database_url=database_url), with_dashboard=False)
    params = {"unit": city, "level": "village", "rows": "unit,period", "columns": "category",
              "period": year, "interval": "month"}  # fmt: skip
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:

        def get() -> None:
            r = client.get("/api/v1/pivot", params=params)
            assert r.status_code == 200, r.text

        out["village_month_category_caseload"]["http"] = timed(get, repeat=REPEAT)
        r = client.get("/api/v1/pivot", params=params)
        out["village_month_category_caseload"]["json_bytes"] = len(r.content)
        print("http", out["village_month_category_caseload"]["http"], len(r.content), "bytes")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    print(json.dumps(run(args.database_url), indent=2))
