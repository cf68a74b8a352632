"""Special populations (特殊人群): monthly counts per village or grid, department and group,
as the departments deliver them (``population_count``, current rows only) — never a person.

Each row is dated at noon of its month's first day, so a month's figures are the sum of
the current rows of that month. Groups are data (``population_group``) with a kind: persons
of a special group (registered 登记, under management 在管, visited or helped 走访/帮扶, lost
contact 失联), the floating population (流动人口), rental housing units (出租房屋) and the
villages' education and help stations (帮扶站).

Counts of persons are protected (``api.engine.disclosure``): suppressed from 1 to 4 with
complementary suppression, published per calendar month only. Rental units and help
stations count no persons and are shown as they are.
"""

from __future__ import annotations

from api.engine.domain import FactDomain, Metric, Protection, Source, Tally

CURRENT = "is_current"


def _of(kind: str, column: str):
    def sql(_d) -> str:
        return f"CASE WHEN {CURRENT} AND kind = '{kind}' THEN {column} ELSE 0 END"

    return sql


def _reports(_d) -> str:
    return f"CASE WHEN {CURRENT} THEN 1 ELSE 0 END"


def _stations_open(_d) -> str:
    return f"CASE WHEN {CURRENT} AND kind = 'help_station' AND registered > 0 THEN 1 ELSE 0 END"


PROTECTED = (
    "special_under_management",
    "special_visited",
    "special_lost_contact",
    "floating_population",
)

# fmt: off
POPULATIONS = FactDomain(
    name="special_populations",
    source=Source("population_count", leaf="leaf_unit_id", date="counted_at"),
    measures=(
        Tally("population_reports", _reports),  # rows delivered: where there is data
        Tally("special_registered", _of("person", "registered")),
        Tally("special_under_management", _of("person", "under_management")),
        Tally("special_visited", _of("person", "visited")),
        Tally("special_lost_contact", _of("person", "lost_contact")),
        Tally("floating_population", _of("floating", "registered")),
        Tally("rental_units", _of("rental", "registered")),
        Tally("help_stations_reported", _of("help_station", "1")),
        Tally("help_stations_open", _stations_open),
    ),
    protection=Protection(
        PROTECTED,
        linked={
            "special_visited": "special_under_management",
            "special_lost_contact": "special_under_management",
        },
    ),
    metrics=(
        Metric("special_under_management", "在管特殊人群", "Special groups under management",
               "人", "special_under_management", None, "integer", None, "populations",
               "count"),
        Metric("visit_coverage_rate", "走访帮扶覆盖率",
               "Visited or helped in the month / under management", "%", "special_visited",
               "special_under_management", "percent", True, "populations", "proportion"),
        Metric("lost_contact_rate", "失联率", "Lost contact / under management", "%",
               "special_lost_contact", "special_under_management", "percent", False,
               "populations", "proportion"),
        Metric("floating_population", "登记流动人口", "Registered floating population", "人",
               "floating_population", None, "integer", None, "populations", "count"),
        Metric("floating_per_100", "每百名常住人口流动人口",
               "Floating population per 100 residents", "人/百人", "floating_population",
               "population", "decimal1", None, "populations", "per_capita", scale=100),
        Metric("rental_units_per_grid", "网格平均出租房屋", "Rental housing units per grid",
               "套/网格", "rental_units", "grids", "decimal1", None, "populations", "ratio"),
        Metric("help_station_coverage", "帮扶站覆盖率",
               "Villages with an education and help station", "%", "help_stations_open",
               "help_stations_reported", "percent", True, "populations", "proportion"),
    ),
)
# fmt: on
