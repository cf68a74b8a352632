"""The metric registry: one declaration per metric, the one source of what each figure is.

A rate at every level is Σ numerator / Σ denominator over the leaves below (never an
average of the children's rates). Numerators and denominators name *measures*:

- period measures, summed over the cases reported in the period (cohort):
  cases, serious_cases, closed, closed_on_time, disputes_closed, mediated,
  mediation_success, visited, evaluated, satisfied, satisfaction_sum;
- stock measures, taken at the period's last day: backlog (open cases), overdue (open
  cases past their deadline);
- network measures, the grid network as it is now: population, households, area_km2,
  grid_area_km2, grids, full_time, leaders, part_time, grids_without_full_time, stations,
  stations_built, stations_under_construction, centers, centers_built, facilities_built,
  facilities_video.

A metric with its own arithmetic (the ALERTS engineer's ``safety_index``) gives a
``compute`` function: it receives a ``MeasureFrame`` (``frame["cases"]`` → one float per unit
shown; any measure above) and returns ``(values, counts)``. Register it with
``register(Metric(...))`` at import of its module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import numpy as np

Kind = Literal["count", "stock", "proportion", "per_capita", "mean", "ratio", "percentile"]
Group = Literal["caseload", "resolution", "grid"]

PERIOD_MEASURES = (
    "cases",
    "serious_cases",
    "closed",
    "closed_on_time",
    "disputes_closed",
    "mediated",
    "mediation_success",
    "visited",
    "evaluated",
    "satisfied",
    "satisfaction_sum",
)
STOCK_MEASURES = ("backlog", "overdue")
NETWORK_MEASURES = (
    "population",
    "households",
    "area_km2",
    "grid_area_km2",
    "grids",
    "full_time",
    "leaders",
    "part_time",
    "grids_without_full_time",
    "stations",
    "stations_built",
    "stations_under_construction",
    "centers",
    "centers_built",
    "facilities_built",
    "facilities_video",
)


class MeasureFrame(Protocol):
    """Measures of the units shown, one float64 array each, in the order of the units."""

    def __getitem__(self, measure: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Metric:
    """One figure the product shows. ``value = scale × Σ numerator / Σ denominator``."""

    id: str
    label_zh: str
    label_en: str
    unit: str
    numerator: str
    denominator: str | None
    format: Literal["integer", "percent", "decimal1", "decimal2"]
    higher_is_better: bool | None
    group: Group
    kind: Kind
    scale: float = 1.0
    breakdowns: tuple[str, ...] = ()
    quantile: float | None = None
    compute: Callable[[MeasureFrame], tuple[np.ndarray, np.ndarray]] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def timed(self) -> bool:
        """True when the figure depends on the period (False for the grid network)."""
        return self.group != "grid"

    @property
    def is_rate(self) -> bool:
        return self.denominator is not None or self.kind == "percentile"

    def measures(self) -> tuple[str, ...]:
        """The measures this metric reads."""
        return tuple(m for m in (self.numerator, self.denominator) if m)

    def describe(self) -> dict:
        """The metric as the API lists it."""
        out = asdict(self)
        out.pop("compute")
        out["timed"] = self.timed
        return out


REGISTRY: dict[str, Metric] = {}
METRICS = REGISTRY  # the name the dashboard reads


def register(metric: Metric) -> Metric:
    """Add (or replace) a metric."""
    REGISTRY[metric.id] = metric
    return metric


def get_metric(metric_id: str) -> Metric:
    """The metric ``metric_id``; KeyError lists the known ids."""
    try:
        return REGISTRY[metric_id]
    except KeyError:
        raise KeyError(
            f"unknown metric {metric_id!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None


CAT_CHAN = ("category", "channel")
CAT_CHAN_STATUS = ("category", "channel", "status")

# fmt: off
for _m in (
    Metric("caseload", "案件量", "Caseload", "件", "cases", None, "integer", None,
           "caseload", "count", breakdowns=CAT_CHAN_STATUS),
    Metric("caseload_per_10k", "万人案件量", "Cases per 10,000 residents", "件/万人",
           "cases", "population", "decimal1", False, "caseload", "per_capita", 10_000,
           CAT_CHAN),
    Metric("serious_cases", "重点案件量", "Serious cases", "件", "serious_cases", None,
           "integer", False, "caseload", "count", breakdowns=CAT_CHAN),
    Metric("resolution_rate", "办结率", "Resolution rate", "%", "closed", "cases",
           "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
    Metric("mediation_rate", "调解率", "Mediation rate (of closed disputes)", "%",
           "mediated", "disputes_closed", "percent", True, "resolution", "proportion",
           breakdowns=CAT_CHAN),
    Metric("mediation_success_rate", "调解成功率", "Mediation success rate", "%",
           "mediation_success", "mediated", "percent", True, "resolution", "proportion",
           breakdowns=CAT_CHAN),
    Metric("on_time_rate", "按期办结率", "Closed by deadline", "%", "closed_on_time",
           "closed", "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
    Metric("overdue_open", "超期未办结", "Overdue open cases (at period end)", "件",
           "overdue", None, "integer", False, "resolution", "stock", breakdowns=("category",)),
    Metric("open_backlog", "积案量", "Open backlog (at period end)", "件", "backlog", None,
           "integer", False, "resolution", "stock", breakdowns=("category",)),
    Metric("median_days_to_close", "办结天数中位数", "Median days to close", "天",
           "closed", None, "integer", False, "resolution", "percentile", quantile=0.5),
    Metric("p90_days_to_close", "办结天数90分位", "90th percentile days to close", "天",
           "closed", None, "integer", False, "resolution", "percentile", quantile=0.9),
    Metric("visit_rate", "回访率", "Follow-up visit rate (访)", "%", "visited", "closed",
           "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
    Metric("satisfaction", "满意度评分", "Satisfaction score (评, 1-5)", "分",
           "satisfaction_sum", "evaluated", "decimal2", True, "resolution", "mean",
           breakdowns=CAT_CHAN),
    Metric("satisfaction_rate", "满意率", "Satisfied (rated 4-5, 评)", "%", "satisfied",
           "evaluated", "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
    Metric("grids", "网格数", "Grids", "个", "grids", None, "integer", None, "grid", "count"),
    Metric("grid_coverage", "网格覆盖率", "Grid coverage of area", "%", "grid_area_km2",
           "area_km2", "percent", True, "grid", "ratio"),
    Metric("residents_per_grid_worker", "专职网格员人均服务人口",
           "Residents per full-time grid worker", "人", "population", "full_time",
           "integer", False, "grid", "ratio"),
    Metric("households_per_grid_worker", "专职网格员人均服务户数",
           "Households per full-time grid worker", "户", "households", "full_time",
           "integer", False, "grid", "ratio"),
    Metric("full_time_grid_workers", "专职网格员", "Full-time grid workers", "人",
           "full_time", None, "integer", True, "grid", "count"),
    Metric("grids_without_full_time", "无专职网格员网格", "Grids without a full-time worker",
           "个", "grids_without_full_time", None, "integer", False, "grid", "count"),
    Metric("station_build_rate", "联动站建成率", "Linkage stations built / required", "%",
           "stations_built", "stations", "percent", True, "grid", "proportion"),
    Metric("stations_under_construction", "在建联动站", "Linkage stations under construction",
           "个", "stations_under_construction", None, "integer", None, "grid", "count"),
    Metric("center_coverage", "综治中心建成率", "Centers built / required", "%",
           "centers_built", "centers", "percent", True, "grid", "proportion"),
    Metric("video_link_coverage", "视频联网率", "Video-linked share of built centers and "
           "stations", "%", "facilities_video", "facilities_built", "percent", True, "grid",
           "proportion"),
):
    register(_m)
# fmt: on

# 平安指数: components, weights and scales in api/alerts/safety_index.toml (ALERTS)
from api.alerts.safety import safety_index_metric  # noqa: E402

register(safety_index_metric())
