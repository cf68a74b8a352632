"""Choropleth: the units of a level under a parent with a metric, its count, previous value,
change, low-count flag and class, as GeoJSON (pre-serialised display geometry embedded by
orjson, never re-serialised per request) or as CSV / GeoPackage for download."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import orjson
from sqlalchemy.orm import Session

from api.engine.query import (
    MapQuery,
    MetricQuery,
    MetricsError,
    ResolvedQuery,
    check_classes,
)
from api.engine.service import figure_columns, python_values, rows_of
from api.engine.state import State, engine_state
from api.engine.units import UnderKey
from geo.geojson import DECIMALS


def class_breaks(
    values: list[float | None],
    low: list[bool],
    scheme: str = "quantiles",
    k: int = 5,
    fixed: list[float] | None = None,
) -> tuple[list[float], list[int | None]]:
    """Upper bounds of the classes (mapclassify) and each value's class (None: no value).
    Breaks are computed over the values that are not low-count (all values when fewer
    than ``k`` remain); every value is then placed by the same bounds."""
    bounds, found = class_indexes(values, low, scheme, k, fixed)
    return bounds, [None if np.isnan(c) else int(c) for c in found.tolist()]


def class_indexes(
    values: list[float | None] | np.ndarray,
    low: list[bool] | np.ndarray,
    scheme: str = "quantiles",
    k: int = 5,
    fixed: list[float] | None = None,
) -> tuple[list[float], np.ndarray]:
    """``class_breaks`` with the classes as floats, NaN where there is no value."""
    check_classes(scheme, k, tuple(fixed) if fixed else None)
    import mapclassify

    given = np.array(values, dtype=float)  # None → NaN
    missing = np.isnan(given)
    have = given[~missing]
    solid = given[~missing & ~np.asarray(low, dtype=bool)]
    y, ordered = solid, np.sort(solid)
    if _distinct(ordered) < k:
        y, ordered = have, np.sort(have)
    if scheme == "fixed":
        bounds = list(fixed)
        if len(have) and have.max() > bounds[-1]:
            bounds.append(float(have.max()))
    elif len(y) == 0:
        return [], np.full(len(given), np.nan)
    else:
        k = max(1, min(k, _distinct(ordered)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if k == 1:
                bounds = [float(y.max())]
            elif scheme == "quantiles":
                bounds = _quantile_bounds(ordered, k)
            elif scheme == "equal_interval":
                bounds = list(mapclassify.EqualInterval(y, k=k).bins)
            else:
                state = np.random.get_state()
                np.random.seed(0)  # k-means starts: the same data gives the same breaks
                try:
                    bounds = list(mapclassify.NaturalBreaks(y, k=k).bins)
                finally:
                    np.random.set_state(state)
    bounds = [float(b) for b in bounds]
    top = len(bounds) - 1
    found = np.minimum(np.searchsorted(bounds, given - 1e-12, side="left"), top).astype(float)
    found[missing] = np.nan
    return bounds, found


def _distinct(ordered: np.ndarray) -> int:
    """How many distinct values a sorted array holds."""
    return int(len(ordered) and 1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


def _quantile_bounds(ordered: np.ndarray, k: int) -> list[float]:
    """``mapclassify.classifiers.quantile(y, k)`` (the bins of ``Quantiles``), with all
    its percentiles read off one sort instead of one sort each (scipy sorts per call)."""
    from scipy import stats

    w = 100.0 / k  # mapclassify's own percentiles, to the last bit
    p = np.arange(w, 100 + w, w)
    if p[-1] > 100.0:
        p[-1] = 100.0
    return np.unique(stats.scoreatpercentile(ordered, p)).tolist()


@dataclass(frozen=True)
class ChoroplethTable:
    """A map's figures: the units shown (code indexes, sorted by code) under the map's
    parent at its level, and their figures as columns in that order, ``class`` included,
    with the classes' upper bounds."""

    state: State
    query: ResolvedQuery
    map_query: MapQuery  # parent and level set
    shown: list[int]
    columns: dict[str, np.ndarray]
    bounds: list[float]

    @property
    def level(self) -> str:
        return self.map_query.level

    @property
    def parent(self) -> str:
        return self.map_query.parent

    def rows(self) -> list[dict]:
        """One dict per unit: its summary, then the columns (classes as integers)."""
        return rows_of(self.state, self.shown, {**self.columns, "class": self.column("class")})

    def column(self, name: str) -> list:
        """One column in the order of ``shown``, as Python values (None: no value; classes
        as integers): what a map reads without a dict per unit."""
        if name == "class":
            classes = self.columns["class"]
            out = np.full(len(classes), None, dtype=object)
            have = ~np.isnan(classes)
            out[have] = classes[have].astype(np.int64).tolist()
            return out.tolist()
        if name in ("code", "name"):
            found = self.state.units.codes if name == "code" else self.state.units.name
            return [found[i] for i in self.shown]
        return python_values(self.columns[name])

    def meta(self) -> dict:
        """What the map's file says of itself: parent, level, metric, period, comparison,
        classes and their upper bounds."""
        info = self.query.describe()
        return {
            "parent": self.parent,
            "level": self.level,
            "metric": info["metric"]["id"],
            "metric_info": info["metric"],
            "period": info["period"],
            "compare": self.query.compare,
            "previous_period": info["previous_period"],
            "base_partial": info["base_partial"],
            "data_coverage": info["data_coverage"],
            "classes": self.map_query.classes,
            "breaks": self.bounds,
        }


