"""Choropleth: a level's units under a parent with a metric and class breaks, as GeoJSON
(for the map) or CSV / GeoPackage (for download, audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import Reader, SessionDep, check_scope
from api.errors import ApiError
from api.routers.metric_params import Params, answer
from api.services.map_export import export_map

router = APIRouter(tags=["maps"])


def _fixed_breaks(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise ApiError(400, f"bad breaks {text!r}: give numbers separated by commas") from None


def _content_encoding(request: Request) -> str | None:
    """``deflate`` if the client takes it (browsers, curl, GDAL, QGIS: the cheapest body to
    splice, see ``api.engine.spliced``), else ``gzip`` if it takes that, else None."""
    accepted = set()
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, weight = coding.partition(";")
        try:
            quality = float(weight.partition("=")[2]) if weight.strip() else 1.0
        except ValueError:
            continue
        if quality > 0:
            accepted.add(name.strip().lower())
    return next((c for c in ("deflate", "gzip") if c in accepted), None)


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
    exported = answer(
        export_map,
        session,
        user,
        parent_unit.code,
        level,
        format,
        classes,
        k,
        _fixed_breaks(breaks),
        cache_dir=request.app.state.settings.cache_dir,
        encoding=_content_encoding(request) if format == "geojson" else None,
        **params.values,
    )
    session.commit()  # the audit entry
    headers = {"Vary": "Accept-Encoding"}
    if exported.encoding:  # spliced from pre-compressed pieces: the middleware leaves it
        headers["Content-Encoding"] = exported.encoding
    if format != "geojson":
        headers["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    return Response(exported.body, media_type=exported.media_type, headers=headers)
