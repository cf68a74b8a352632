"""Component ids, named once (a string typed twice is a bug waiting)."""

from __future__ import annotations

# app shell
NAV = "nav-location"  # a Location the pages write to when they navigate
SHOWN = "unit-shown"  # which unit page the browser shows: {code, lang, map}

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
SMOOTH = "unit-smooth"
LANG = "unit-lang"
KPIS = "unit-kpis"
TREND = "unit-trend"
BREAKDOWN_CATEGORY = "unit-breakdown-category"
BREAKDOWN_CHANNEL = "unit-breakdown-channel"
RANKING = "unit-ranking"
RANKING_CSV = "unit-ranking-csv"  # the ranking's CSV button
RANKING_DOWNLOAD = "unit-ranking-download"
CASES = "unit-cases"
EXPORT_GEOJSON = "export-geojson"
EXPORT_CSV = "export-csv"
EXPORT_GPKG = "export-gpkg"
DETAIL = "unit-detail"
STATE = "unit-state"
HEADER = "unit-header"
PROBLEM = "unit-problem"  # on a page that shows a message instead of the map
ALERTS_BOX = "unit-alerts-box"
DRAWN = "unit-drawn"  # the page state once its map is drawn: the rest fills after
TREND_BOX = "unit-trend-box"
BREAKDOWN_CATEGORY_BOX = "unit-breakdown-category-box"
BREAKDOWN_CHANNEL_BOX = "unit-breakdown-channel-box"
BREAKDOWN_THIRD_BOX = "unit-breakdown-third-box"  # a metric's third breakdown (events: shift)
RANKING_BOX = "unit-ranking-box"
PATTERN_BOX = "unit-pattern-box"
CASES_BOX = "unit-cases-box"

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