def choropleth_table(session: Session, map_query: MapQuery, query: MetricQuery) -> ChoroplethTable:
    """The units of ``map_query.level`` (default: the next level down) under
    ``map_query.parent`` with the metric of ``query`` and each value's class."""
    state = engine_state(session)
    q = query.resolve(state)
    u = state.units
    parent = map_query.parent
    if parent is None:
        raise MetricsError("a map needs a parent unit: give parent=")
    level = map_query.level
    parent_depth = u.depth.get(u.level[u.index[parent]], 0)
    if level is None:
        deeper = [lv for lv in u.levels if u.depth[lv] == parent_depth + 1]
        if not deeper:
            raise MetricsError(f"unit {parent!r} is at the deepest level: give level=")
        level = deeper[0]
    if level not in u.depth:
        raise MetricsError(f"unknown level {level!r}; levels: {', '.join(u.levels)}")
    if u.depth[level] <= parent_depth:
        raise MetricsError(
            f"level {level!r} is not below the parent's level {u.level[u.index[parent]]!r}"
        )
    under = UnderKey(parent, level)
    shown = u.under(under)
    columns = figure_columns(state, q, shown, u.index[parent], under)
    for name, column in columns.items():  # as every file of the map says them
        if column.dtype.kind == "f":
            columns[name] = np.round(column, DECIMALS)
    fixed = list(map_query.breaks) if map_query.breaks else None
    # smooth=eb: the map shows the smoothed rates, which small counts no longer unsettle
    smoothed = columns.get("smoothed") if q.smooth == "eb" else None
    values = columns["value"] if smoothed is None else smoothed
    low = columns["low_count"] if smoothed is None else np.zeros(len(values), dtype=bool)
    bounds, classes = class_indexes(values, low, map_query.classes, map_query.k, fixed)
    columns["class"] = classes
    return ChoroplethTable(state, q, replace(map_query, level=level), shown, columns, bounds)


# ---------------------------------------------------------------- GeoJSON


def feature_collection(rows: list[dict], fragments: dict[str, bytes], meta: dict) -> bytes:
    """GeoJSON bytes: each row's properties with its pre-serialised geometry (display
    geometry, RFC 7946) embedded as it is, never parsed again. Every grid of a metro city
    (8,820 features, 6.6 MB) takes about 20 ms; compression is the app's middleware's."""
    features = [
        {
            "type": "Feature",
            "id": r["code"],
            "geometry": orjson.Fragment(fragments[r["code"]]) if r["code"] in fragments else None,
            "properties": r,
        }
        for r in rows
    ]
    return orjson.dumps(
        {"type": "FeatureCollection", **meta, "features": features},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


__all__ = [
    "ChoroplethTable",
    "choropleth_table",
    "class_breaks",
    "class_indexes",
    "feature_collection",
]
