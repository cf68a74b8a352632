"""The metro preset carries the prefecture-level figures of the issue's table, checked on
its layout, shapes and grid network (its five million cases are not written here: the
metro benchmark database is checked in the bench)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import shapely

from seed.bursts import planted_bursts
from seed.cases import build_model
from seed.geometry import build_geometry
from seed.layout import make_layout
from seed.network import facilities, grid_population, grid_workers

# the metro table: what a real prefecture-level city reports
TABLE = {"districts": 10, "towns": 104, "villages": 2236, "grids": 8820}
WORKERS = {"leader": 9604, "full_time": 9316, "part_time": 63563}
CENTERS = {"built": 71, "under_construction": 33}
STATIONS = {"built": 1803, "under_construction": 430}


def within(value: float, target: float, share: float = 0.02) -> bool:
    return abs(value - target) <= share * target


@pytest.fixture(scope="module")
def metro():
    layout = make_layout("metro", 1)
    geometry = build_geometry(layout)
    population, _ = grid_population(layout, geometry.grid_area_km2)
    return layout, geometry, population


def test_units_per_level_match_the_table(metro) -> None:
    layout, _, _ = metro
    counts = {
        "districts": len(layout.district_codes),
        "towns": len(layout.town_codes),
        "villages": len(layout.village_codes),
        "grids": len(layout.grid_codes),
    }
    for level, target in TABLE.items():
        assert within(counts[level], target), level
    city = layout.preset.city_code
    for codes, parents, length in (
        (layout.district_codes, [city] * len(layout.district_codes), 6),
        (layout.town_codes, layout.town_parent_codes(), 9),
        (layout.village_codes, [layout.town_codes[t] for t in layout.village_town], 12),
        (layout.grid_codes, [layout.village_codes[v] for v in layout.grid_village], 15),
    ):
        assert len(set(codes)) == len(codes)
        for code, parent in zip(codes, parents, strict=True):
            assert len(code) == length and code.isdigit() and code.startswith(parent[:4])
            assert length == 6 or code.startswith(parent)
    assert all(n.endswith(("区", "县")) for n in layout.district_names)


def test_grid_network_matches_the_table(metro) -> None:
    layout, _, population = metro
    workers = grid_workers(layout, population)
    roles = Counter(row[1] for row in workers)
    for role, target in WORKERS.items():
        assert within(roles[role], target), role
    staffed = {row[0] for row in workers if row[1] == "full_time"}
    unstaffed = len(layout.grid_codes) - len(staffed)
    assert 0 < unstaffed < 0.03 * len(layout.grid_codes)
    rows = facilities(layout)
    centers = Counter(r[2] for r in rows if r[1] == "center")
    stations = Counter(r[2] for r in rows if r[1] == "linkage_station")
    for status, target in CENTERS.items():
        assert within(centers[status], target), status
    for status, target in STATIONS.items():
        assert within(stations[status], target), status
    assert sum(r[4] for r in rows if r[1] == "center") == centers["built"]  # all linked


def test_history_expects_five_million_cases_over_three_years(metro) -> None:
    layout, geometry, population = metro
    model = build_model(
        layout,
        geometry.grids,
        np.arange(len(layout.grid_codes)),
        population,
        planted_bursts("metro", 1),
        "Asia/Shanghai",
    )
    assert len(model.days) >= 3 * 365
    expected = np.einsum("d,dc,gc->", model.time_factor, model.cat_factor, model.weights)
    expected += sum(rates.sum() * (d1 - d0) for _, _, d0, d1, rates in model.bursts)
    assert expected >= 5_000_000


def test_metro_shapes_look_real(metro) -> None:
    _, geometry, _ = metro
    assert sum(len(p.interiors) for p in geometry.city.geoms) >= 1  # a lake
    villages = geometry.villages
    assert (shapely.get_num_geometries(villages) == 2).sum() >= 10  # villages in two parts
    vertices = shapely.get_num_coordinates(villages)
    assert 150 <= vertices.mean() <= 1000  # a few hundred per village
    assert shapely.is_valid(geometry.towns).all()
    assert shapely.coverage_is_valid(geometry.towns)
