"""Choropleth: the units of a level under a parent with a metric, its count, previous value,
change, low-count flag and class, as GeoJSON (pre-serialised display geometry spliced in
with orjson, never re-serialised per request) or as CSV / GeoPackage for download."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import orjson
from cachetools import LRUCache
from sqlalchemy.orm import Session

from api.engine.periods import Period
from api.engine.service import (
    MetricsError,
    Query,
    describe_query,
    figure_columns,
    resolve_query,
    rows_of,
)
from api.engine.spliced import (
    DECIMALS,
    FeatureOpenings,
    collection_head,
    splice,
    splice_gzip,
    splice_zlib,
    tails_of,
)
from api.engine.state import State
from api.engine.units import UnderKey

SCHEMES = ("quantiles", "natural_breaks", "equal_interval", "fixed")


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
    if scheme not in SCHEMES:
        raise MetricsError(f"bad classes {scheme!r}: use {', '.join(SCHEMES)}")
    if not 2 <= k <= 12:
        raise MetricsError("k (number of classes) must be between 2 and 12")
    import mapclassify

    given = np.array(values, dtype=float)  # None → NaN
    missing = np.isnan(given)
    have = given[~missing]
    solid = given[~missing & ~np.asarray(low, dtype=bool)]
    y, ordered = solid, np.sort(solid)
    if _distinct(ordered) < k:
        y, ordered = have, np.sort(have)
    if scheme == "fixed":
        if not fixed:
            raise MetricsError("classes=fixed needs breaks=b1,b2,... (ascending upper bounds)")
        if any(b >= c for b, c in itertools.pairwise(fixed)):
            raise MetricsError("breaks must be strictly ascending")
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


@dataclass
class ChoroplethTable:
    """The units shown (code indexes) and their figures as columns, ``class`` included."""

    state: State
    query: Query
    level: str
    shown: list[int]
    columns: dict[str, list]
    bounds: list[float]

    def rows(self) -> list[dict]:
        """One dict per unit: its summary, then the columns (classes as integers)."""
        classes = [None if np.isnan(c) else int(c) for c in self.columns["class"].tolist()]
        return rows_of(self.state, self.shown, {**self.columns, "class": classes})


def choropleth_table(
    session: Session,
    parent: str,
    level: str | None,
    scheme: str = "quantiles",
    k: int = 5,
    fixed: list[float] | None = None,
    **params,
) -> ChoroplethTable:
    """The units of ``level`` (default: the next level down) under ``parent`` with the
    metric of ``params`` and each value's class."""
    state, q = resolve_query(session, **params)
    u = state.units
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
    for name, column in columns.items():  # as the GeoJSON writes them (see spliced)
        if column.dtype.kind == "f":
            columns[name] = np.round(column, DECIMALS)
    bounds, classes = class_indexes(columns["value"], columns["low_count"], scheme, k, fixed)
    columns["class"] = classes
    return ChoroplethTable(state, q, level, shown, columns, bounds)


def choropleth_rows(
    session: Session,
    parent: str,
    level: str | None,
    scheme: str = "quantiles",
    k: int = 5,
    fixed: list[float] | None = None,
    **params,
) -> tuple[State, Query, str, list[dict], list[float]]:
    """(state, query, level, rows with ``class``, class upper bounds)."""
    t = choropleth_table(session, parent, level, scheme, k, fixed, **params)
    return t.state, t.query, t.level, t.rows(), t.bounds


_OPENINGS: LRUCache = LRUCache(64)
SPLICERS = {None: splice, "gzip": splice_gzip, "deflate": splice_zlib}


def spliced_collection(
    table: ChoroplethTable,
    layer_key: tuple,
    fragments: dict[str, bytes],
    meta: dict,
    encoding: str | None = None,
) -> bytes:
    """``feature_collection`` of the table's rows, spliced from feature openings built once
    per display layer (``layer_key``: what identifies the layer's geometry), in the
    ``Content-Encoding`` asked: None (plain), ``gzip`` or ``deflate`` (zlib, the cheapest)."""
    u = table.state.units
    key = (u.version, *layer_key)
    openings = _OPENINGS.get(key)
    if openings is None:  # the units shown are fixed by the key: (level, parent, layer)
        static = {u.codes[i]: u.summaries[i].as_dict() for i in table.shown}
        openings = _OPENINGS[key] = FeatureOpenings(static, fragments)
    tails = tails_of(list(table.columns), list(table.columns.values()))
    return SPLICERS[encoding](collection_head(meta), openings, tails)


def feature_collection(rows: list[dict], fragments: dict[str, bytes], meta: dict) -> bytes:
    """GeoJSON bytes: each row's properties with its pre-serialised geometry spliced in."""
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


def meta_of(q: Query, parent: str, level: str, scheme: str, bounds: list[float]) -> dict:
    info = describe_query(q)
    return {
        "parent": parent,
        "level": level,
        "metric": info["metric"]["id"],
        "metric_info": info["metric"],
        "period": info["period"],
        "compare": q.compare,
        "previous_period": info["previous_period"],
        "classes": scheme,
        "breaks": bounds,
    }


__all__ = [
    "Period",
    "choropleth_rows",
    "choropleth_table",
    "class_breaks",
    "class_indexes",
    "feature_collection",
    "meta_of",
    "spliced_collection",
]
