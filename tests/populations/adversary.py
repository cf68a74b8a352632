"""The adversary of disclosure control: everything one role can read, and for each
suppressed count the least and greatest value the rest allows (linear programmes).

``gather`` reads every special-population figure a client may read — each month, each
level below its home unit (the home unit itself too), each metric, as GeoJSON and CSV, the
home unit's time series — and returns the counts it learnt: ``(measure, code, month) →
value``, zeros where a unit is shown with no data. ``recount`` is the truth, summed again
from the stored rows. ``intervals`` solves, per month, the LPs of every count not learnt:
parent = Σ children for each measure, visited ≤ under management, lost contact ≤ under
management, counts ≥ 0, learnt counts fixed.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import text

from api.db.session import session_scope

M, V, L, F = "under_management", "visited", "lost_contact", "floating"
MEASURES = (M, V, L, F)
# metric → (what its numerator counts, what its denominator counts)
METRICS = {
    "special_under_management": (M, None),
    "visit_coverage_rate": (V, M),
    "lost_contact_rate": (L, M),
    "floating_population": (F, None),
    "floating_per_100": (F, None),  # over residents, which are public
}
SQL_OF = {
    M: "CASE WHEN p.kind = 'person' THEN p.under_management ELSE 0 END",
    V: "CASE WHEN p.kind = 'person' THEN p.visited ELSE 0 END",
    L: "CASE WHEN p.kind = 'person' THEN p.lost_contact ELSE 0 END",
    F: "CASE WHEN p.kind = 'floating' THEN p.registered ELSE 0 END",
}


def recount(url: str) -> tuple[dict, dict[str, str | None], set]:
    """The truth from the stored rows: ``(measure, code, month) → count`` for every unit
    at every level with rows below it, each current unit's parent, and the
    (code, month) pairs with rows."""
    sums = ", ".join(f"SUM({sql})" for sql in SQL_OF.values())
    query = (
        f"SELECT a.ancestor_code, p.month, COUNT(*), {sums} FROM population_count p "
        "JOIN unit_ancestry a ON a.unit_id = p.leaf_unit_id WHERE p.is_current "
        "GROUP BY a.ancestor_code, p.month"
    )
    truth, reported = {}, set()
    with session_scope(url) as s:
        for code, month, _rows, *values in s.execute(text(query)):
            month = str(month)[:7]
            reported.add((code, month))
            for measure, v in zip(MEASURES, values, strict=True):
                truth[(measure, code, month)] = int(v or 0)
        parents = {
            code: parent
            for code, parent in s.execute(
                text("SELECT code, parent_code FROM admin_unit WHERE valid_to IS NULL")
            )
        }
    return truth, parents, reported


def _learn(known: dict, code: str, month: str, metric: str, row: dict, threshold: int) -> None:
    num, den = METRICS[metric]
    if row.get("suppressed"):
        return
    if row.get("numerator") is None and row.get("value") is None:  # no data: nothing stored
        for measure in (num, den):
            if measure:
                known[(measure, code, month)] = 0
        return
    pairs = [(num, row.get("numerator"))]
    if den and metric != "floating_per_100":
        pairs.append((den, row.get("denominator")))
    for measure, value in pairs:
        assert value is not None, (metric, code, month, row)
        assert not 1 <= value < threshold, f"a small count shown: {metric} {code} {row}"
        known[(measure, code, month)] = round(value)


def gather(client, root: str, months: list[str], threshold: int = 5) -> dict:
    """Every special-population count ``client`` can read under ``root`` (see the module
    docstring); checks on the way that CSV says ``<5`` exactly where JSON is suppressed."""
    levels = [lv["code"] for lv in client.get("/api/v1/levels").json()]
    detail = client.get(f"/api/v1/units/{root}").json()
    root_level = detail["unit"]["level"] if "unit" in detail else detail["level"]
    below = levels[levels.index(root_level) + 1 :]
    known: dict = {}
    for metric in METRICS:
        series = client.get(
            f"/api/v1/units/{root}/timeseries",
            params={"metric": metric, "start": f"{months[0]}-01", "end": _end(months[-1])},
        )
        assert series.status_code == 200, series.text
        for point in series.json()["points"]:
            _learn(known, root, point["start"][:7], metric, point, threshold)
        for month in months:
            params = {"metric": metric, "period": month}
            own = client.get(f"/api/v1/units/{root}/children/metrics", params=params)
            assert own.status_code == 200, own.text
            body = own.json()
            for row in [body["self"], *body["children"]]:
                _learn(known, row["code"], month, metric, row, threshold)
            for level in below:
                params = {"metric": metric, "period": month, "parent": root, "level": level}
                geo = client.get("/api/v1/choropleth", params=params)
                assert geo.status_code == 200, geo.text
                rows = [f["properties"] for f in geo.json()["features"]]
                flat = client.get("/api/v1/choropleth", params={**params, "format": "csv"})
                assert flat.status_code == 200, flat.text
                table = {
                    r["code"]: r
                    for r in csv.DictReader(io.StringIO(flat.content.decode("utf-8-sig")))
                }
                for row in rows:
                    shown = table[row["code"]]["value"]
                    assert (shown == f"<{threshold}") == bool(row.get("suppressed")), (row, shown)
                    _learn(known, row["code"], month, metric, row, threshold)
    return known


def _same_csv(client, params: dict, rows: list[dict], threshold: int) -> None:
    flat = client.get("/api/v1/choropleth", params={**params, "format": "csv"})
    assert flat.status_code == 200, flat.text
    table = {r["code"]: r for r in csv.DictReader(io.StringIO(flat.content.decode("utf-8-sig")))}
    for row in rows:
        shown = table[row["code"]]
        if row.get("suppressed"):
            assert shown["value"] == f"<{threshold}" and shown["numerator"] == "", shown
        else:
            assert shown["value"] != f"<{threshold}", (row, shown)
            if row.get("numerator") is not None:
                assert float(shown["numerator"]) == row["numerator"], (row, shown)


def _end(month: str) -> str:
    import datetime as dt

    first = dt.date.fromisoformat(f"{month}-01")
    return ((first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)).isoformat()


def intervals(
    truth: dict, parents: dict, known: dict, month: str, codes: set[str]
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """For each count of ``month`` among ``codes`` that was not learnt: (least, greatest,
    true value) the learnt counts allow."""
    cells = [(m, c) for c in sorted(codes) for m in MEASURES]
    value = {cell: known.get((cell[0], cell[1], month)) for cell in cells}
    unknown = [cell for cell in cells if value[cell] is None]
    if not unknown:
        return {}
    u_index = {cell: i for i, cell in enumerate(unknown)}
    eq_rows: list[tuple[dict[int, float], float]] = []
    children = defaultdict(list)
    for c in codes:
        p = parents.get(c)
        if p in codes:
            children[p].append(c)
    for p, kids in children.items():
        for m in MEASURES:
            terms, rhs = defaultdict(float), 0.0
            for cell, sign in [((m, p), 1.0), *(((m, k), -1.0) for k in kids)]:
                if cell in u_index:
                    terms[u_index[cell]] += sign
                else:
                    rhs -= sign * value[cell]
            if terms:
                eq_rows.append((dict(terms), rhs))
    ub_rows: list[tuple[dict[int, float], float]] = []
    for c in codes:
        for small in (V, L):  # small ≤ under management
            terms, rhs = defaultdict(float), 0.0
            for cell, sign in (((small, c), 1.0), ((M, c), -1.0)):
                if cell in u_index:
                    terms[u_index[cell]] += sign
                else:
                    rhs -= sign * value[cell]
            if terms:
                ub_rows.append((dict(terms), rhs))
    n = len(unknown)
    rows_all = eq_rows + ub_rows
    # variables linked through a constraint share a component
    pairs_a, pairs_b = [], []
    for terms, _ in rows_all:
        js = list(terms)
        for j in js[1:]:
            pairs_a.append(js[0])
            pairs_b.append(j)
    graph = coo_matrix((np.ones(len(pairs_a)), (pairs_a, pairs_b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    out = {}
    for comp in np.unique(label):
        members = np.flatnonzero(label == comp)
        local = {int(j): i for i, j in enumerate(members)}

        a_eq, b_eq = _block(eq_rows, local)
        a_ub, b_ub = _block(ub_rows, local)
        for j in members:
            cost = np.zeros(len(members))
            cost[local[int(j)]] = 1.0
            lo = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None))
            hi = linprog(-cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None))
            assert lo.status == 0, (unknown[j], lo.message)  # the truth is feasible
            top = np.inf if hi.status == 3 else -hi.fun
            m, c = unknown[j]
            out[(m, c)] = (lo.fun, top, truth.get((m, c, month), 0))
    return out


def _block(rows: list, local: dict[int, int]) -> tuple:
    """The rows touching the component whose variables ``local`` numbers, as arrays."""
    a, b = [], []
    for terms, rhs in rows:
        if any(j in local for j in terms):
            line = np.zeros(len(local))
            for j, coef in terms.items():
                line[local[j]] = coef
            a.append(line)
            b.append(rhs)
    return (np.array(a), np.array(b)) if a else (None, None)
