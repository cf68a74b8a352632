"""Display boundaries: simplified GeoJSON per level, under a parent, cached with ETags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import Reader, SessionDep
from api.errors import ApiError
from api.services.display import children_level, display_layer
from api.services.scope import check_scope
from api.services.units import level_depths

router = APIRouter(tags=["boundaries"])

CACHE_CONTROL = "private, max-age=60, must-revalidate"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/boundaries",
    responses={200: {"content": {"application/geo+json": {}}}, 304: {"description": "unchanged"}},
)
def boundaries(
    request: Request,
    session: SessionDep,
    user: Reader,
    parent: Annotated[str | None, Query(max_length=32, description="default: your unit")] = None,
    level: Annotated[str | None, Query(max_length=32, description="default: the children")] = None,
) -> Response:
    """Display GeoJSON of the units of ``level`` under ``parent`` (default: the children of
    ``parent``), simplified as a coverage; a leaf above ``level`` stands in for its missing
    children. Send ``If-None-Match`` with the last ETag to get a 304 when unchanged."""
    unit = check_scope(session, user, parent or user.unit_code)
    if level is not None and level not in level_depths(session):
        known = ", ".join(level_depths(session))
        raise ApiError(400, f"unknown level {level!r}: use one of {known}")
    level = level or children_level(session, unit.code) or unit.level
    layer = display_layer(session, level, unit.code, cache_dir=request.app.state.settings.cache_dir)
    headers = {"ETag": layer.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _etag_matches(request.headers.get("if-none-match"), layer.etag):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        body = layer.gzipped()
    else:
        body = layer.feature_collection_bytes
    return Response(body, media_type="application/geo+json", headers=headers)
