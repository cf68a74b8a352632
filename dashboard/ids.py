"""Component ids, named once (a string typed twice is a bug waiting)."""

from __future__ import annotations

# app shell
NAV = "nav-location"  # a Location the pages write to when they navigate

# unit page
UNIT_PAGE = "unit-page"
MAP = "unit-map"
LEGEND = "unit-legend"
BREADCRUMB = "unit-breadcrumb"
METRIC = "unit-metric"
PERIOD = "unit-period"
DATES = "unit-dates"
COMPARE = "unit-compare"
METHOD = "unit-method"
KEEP_BREAKS = "unit-keep-breaks"
LANG = "unit-lang"
KPIS = "unit-kpis"
TREND = "unit-trend"
BREAKDOWN_CATEGORY = "unit-breakdown-category"
BREAKDOWN_CHANNEL = "unit-breakdown-channel"
RANKING = "unit-ranking"
CASES = "unit-cases"
EXPORT_GEOJSON = "export-geojson"
EXPORT_CSV = "export-csv"
EXPORT_GPKG = "export-gpkg"
DETAIL = "unit-detail"
STATE = "unit-state"

# wall page
WALL = "wall-page"
WALL_MAP = "wall-map"
WALL_KPIS = "wall-kpis"
WALL_TREND = "wall-trend"
WALL_TITLE = "wall-title"
WALL_ASOF = "wall-asof"
WALL_TICK = "wall-tick"
WALL_CLOCK = "wall-clock"
WALL_STATE = "wall-state"
WALL_LEGEND = "wall-legend"
