"""Figures → what the components draw, shared by the unit page and the wall."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard import client
from dashboard.components.choropleth import LOW_COUNT, NO_DATA, MapItem
from dashboard.components.kpi import Kpi
from dashboard.i18n import format_change, format_count, format_value, t
from dashboard.state import MapView

# The KPI cards, by registry id, in order (those the registry lacks are left out).
KPI_METRICS = (
    "caseload",
    "resolution_rate",
    "mediation_success_rate",
    "on_time_rate",
    "open_backlog",
    "grid_coverage",
    "station_build_rate",
)


@dataclass(frozen=True)
class MapModel:
    """Everything the map and its legend show for one metric and period."""

    items: list[MapItem]
    lower: float | None
    bounds: list[float]
    ranking: list[dict]


def catalog() -> dict[str, client.MetricInfo]:
    """The registry's metrics by id."""
    return {m.id: m for m in client.metric_catalog()}


def default_metric(metrics: dict[str, client.MetricInfo]) -> str:
    """The metric a page opens with: caseload when the registry has it."""
    if "caseload" in metrics or not metrics:
        return "caseload"
    return next(iter(metrics))


def map_model(
    figures: list[client.Figure],
    bounds: list[float],
    metric: client.MetricInfo | None,
    lang: str,
) -> MapModel:
    """Hover cards and ranking rows of the units on the map; low-count and no-data units
    are drawn apart from the classes."""
    fmt = metric.format if metric else "decimal2"
    best_high = metric is None or metric.higher_is_better is not False
    ranked = sorted(
        (f for f in figures if f.value is not None and not f.low_count),
        key=lambda f: (-f.value if best_high else f.value, f.code),
    )
    rank = {f.code: i + 1 for i, f in enumerate(ranked)}
    total = len(ranked)
    items, rows = [], []
    for f in figures:
        if f.value is None or f.klass is None:
            z = NO_DATA
        elif f.low_count:
            z = LOW_COUNT
        else:
            z = f.klass
        change = partial_change(f.base_partial, f.value, f.previous, fmt, lang)
        rank_text = t("rank_of", lang, rank=rank[f.code], total=total) if f.code in rank else "—"
        value_text = format_value(f.value, fmt, lang)
        items.append(
            MapItem(
                code=f.code,
                name=f.name,
                klass=z,
                value_text=value_text,
                count_text=format_count(f.count, lang),
                change_text=change,
                rank_text=rank_text,
            )
        )
        rows.append(
            {
                "rank": rank.get(f.code),
                "name": f.name,
                "code": f.code,
                "value": f.value,
                "value_text": value_text,
                "count": f.count,
                "change": change,
            }
        )
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["code"]))
    solid = [f.value for f in figures if f.value is not None and not f.low_count]
    lower = min(solid) if solid else None
    return MapModel(items, lower, bounds, rows)


def partial_change(
    base_partial: bool, value: float | None, previous: float | None, fmt: str, lang: str
) -> str:
    """The change, or "—" and 基期不完整 where the comparison base is not fully covered
    by data (the API gives no change then)."""
    if base_partial:
        return f"— ({t('base_partial', lang)})"
    return format_change(value, previous, fmt, lang)


def kpis(who: client.Principal, view: MapView, metrics: dict[str, client.MetricInfo]) -> list[Kpi]:
    """The KPI cards' figures for the view's unit itself, over its (resolved) period."""
    wanted = [m for m in KPI_METRICS if m in metrics]
    figures = client.unit_figures(who, view.code, wanted, view.start, view.end, view.compare)
    out = []
    for m in wanted:
        f = figures.get(m)
        info = metrics[m]
        out.append(
            Kpi(
                metric=m,
                label=info.label(view.lang),
                value=f.value if f else None,
                previous=f.previous if f else None,
                fmt=info.format,
                higher_is_better=info.higher_is_better,
                base_partial=bool(f and f.base_partial),
            )
        )
    return out


def label_points(
    labels: list[tuple[str, str, float, float, float]], limit: int = 60
) -> dict[str, tuple[float, float, bool]]:
    """Names worth writing: all of a few units, only the larger ones of many (a unit must
    hold at least a third of an equal share of the area)."""
    if not labels:
        return {}
    share = 1 / len(labels)
    fitting = sorted((lab for lab in labels if lab[4] >= share / 3), key=lambda lab: -lab[4])
    named = {lab[0] for lab in fitting[:limit]}
    return {code: (lon, lat, code in named) for code, _, lon, lat, _ in labels}
