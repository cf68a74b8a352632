"""The worlds the seed can build, with the figures they must match.

``metro`` carries the figures a real prefecture-level city reports (8,820 grids, 9,604 grid
leaders, 9,316 full-time and 63,563 part-time grid workers; 104 town linkage sub-centers:
71 built, 33 under construction; 2,236 village linkage stations: 1,803 built, 430 under
construction). ``small`` scales these down to one county-level city. ``tiny`` is for tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from api.services.units import (
    CITY_DISTRICT_TOWN_VILLAGE_GRID,
    CITY_TOWN_VILLAGE_GRID,
    LevelSpec,
)

END_DATE = dt.date(2026, 10, 31)  # the last day of case history: tests do not drift


@dataclass(frozen=True)
class Preset:
    """What a world is made of; every count here is exact, cases are Poisson around it."""

    name: str
    city_code: str
    city_name: str
    levels: tuple[LevelSpec, ...]
    districts: int  # 0: no district level (city → town)
    towns: int
    villages: int
    grids: int
    radius_km: float
    population: int
    cases: int  # expected cases over the whole history, bursts aside
    days: int  # history length, ending on END_DATE
    spacing_km: float  # vertex spacing of the densified borders
    leaders: int
    full_time: int
    part_time: int
    unstaffed_share: float  # grids with no full-time worker
    town_centers: tuple[int, int, int]  # built, under construction, required
    village_stations: tuple[int, int, int]
    town_video: int
    village_video: int
    bursts: int
    exclaves: int  # villages made of two parts
    weak_towns: int  # towns with clearly worse mediation and slower handling
    hot_spots: int
    sub_centers: int
    end: dt.date = END_DATE

    @property
    def start(self) -> dt.date:
        """The first day of case history."""
        return self.end - dt.timedelta(days=self.days - 1)


METRO = Preset(
    name="metro",
    city_code="329900",
    city_name="海澜市",
    levels=CITY_DISTRICT_TOWN_VILLAGE_GRID,
    districts=10,
    towns=104,
    villages=2236,
    grids=8820,
    radius_km=46.0,
    population=6_400_000,
    cases=5_150_000,
    days=(END_DATE - dt.date(2023, 11, 1)).days + 1,  # three years
    spacing_km=0.035,
    leaders=9604,
    full_time=9316,
    part_time=63563,
    unstaffed_share=0.01,
    town_centers=(71, 33, 0),
    village_stations=(1803, 430, 3),
    town_video=71,
    village_video=1200,
    bursts=30,
    exclaves=16,
    weak_towns=6,
    hot_spots=24,
    sub_centers=9,
)


def _scaled(n: int, of: int, total: int) -> int:
    return round(total * n / of)


def _stations(villages: int) -> tuple[int, int, int]:
    """Village stations (built, under construction, required) in the metro preset's
    proportions."""
    built = _scaled(villages, METRO.villages, METRO.village_stations[0])
    required = _scaled(villages, METRO.villages, METRO.village_stations[2])
    return built, villages - built - required, required


SMALL = Preset(
    name="small",
    city_code="320599",
    city_name="澜江市",
    levels=CITY_TOWN_VILLAGE_GRID,
    districts=0,
    towns=8,
    villages=120,
    grids=900,
    radius_km=17.0,
    population=780_000,
    cases=60_000,
    days=365,
    spacing_km=0.04,
    leaders=_scaled(900, METRO.grids, METRO.leaders),
    full_time=_scaled(900, METRO.grids, METRO.full_time),
    part_time=_scaled(900, METRO.grids, METRO.part_time),
    unstaffed_share=0.01,
    town_centers=(8, 0, 0),  # all 8 towns linked to the city's video network
    village_stations=_stations(120),
    town_video=8,
    village_video=18,
    bursts=6,
    exclaves=3,
    weak_towns=2,
    hot_spots=6,
    sub_centers=3,
)

DEMO_START = dt.date(2024, 1, 1)  # two full calendar years before the last: 同比 shows
DEMO = replace(
    SMALL,
    name="demo",
    days=(END_DATE - DEMO_START).days + 1,
    cases=round(SMALL.cases * ((END_DATE - DEMO_START).days + 1) / SMALL.days),
)  # ``zhili demo``: the small city with history from 2024-01-01

TINY = Preset(
    name="tiny",
    city_code="320598",
    city_name="小澜市",
    levels=CITY_TOWN_VILLAGE_GRID,
    districts=0,
    towns=3,
    villages=12,
    grids=60,
    radius_km=5.0,
    population=60_000,
    cases=2_000,
    days=61,
    spacing_km=0.08,
    leaders=_scaled(60, METRO.grids, METRO.leaders),
    full_time=_scaled(60, METRO.grids, METRO.full_time),
    part_time=_scaled(60, METRO.grids, METRO.part_time),
    unstaffed_share=0.02,
    town_centers=(2, 1, 0),
    village_stations=_stations(12),
    town_video=2,
    village_video=3,
    bursts=1,
    exclaves=1,
    weak_towns=1,
    hot_spots=2,
    sub_centers=1,
)

PRESETS: dict[str, Preset] = {
    "small": SMALL,
    "demo": DEMO,
    "metro": METRO,
    "large": METRO,
    "tiny": TINY,
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``large`` is an alias of ``metro``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}"
        ) from None
