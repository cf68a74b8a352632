"""Figures → what the components draw, shared by the unit page and the wall."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dashboard import client
from dashboard.components.choropleth import LOW_COUNT, NO_DATA, MapItem
from dashboard.components.kpi import Kpi
from dashboard.i18n import format_change, format_count, format_value, t
from dashboard.state import MapView, month_end, month_start

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
    """The registry's metrics the viewer may read, by id (the special-population
    figures only with the permission)."""
    return {m.id: m for m in client.readable_catalog(client.principal())}


def publishable(view: MapView, metric: client.MetricInfo | None) -> MapView:
    """``view`` with a period its metric is published for (``month_view`` with the
    months it has figures for)."""
    monthly = bool(metric and metric.per_month)
    return month_view(view, metric, client.published_months(view.metric) if monthly else [])


def month_view(view: MapView, metric: client.MetricInfo | None, months: list[dt.date]) -> MapView:
    """``view`` with a period its metric is published for. A per-month metric (special
    populations) gets one whole calendar month (``period=YYYY-MM``): the month the view
    names or whose days it covers when it has figures, else the last complete month with
    figures (``months``: those it has, oldest first). Any other metric given a month
    shows it as a custom period (its control has no month presets)."""
    first = month_start(view.period)
    if metric is None or not metric.per_month:
        if first is None:
            return view
        return view.with_(period="custom", start=first, end=month_end(first))
    if first is not None and (first in months or not months):
        return view
    if view.period == "custom" and view.start and view.end:
        inside = view.start.replace(day=1)
        if inside in months and view.end <= month_end(inside):
            return view.with_(period=inside.strftime("%Y-%m"), start=None, end=None)
    last = client.last_day()
    complete = [m for m in months if month_end(m) <= last] or months
    before = (last.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    pick = complete[-1] if complete else before  # nothing delivered: shown as no data
    return view.with_(period=pick.strftime("%Y-%m"), start=None, end=None)


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
        if f.suppressed:  # a small count of persons: greyed, "<5", never a number
            value_text = client.suppressed_label()
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
                # a suppressed figure reads "<5" in the table and its CSV, never 0 or blank
                "value": value_text if f.suppressed else f.value,
                "value_text": value_text,
                "count": f.count,
                "previous": f.previous,
                "low_count": f.low_count,
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


def kpis(
    who: client.Principal,
    view: MapView,
    metrics: dict[str, client.MetricInfo],
    extra: Sequence[str] = (),
) -> list[Kpi]:
    """The KPI cards' figures for the view's unit itself, over its (resolved) period: the
    headline metrics, then ``extra`` ones asked for (a wall's events: on-scene rate...)."""
    wanted = [m for m in KPI_METRICS if m in metrics]
    wanted += [m for m in extra if m in metrics and m not in wanted]
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


MAP_WIDTH = 900  # px: about the map's width beside its legend on a 1600 px screen


def projected(extent: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """The extent's width and height in a local Mercator (longitude degrees), and the
    factor that turns a latitude difference into it."""
    x0, y0, x1, y1 = extent
    stretch = 1 / max(math.cos(math.radians((y0 + y1) / 2)), 0.1)
    return max(x1 - x0, 1e-6), max((y1 - y0) * stretch, 1e-6), stretch


def map_height(
    extent: tuple[float, float, float, float] | None, low: int = 480, high: int = 760
) -> int:
    """The map's height in px for shapes of ``extent``: as tall as their shape asks at
    ``MAP_WIDTH``, so a compact city or a tall town fills its panel."""
    if extent is None:
        return 600
    width, height, _ = projected(extent)
    return int(min(max(MAP_WIDTH * height / width, low), high))


def above_label(
    extent: tuple[float, float, float, float] | None, size: tuple[int, int], font: int = 12
) -> float:
    """Degrees of latitude that put a marker just above a name written at ``font`` px on
    a map of ``size`` px showing ``extent`` (0 without an extent)."""
    if extent is None:
        return 0.0
    width, height, stretch = projected(extent)
    scale = min(size[0] / width, size[1] / height)
    return (font * 1.6) / scale / stretch


def label_points(
    labels: list[tuple[str, str, float, float, float]],
    limit: int = 60,
    extent: tuple[float, float, float, float] | None = None,
    size: tuple[int, int] = (MAP_WIDTH, 600),
    font: int = 12,
) -> dict[str, tuple[float, float, bool]]:
    """Names worth writing: the larger units first, each only where its name does not
    run into a name already written (its box estimated at ``font`` px on a map of
    ``size`` px showing ``extent``); without an extent, the larger ones of many (a unit
    must hold at least a third of an equal share of the area)."""
    if not labels:
        return {}
    share = 1 / len(labels)
    fitting = sorted((lab for lab in labels if lab[4] >= share / 3), key=lambda lab: -lab[4])
    if extent is None:
        named = {lab[0] for lab in fitting[:limit]}
    else:
        width, height, stretch = projected(extent)
        scale = min(size[0] / width, size[1] / height)  # px per projected degree
        placed: list[tuple[float, float, float, float]] = []
        named = set()
        for code, name, lon, lat, _ in sorted(labels, key=lambda lab: -lab[4]):
            if len(named) >= limit:
                break
            x, y = lon * scale, lat * stretch * scale
            half_w, half_h = (len(name) * font + 4) / 2, (font * 1.3 + 2) / 2
            box = (x - half_w, y - half_h, x + half_w, y + half_h)
            if any(
                box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
            ):
                continue
            placed.append(box)
            named.add(code)
    return {code: (lon, lat, code in named) for code, _, lon, lat, _ in labels}


EXTENSIONS = {"geojson": "geojson", "csv": "csv", "gpkg": "gpkg"}


def file_name(unit_name: str, view: MapView, fmt: str, what: str = "") -> str:
    """A download's file name: unit, metric, period and extension
    (``沙溪镇_320599103_caseload_2026-01-01_2026-10-31.geojson``)."""
    period = f"{view.start}_{view.end}" if view.start and view.end else view.period
    parts = [unit_name, view.code, view.metric, period, what]
    stem = "_".join(p for p in parts if p)
    safe = "".join("-" if c in '\\/:*?"<>|' else c for c in stem)
    return f"{safe}.{EXTENSIONS.get(fmt, fmt)}"


def ranking_csv_text(rows: list[dict], view: MapView) -> str:
    """The ranking's rows as CSV: rank, code, name, the value, its count, the previous
    period's value and low-count flag, as numbers (an empty cell: no figure)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "code", "name", view.metric, "count", "previous", "low_count"])
    for r in rows:
        writer.writerow(
            [
                "" if r["rank"] is None else r["rank"],
                r["code"],
                r["name"],
                _number(r["value"]),
                _number(r["count"]),
                _number(r.get("previous")),
                int(bool(r.get("low_count"))),
            ]
        )
    return out.getvalue()


def _number(value: float | str | None) -> str:
    if isinstance(value, str):  # "<5": a suppressed figure
        return value
    if value is None or value != value:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
