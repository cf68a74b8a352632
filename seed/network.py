"""People and the grid network: population per grid, grid workers, centers and stations."""

from __future__ import annotations

import datetime as dt

import numpy as np

from seed.layout import Layout, stream


def grid_population(layout: Layout, area_km2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residents and households per grid: dense urban communities, sparse villages.

    The density is skewed (log-normal around an urban gradient) and the total is scaled
    to the preset's population. Households are smaller in the city than in the country.
    """
    rng = stream(layout.seed, "people")
    u = layout.urban
    density = (250 + 22000 * u**1.4) * rng.lognormal(0.0, 0.45, layout.n_grids)
    raw = density * area_km2
    population = np.maximum(30, np.round(raw * layout.preset.population / raw.sum()))
    size = 3.2 - 0.7 * u + rng.normal(0, 0.08, layout.n_grids)
    households = np.maximum(10, np.round(population / size))
    return population.astype(np.int64), households.astype(np.int64)


def _spread(rng: np.random.Generator, total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights`` (multinomial)."""
    if total <= 0:
        return np.zeros(len(weights), np.int64)
    return rng.multinomial(total, weights / weights.sum()).astype(np.int64)


def grid_workers(layout: Layout, population: np.ndarray) -> list[tuple]:
    """Rows (grid_code, role, active, since) in the preset's exact proportions.

    Every grid has a leader; a few grids (``unstaffed_share``) have no full-time worker;
    extra leaders and full-time workers go to the most populous grids; part-time workers
    follow population.
    """
    rng = stream(layout.seed, "network")
    preset = layout.preset
    n = layout.n_grids
    weights = population.astype(float)
    leaders = 1 + _spread(rng, preset.leaders - n, weights**1.5)
    unstaffed = rng.choice(n, max(1, round(preset.unstaffed_share * n)), replace=False)
    staffed = np.ones(n, bool)
    staffed[unstaffed] = False
    full_time = staffed.astype(np.int64)
    full_time[staffed] += _spread(
        rng, preset.full_time - int(staffed.sum()), weights[staffed] ** 1.5
    )
    part_time = _spread(rng, preset.part_time, weights)
    start = dt.date(2016, 1, 1).toordinal()
    end = (preset.end - dt.timedelta(days=30)).toordinal()
    rows: list[tuple] = []
    for role, counts in (("leader", leaders), ("full_time", full_time), ("part_time", part_time)):
        grid = np.repeat(np.arange(n), counts)
        since = rng.integers(start, end, len(grid))
        rows.extend(
            (layout.grid_codes[g], role, True, dt.date.fromordinal(int(s)))
            for g, s in zip(grid, since, strict=True)
        )
    return rows


def _statuses(rng: np.random.Generator, urban: np.ndarray, counts: tuple[int, int, int]):
    """Statuses for units, urban ones built first: (status, rank) per unit."""
    built, under_construction, required = counts
    if built + under_construction + required != len(urban):
        raise ValueError("facility counts must cover every unit")
    order = np.argsort(-(urban + rng.normal(0, 0.25, len(urban))), kind="stable")
    status = np.empty(len(urban), dtype=object)
    status[order[:built]] = "built"
    status[order[built : built + under_construction]] = "under_construction"
    status[order[built + under_construction :]] = "required"
    rank = np.empty(len(urban), np.int64)
    rank[order] = np.arange(len(urban))
    return status, rank


def facilities(layout: Layout) -> list[tuple]:
    """Rows (unit_code, kind, status, rating, video_linked): a center (联动分中心) per
    town, a linkage station (联动站) per village, statuses in the preset's numbers."""
    rng = stream(layout.seed, "network")
    rng = np.random.default_rng(rng.integers(2**63))
    preset = layout.preset
    v_urban = np.bincount(layout.grid_village, weights=layout.urban) / np.bincount(
        layout.grid_village
    )
    t_urban = np.bincount(layout.village_town, weights=v_urban) / np.bincount(layout.village_town)
    rows: list[tuple] = []
    for codes, urban, counts, kind, video in (
        (layout.town_codes, t_urban, preset.town_centers, "center", preset.town_video),
        (
            layout.village_codes,
            v_urban,
            preset.village_stations,
            "linkage_station",
            preset.village_video,
        ),
    ):
        status, rank = _statuses(rng, urban, counts)
        ratings = np.round(np.clip(rng.normal(86, 6, len(codes)), 60, 100), 1)
        for i, code in enumerate(codes):
            built = status[i] == "built"
            rows.append(
                (
                    code,
                    kind,
                    status[i],
                    float(ratings[i]) if built else None,
                    bool(built and rank[i] < video),
                )
            )
    return rows
