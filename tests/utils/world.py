"""A tiny world with known answers: 1 city, 3 towns (one 街道 with no villages), 4 villages
(one with no grids), 6 grids. Boxes near lon 121, lat 31.5, so areas and containment are
easy to reason about in tests.

    city 320583 示范市                       121.0-121.3 × 31.4-31.6
      town 320583001 东镇   121.0-121.1        villages 001 (south), 002 (north), 2 grids each
      town 320583002 西镇   121.1-121.2        village 001 (south, no grids), 002 (north, 2 grids)
      town 320583003 城南街道 121.2-121.3      no villages
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from shapely.geometry import MultiPolygon, box
from sqlalchemy.orm import Session

from api.db.models import Facility, GridWorker
from api.services.units import CITY_TOWN_VILLAGE_GRID, UnitRecord, add_units, ensure_levels


def mbox(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    return MultiPolygon([box(x0, y0, x1, y1)])


@dataclass
class TinyWorld:
    city: str = "320583"
    towns: list[str] = field(default_factory=list)
    villages: list[str] = field(default_factory=list)
    grids: list[str] = field(default_factory=list)
    population: dict[str, int] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)

    @property
    def leaf_town(self) -> str:
        """The 街道 with no villages."""
        return self.towns[2]

    @property
    def leaf_village(self) -> str:
        """The village with no grids."""
        return self.villages[2]

    def new_town(
        self, bounds: tuple[float, float, float, float], valid_from: dt.date | None = None
    ) -> UnitRecord:
        """A fourth town, 320583009 新区, under the city within ``bounds`` (lon/lat min,
        max): what a test adds to see the boundaries change."""
        town = UnitRecord("320583009", "新区", "town", self.city, mbox(*bounds))
        if valid_from is not None:
            town.valid_from = valid_from
        return town


def build_tiny_world(session: Session) -> TinyWorld:
    """Write the tiny world (levels, units, ancestry, grid workers, facilities)."""
    ensure_levels(session, CITY_TOWN_VILLAGE_GRID)
    w = TinyWorld()
    records = [UnitRecord(w.city, "示范市", "city", None, mbox(121.0, 31.4, 121.3, 31.6))]
    town_names = ["东镇", "西镇", "城南街道"]
    grid_pop = 1000
    for t, name in enumerate(town_names):
        town = f"{w.city}{t + 1:03d}"
        w.towns.append(town)
        x0 = 121.0 + 0.1 * t
        records.append(UnitRecord(town, name, "town", w.city, mbox(x0, 31.4, x0 + 0.1, 31.6)))
        w.parent[town] = w.city
        if t == 2:
            w.population[town] = 5000
            records[-1].population = 5000
            continue
        for v in range(2):
            village = f"{town}{v + 1:03d}"
            w.villages.append(village)
            w.parent[village] = town
            y0 = 31.4 + 0.1 * v
            vrec = UnitRecord(
                village, f"{name}{'南北'[v]}村", "village", town, mbox(x0, y0, x0 + 0.1, y0 + 0.1)
            )
            records.append(vrec)
            if t == 1 and v == 0:  # a village with no grids
                vrec.population = 3000
                w.population[village] = 3000
                continue
            vrec.population = 0
            for g in range(2):
                grid = f"{village}{g + 1:03d}"
                w.grids.append(grid)
                w.parent[grid] = village
                grid_pop += 500
                gx = x0 + 0.05 * g
                records.append(
                    UnitRecord(
                        grid,
                        f"第{g + 1}网格",
                        "grid",
                        village,
                        mbox(gx, y0, gx + 0.05, y0 + 0.1),
                        population=grid_pop,
                    )
                )
                w.population[grid] = grid_pop
                vrec.population += grid_pop
            w.population[village] = vrec.population
    for town in w.towns:
        if town not in w.population:
            w.population[town] = sum(w.population[v] for v in w.villages if w.parent[v] == town)
        for r in records:
            if r.code == town:
                r.population = w.population[town]
    w.population[w.city] = sum(w.population[t] for t in w.towns)
    records[0].population = w.population[w.city]
    for r in records:
        r.households = r.population // 3 if r.population else None
        r.area_km2 = None
    add_units(session, records)

    for i, grid in enumerate(w.grids):
        session.add(GridWorker(grid_code=grid, role="leader"))
        session.add(GridWorker(grid_code=grid, role="part_time"))
        if i != 0:  # the first grid has no full-time worker
            session.add(GridWorker(grid_code=grid, role="full_time"))
    for t, town in enumerate(w.towns):
        session.add(Facility(unit_code=town, kind="center", status="built", video_linked=t < 2))
    for v, village in enumerate(w.villages):
        status = ("built", "built", "under_construction", "required")[v]
        session.add(
            Facility(
                unit_code=village,
                kind="linkage_station",
                status=status,
                video_linked=status == "built",
            )
        )
    session.flush()
    return w


# ---------------------------------------------------------------- a world with gaps


def east(lon: float, lat: float, metres: float) -> float:
    """The longitude ``metres`` east (west if negative) of a point, along the ground."""
    from pyproj import Geod

    x, _, _ = Geod(ellps="WGS84").fwd(lon, lat, 90 if metres >= 0 else 270, abs(metres))
    return float(x)


def north(lon: float, lat: float, metres: float) -> float:
    """The latitude ``metres`` north (south if negative) of a point, along the ground."""
    from pyproj import Geod

    _, y, _ = Geod(ellps="WGS84").fwd(lon, lat, 0 if metres >= 0 else 180, abs(metres))
    return float(y)


@dataclass(frozen=True)
class GapWorld:
    """One town of two villages of two grids each, with a gap and a sliver made on purpose
    (as boundary sets leave them), at lat 31.5:

        city 320584 = town 320584001       121.000 → x_end  × 31.500-31.510
          village …001: grids …001001 (121.000-121.005) | hairline gap (~9 cm) | …001002
          a sliver 150 m wide inside the town, in no village
          village …002: grids …002001 | …002002 (each 0.005° wide), from x_sliver_end
    """

    city: str
    town: str
    villages: tuple[str, str]
    grids: tuple[str, str, str, str]
    hairline_west: float  # the gap inside village 1: the east edge of grid 1 ...
    hairline_east: float  # ... and the west edge of grid 2
    sliver_west: float  # the east edge of village 1 (grid 2)
    sliver_east: float  # the west edge of village 2 (grid 3)
    east_edge: float
    south: float = 31.5
    north: float = 31.51
    mid_lat: float = 31.505
    west_edge: float = 121.0


def build_gap_world(session: Session, sliver_m: float = 150.0) -> GapWorld:
    """Write the world of ``GapWorld`` (levels, units, ancestry)."""
    ensure_levels(session, CITY_TOWN_VILLAGE_GRID)
    city, town = "320584", "320584001"
    villages = (f"{town}001", f"{town}002")
    grids = (f"{villages[0]}001", f"{villages[0]}002", f"{villages[1]}001", f"{villages[1]}002")
    s, n = 31.5, 31.51
    hairline = 1e-6  # degrees: about 9.5 cm of longitude here
    sliver_west = 121.01
    sliver_east = east(sliver_west, (s + n) / 2, sliver_m)
    east_edge = sliver_east + 0.01
    records = [
        UnitRecord(city, "缝隙市", "city", None, mbox(121.0, s, east_edge, n)),
        UnitRecord(town, "缝隙镇", "town", city, mbox(121.0, s, east_edge, n)),
        UnitRecord(villages[0], "西村", "village", town, mbox(121.0, s, sliver_west, n)),
        UnitRecord(villages[1], "东村", "village", town, mbox(sliver_east, s, east_edge, n)),
        UnitRecord(grids[0], "第1网格", "grid", villages[0], mbox(121.0, s, 121.005, n)),
        UnitRecord(
            grids[1], "第2网格", "grid", villages[0], mbox(121.005 + hairline, s, sliver_west, n)
        ),
        UnitRecord(
            grids[2], "第1网格", "grid", villages[1], mbox(sliver_east, s, sliver_east + 0.005, n)
        ),
        UnitRecord(
            grids[3], "第2网格", "grid", villages[1], mbox(sliver_east + 0.005, s, east_edge, n)
        ),
    ]
    for r in records:
        r.population = 1000
    add_units(session, records)
    session.flush()
    return GapWorld(
        city=city,
        town=town,
        villages=villages,
        grids=grids,
        hairline_west=121.005,
        hairline_east=121.005 + hairline,
        sliver_west=sliver_west,
        sliver_east=sliver_east,
        east_edge=east_edge,
    )
