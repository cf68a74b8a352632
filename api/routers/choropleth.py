"""Choropleth: a level's units under a parent with a metric and class breaks, as GeoJSON
(for the map) or CSV / GeoPackage (for download, audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import Reader, SessionDep, check_scope
from api.errors import ApiError
from api.metrics.choropleth import choropleth_rows, feature_collection, meta_of
from api.routers.metric_params import Params, answer
from api.services.audit import audit_export
from api.services.scope import trim_above

router = APIRouter(tags=["maps"])

MEDIA = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
}


def _fixed_breaks(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise ApiError(400, f"bad breaks {text!r}: give numbers separated by commas") from None


@router.get("/choropleth")
def choropleth(
    request: Request,
    session: SessionDep,
    user: Reader,
    params: Params,
    parent: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    format: Annotated[Literal["geojson", "csv", "gpkg"], Query()] = "geojson",
    classes: Annotated[str, Query(max_length=24)] = "quantiles",
    k: Annotated[int, Query(ge=2, le=12)] = 5,
    breaks: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The units of ``level`` under ``parent`` (default: the caller's root; level: the
    next one down) with the metric, its count, previous value, change, low-count flag and
    class (quantiles | natural_breaks | equal_interval | fixed with breaks=)."""
    parent_unit = check_scope(session, user, parent or user.unit_code)
    _state, q, level, rows, bounds = answer(
        choropleth_rows,
        session,
        parent_unit.code,
        level,
        classes,
        k,
        _fixed_breaks(breaks),
        **params.values,
    )
    # rows are flat and lie below ``parent`` (in scope): only the caller's own home unit
    # could name the unit above it (what trim_above blanks), without walking every row
    rows = [trim_above(r, user.unit_code) if r["code"] == user.unit_code else r for r in rows]
    meta = meta_of(q, parent_unit.code, level, classes, bounds)
    from geo.display import display_layer

    layer = display_layer(
        session, level, parent_unit.code, cache_dir=request.app.state.settings.cache_dir
    )
    if format == "geojson":
        body = feature_collection(rows, layer.fragments, meta)
        # the dashboard draws its maps in-process: a GeoJSON fetched here, by token or by a
        # session's export link, is an export like the others
        _audit(session, user, meta, format, len(rows))
        return Response(body, media_type=MEDIA[format])
    import geopandas as gpd
    import shapely

    from geo.export import export_bytes

    geoms = [
        shapely.from_geojson(layer.fragments[r["code"]]) if r["code"] in layer.fragments else None
        for r in rows
    ]
    frame = gpd.GeoDataFrame([_flat(r, meta) for r in rows], geometry=geoms, crs="EPSG:4326")
    name = f"{level}_{meta['metric']}_{meta['period']['start']}_{meta['period']['end']}"
    body = export_bytes(frame, format, layer=name)
    _audit(session, user, meta, format, len(rows))
    return Response(
        body,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'},
    )


def _flat(row: dict, meta: dict) -> dict:
    keep = [
        "code",
        "name",
        "level",
        "parent_code",
        "value",
        "numerator",
        "denominator",
        "count",
        "low_count",
        "ci_low",
        "ci_high",
        "previous",
        "change",
        "class",
    ]
    out = {k: row.get(k) for k in keep}
    out["metric"] = meta["metric"]
    out["start"], out["end"] = meta["period"]["start"], meta["period"]["end"]
    return out


def _audit(session, user, meta: dict, fmt: str, rows: int) -> None:
    audit_export(
        session,
        user,
        level=meta["level"],
        parent=meta["parent"],
        metric=meta["metric"],
        start=meta["period"]["start"],
        end=meta["period"]["end"],
        fmt=fmt,
        rows=rows,
        via=user.via,
    )
    session.commit()
