"""Monthly special-population counts for a seeded world (deterministic for a seed).

Per leaf (a grid, or a village without grids) and month, as the departments deliver them:

- the floating population: 20–60% of residents in industrial towns (about one town in
  three), 3–15% elsewhere, drifting a little from month to month (公安局);
- rental housing units: a share of households, larger where the floating population is;
- the special groups at rates per 10,000 residents near those reported by Chinese
  districts (severe mental disorder about 40, released prisoners under resettlement about
  8, key youth about 6, community correction about 3, community drug rehabilitation
  about 3), with 95–99% of the registered under management, most of them visited in the
  month and a few lost contact. Grids of ~900 residents make most of these cells 0 to 4,
  so suppression has work to do;
- one education and help station row per village (on its first leaf), open in ~85% of
  villages (综治办).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.services.population_import import store_counts

# group → (department, rate per 10,000 residents)
GROUP_RATES = {
    "severe_mental_disorder": ("卫健委", 40.0),
    "released_prisoner": ("司法局", 8.0),
    "key_youth": ("团委", 6.0),
    "community_correction": ("司法局", 3.0),
    "drug_rehabilitation": ("公安局", 3.0),
}


def _leaves(session: Session) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Current leaves (by code): codes, residents, their town (their ancestor at level
    ``town``, else at the level below the root) and their parent."""
    leaf = (
        "u.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM admin_unit c "
        "WHERE c.parent_code = u.code AND c.valid_to IS NULL)"
    )
    rows = session.execute(
        text(
            f"SELECT u.code, COALESCE(u.population, 0), u.parent_code FROM admin_unit u "
            f"WHERE {leaf} ORDER BY u.code"
        )
    ).all()
    levels = [r[0] for r in session.execute(text("SELECT code FROM admin_level ORDER BY depth"))]
    town_level = "town" if "town" in levels else levels[min(1, len(levels) - 1)]
    town_of = dict(
        session.execute(
            text(
                "SELECT u.code, a.ancestor_code FROM admin_unit u JOIN unit_ancestry a "
                f"ON a.unit_id = u.id WHERE a.ancestor_level = :level AND {leaf}"
            ),
            {"level": town_level},
        ).all()
    )
    codes = [r[0] for r in rows]
    residents = np.array([r[1] for r in rows], dtype=np.int64)
    towns = [town_of.get(c, c) for c in codes]
    parents = [r[2] or r[0] for r in rows]
    return codes, residents, towns, parents


def month_starts(last: dt.date, months: int) -> list[dt.date]:
    """The first days of the ``months`` months ending with ``last``'s month."""
    out, m = [], last.replace(day=1)
    for _ in range(months):
        out.append(m)
        m = (m - dt.timedelta(days=1)).replace(day=1)
    return out[::-1]


def seed_populations(session: Session, last: dt.date, months: int = 6, seed: int = 1) -> int:
    """Write ``months`` months (ending with ``last``'s) of counts for every current leaf,
    one batch per month and department. Returns the rows written."""
    codes, residents, towns, parents = _leaves(session)
    if not codes:
        return 0
    rng = np.random.default_rng(seed + 2301)
    town_codes = sorted(set(towns))
    industrial = {t: rng.random() < 0.35 for t in town_codes}
    share = np.array(
        [rng.uniform(0.2, 0.6) if industrial[t] else rng.uniform(0.03, 0.15) for t in towns]
    )
    stations_open = {p: rng.random() < 0.85 for p in sorted(set(parents))}
    first_leaf: dict[str, str] = {}
    for code, parent in zip(codes, parents, strict=True):
        first_leaf.setdefault(parent, code)
    registered = {g: rng.poisson(rate * residents / 10_000) for g, (_, rate) in GROUP_RATES.items()}
    written = 0
    for month in month_starts(last, months):
        by_department: dict[str, list] = {}
        drift = rng.normal(1.0, 0.03, len(codes)).clip(0.8, 1.2)
        floating = np.rint(residents * share * drift).astype(np.int64)
        rental = np.rint(residents / 3 * (0.04 + 0.5 * share) * drift).astype(np.int64)
        police = by_department.setdefault("公安局", [])
        for i, code in enumerate(codes):
            police.append((code, "floating", {"registered": int(floating[i])}))
            police.append((code, "rental_housing", {"registered": int(rental[i])}))
        for group, (department, rate) in GROUP_RATES.items():
            new = rng.poisson(rate * residents / 10_000 / 24)
            left = rng.binomial(registered[group], 1 / 24)
            registered[group] = registered[group] + new - left
            reg = registered[group]
            managed = reg - rng.binomial(reg, 0.03)
            visited = rng.binomial(managed, 0.88)
            lost = rng.binomial(managed, 0.01)
            rows = by_department.setdefault(department, [])
            for i in np.flatnonzero(reg > 0):
                rows.append(
                    (
                        codes[i],
                        group,
                        {
                            "registered": int(reg[i]),
                            "under_management": int(managed[i]),
                            "visited": int(visited[i]),
                            "lost_contact": int(lost[i]),
                            "newly_registered": int(new[i]),
                            "left": int(left[i]),
                        },
                    )
                )
        office = by_department.setdefault("综治办", [])
        for parent, leaf in first_leaf.items():
            office.append((leaf, "help_station", {"registered": int(stations_open[parent])}))
        for department, rows in by_department.items():
            store_counts(session, month, department, rows, source_name="seed")
            written += len(rows)
    return written
