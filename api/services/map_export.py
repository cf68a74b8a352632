"""A map as a file: the units of a level under a parent with a metric and its classes, as
GeoJSON, CSV or GeoPackage — what ``GET /api/v1/choropleth`` and ``zhili export`` give.
Every export is audited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session

from api.metrics.choropleth import choropleth_rows, feature_collection, meta_of
from api.services.audit import audit_export
from api.services.auth import Principal
from api.services.scope import trim_above

Format = Literal["geojson", "csv", "gpkg"]
MEDIA = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
}
COLUMNS = ("code", "name", "level", "parent_code", "value", "numerator", "denominator",
           "count", "low_count", "ci_low", "ci_high", "previous", "change", "class")  # fmt: skip


@dataclass(frozen=True)
class MapFile:
    body: bytes
    media_type: str
    filename: str
    rows: int


def export_map(
    session: Session,
    principal: Principal | None,
    parent: str,
    level: str | None,
    fmt: Format,
    classes: str = "quantiles",
    k: int = 5,
    breaks: list[float] | None = None,
    cache_dir: Path | None = None,
    **metric: Any,
) -> MapFile:
    """The map of ``level`` under ``parent`` (already checked to be in the caller's scope;
    ``principal`` None is the command line) with ``metric`` (metric, start, end, period,
    compare, smooth, min_denominator). Raises the engine's MetricsError on a bad request."""
    from geo.display import display_layer

    _state, q, level, rows, bounds = choropleth_rows(
        session, parent, level, classes, k, breaks, **metric
    )
    if principal is not None:
        # rows lie below ``parent``: only the caller's own home unit can name the unit
        # above it (what trim_above blanks)
        home = principal.unit_code
        rows = [trim_above(r, home) if r["code"] == home else r for r in rows]
    meta = meta_of(q, parent, level, classes, bounds)
    layer = display_layer(session, level, parent, cache_dir=cache_dir)
    name = f"{level}_{meta['metric']}_{meta['period']['start']}_{meta['period']['end']}"
    if fmt == "geojson":
        body = feature_collection(rows, layer.fragments, meta)
    else:
        import geopandas as gpd
        import shapely

        from geo.export import export_bytes

        geoms = [
            shapely.from_geojson(layer.fragments[r["code"]]) if r["code"] in layer.fragments
            else None
            for r in rows
        ]  # fmt: skip
        frame = gpd.GeoDataFrame([_flat(r, meta) for r in rows], geometry=geoms, crs="EPSG:4326")
        body = export_bytes(frame, fmt, layer=name)
    audit_export(
        session,
        principal,
        level=meta["level"],
        parent=meta["parent"],
        metric=meta["metric"],
        start=meta["period"]["start"],
        end=meta["period"]["end"],
        fmt=fmt,
        rows=len(rows),
        via=principal.via if principal else "cli",
    )
    return MapFile(body, MEDIA[fmt], f"{name}.{fmt}", len(rows))


def _flat(row: dict, meta: dict) -> dict:
    out = {k: row.get(k) for k in COLUMNS}
    out["metric"] = meta["metric"]
    out["start"], out["end"] = meta["period"]["start"], meta["period"]["end"]
    return out
