"""OGC API - Features (Part 1: Core, GeoJSON, OpenAPI 3.0) over the levels, at /ogc.

Every collection is a level; its items are the units of that level in the caller's subtree
(current versions, or the versions valid during ``datetime``). QGIS and GDAL (``OAPIF:``)
read it with the same bearer token as the API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import numpy as np
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.deps import Reader, SessionDep
from api.engine import (
    REGISTRY,
    MapQuery,
    MetricQuery,
    MetricsError,
    choropleth_table,
    unit_values,
)
from api.errors import ApiError
from api.ogc.features import level_features, select_features
from api.ogc.openapi import openapi_document
from api.services.populations import audit_read, check_metric_access
from api.services.units import list_levels

router = APIRouter(prefix="/ogc", tags=["ogc"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
GEOJSON = "application/geo+json"
JSON = "application/json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _json(content: object, media: str = JSON) -> Response:
    return Response(orjson.dumps(content), media_type=media)


def _only(request: Request, allowed: set[str]) -> None:
    """400 for a query parameter the endpoint does not know (OGC API - Features: 400)."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: "
            + (", ".join(sorted(allowed)) or "none"),
        )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


@router.get("", include_in_schema=True)
@router.get("/", include_in_schema=False)  # /ogc/ is the landing page too, not a redirect
def landing(request: Request, user: Reader) -> Response:
    """Landing page: links to the API definition, conformance and collections."""
    _only(request, {"f"})
    base = _base(request)
    return _json(
        {
            "title": "Zhili 治理 — OGC API - Features",
            "description": "Administrative units by level (city, town, village, grid).",
            "links": [
                {"href": base, "rel": "self", "type": JSON, "title": "this document"},
                {
                    "href": f"{base}/api",
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                    "title": "the API definition",
                },
                {"href": f"{base}/conformance", "rel": "conformance", "type": JSON},
                {"href": f"{base}/collections", "rel": "data", "type": JSON},
            ],
        }
    )


@router.get("/conformance")
def conformance(request: Request, user: Reader) -> Response:
    """The conformance classes implemented."""
    _only(request, {"f"})
    return _json({"conformsTo": CONFORMANCE})


@router.get("/api")
def api_definition(request: Request, session: SessionDep, user: Reader) -> Response:
    """The OpenAPI 3.0 definition of this service."""
    _only(request, {"f"})
    levels = [lv.code for lv in list_levels(session)]
    return Response(
        orjson.dumps(openapi_document(_base(request), levels, list(REGISTRY))),
        media_type="application/vnd.oai.openapi+json;version=3.0",
    )


def _collection(session, request: Request, user, level) -> dict:
    units, feats = level_features(session, level.code)
    idx = select_features(units, feats, user.unit_code, None, None)
    boxes = feats.bboxes[idx]
    boxes = boxes[~np.isnan(boxes[:, 0])]
    extent = (
        [[float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
          float(boxes[:, 3].max())]]
        if len(boxes)
        else [[-180.0, -90.0, 180.0, 90.0]]
    )  # fmt: skip
    base = _base(request)
    return {
        "id": level.code,
        "title": f"{level.name_zh} {level.name_en}",
        "description": f"Units at level {level.code} (depth {level.depth})",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": extent, "crs": CRS84}},
        "links": [
            {"href": f"{base}/collections/{level.code}", "rel": "self", "type": JSON},
            {
                "href": f"{base}/collections/{level.code}/items",
                "rel": "items",
                "type": GEOJSON,
                "title": f"{level.name_en} units",
            },
        ],
    }


def _level(session, code: str):
    for level in list_levels(session):
        if level.code == code:
            return level
    raise ApiError(404, f"no collection {code!r}; collections are the levels")


@router.get("/collections")
def collections(request: Request, session: SessionDep, user: Reader) -> Response:
    """One collection per level."""
    _only(request, {"f"})
    base = _base(request)
    return _json(
        {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": JSON}],
            "collections": [_collection(session, request, user, lv) for lv in list_levels(session)],
        }
    )


@router.get("/collections/{level}")
def collection(
    request: Request, session: SessionDep, user: Reader, level: Annotated[str, Path()]
) -> Response:
    """One level's collection description (``metric`` and its period are taken, for a GIS
    that opens the collection with them and asks its items with the same query)."""
    _only(request, {"f", *FIGURE_PARAMS})
    return _json(_collection(session, request, user, _level(session, level)))


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise ApiError(400, f"bad bbox {text!r}: minLon,minLat,maxLon,maxLat") from None
    if len(parts) == 6:
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise ApiError(400, f"bad bbox {text!r}: minLon,minLat,maxLon,maxLat")
    return parts[0], parts[1], parts[2], parts[3]


def _instant(text: str) -> dt.date | None:
    text = text.strip()
    if text in ("..", ""):
        return None
    try:
        if "T" in text or " " in text:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, f"bad datetime {text!r}: RFC 3339 (2026-01-01T00:00:00Z), a date or a/b"
        ) from None


def _when(text: str | None) -> tuple[dt.date | None, dt.date | None] | None:
    if not text:
        return None
    if "/" in text:
        a, _, b = text.partition("/")
        lo, hi = _instant(a), _instant(b)
        if lo and hi and lo > hi:
            raise ApiError(400, f"bad datetime {text!r}: the interval ends before it starts")
        return lo, hi
    day = _instant(text)
    return day, day


def _feature(feats, i: int, root: str) -> bytes:
    """Feature ``i`` as served to a caller whose home unit is ``root``: the home unit's own
    ``parent_code`` (the one code above the caller's subtree) is blanked."""
    body = feats.features[i]
    if feats.codes[i] != root:
        return body
    feature = orjson.loads(body)
    feature["properties"]["parent_code"] = None
    return orjson.dumps(feature)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"bad {name} {raw!r}: a whole number") from None
    if value < (1 if name == "limit" else 0):
        raise ApiError(400, f"bad {name} {raw!r}: too small")
    return value


@router.get("/collections/{level}/items")
def items(
    request: Request, session: SessionDep, user: Reader, level: Annotated[str, Path()]
) -> Response:
    """Units of the level in the caller's subtree: ``limit`` (clamped to 1000), ``offset``,
    ``bbox``, ``datetime``; exact numberMatched / numberReturned; next/prev links. With
    ``metric`` (``start``/``end`` or ``period``, ``compare``): each unit's figures too."""
    _only(request, {"limit", "offset", "bbox", "datetime", "f", *FIGURE_PARAMS})
    lv = _level(session, level)
    figures = _figures(request, session, user, lv.code)
    limit = min(_int(request, "limit", DEFAULT_LIMIT), MAX_LIMIT)
    offset = _int(request, "offset", 0)
    bbox = _bbox(request.query_params.get("bbox"))
    when = _when(request.query_params.get("datetime"))
    units, feats = level_features(session, lv.code)
    idx = select_features(units, feats, user.unit_code, bbox, when)
    page = idx[offset : offset + limit]
    base = f"{_base(request)}/collections/{lv.code}/items"
    keep = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}

    def link(rel: str, at: int) -> dict:
        query = urlencode({**keep, "limit": limit, "offset": at})
        return {"href": f"{base}?{query}", "rel": rel, "type": GEOJSON}

    links = [link("self", offset)]
    if offset + len(page) < len(idx):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    body = orjson.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": len(idx),
            "numberReturned": len(page),
            "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": links,
            "features": [
                orjson.Fragment(_with_figures(_feature(feats, i, user.unit_code), figures))
                for i in page
            ],
        }
    )
    return Response(body, media_type=GEOJSON)


FIGURE_PARAMS = ("metric", "start", "end", "period", "compare")
FIGURE_KEYS = ("value", "numerator", "denominator", "count", "low_count", "ci_low", "ci_high",
               "previous", "change", "change_pct", "base_partial", "suppressed")  # fmt: skip


@dataclass(frozen=True)
class ItemFigures:
    """A metric's figures for the units of a collection, by code, and what they are."""

    about: dict
    by_code: dict[str, dict]


def _figures(request: Request, session, user, level: str) -> ItemFigures | None:
    """With ``metric=`` (and ``start``/``end``, ``period``, ``compare`` as the API takes
    them): the metric for every unit of ``level`` in the caller's subtree, so that a GIS
    loads a layer with its figures (None without ``metric``)."""
    asked = {k: request.query_params.get(k) for k in FIGURE_PARAMS}
    if not asked["metric"]:
        if any(asked.values()):
            raise ApiError(400, "start, end, period and compare go with metric=")
        return None
    # a special-population figure: only with the permission, every read audited (as the API)
    check_metric_access(user, asked["metric"])
    audit_read(session, user, asked["metric"], request.url.path, dict(request.query_params))
    settings = request.app.state.settings
    query = MetricQuery(
        asked["metric"], asked["start"], asked["end"], asked["period"], asked["compare"],
        min_denominator=settings.min_denominator,
    )  # fmt: skip
    home = user.unit_code
    try:
        table = choropleth_table(session, MapQuery(home, level), query)
        rows = table.rows()
        about = table.meta()
        about = {"metric": about["metric"], "period": about["period"],
                 "previous_period": about["previous_period"]}  # fmt: skip
    except MetricsError:  # the home unit's own level (or one above it: no units in scope)
        rows = [unit_values(session, home, [query.metric], query)[query.metric]]
        about = {"metric": query.metric}
    by_code = {r["code"]: {k: r[k] for k in FIGURE_KEYS if k in r} for r in rows}
    return ItemFigures(about, by_code)


def _with_figures(feature: bytes, figures: ItemFigures | None) -> bytes:
    """The feature with the metric's figures among its properties (null where the unit
    has none: a past version, or no data)."""
    if figures is None:
        return feature
    out = orjson.loads(feature)
    mine = figures.by_code.get(out["properties"]["code"], {})
    period = figures.about.get("period") or {}
    out["properties"] |= {
        "metric": figures.about["metric"],
        "period_start": period.get("start"),
        "period_end": period.get("end"),
        **{k: mine.get(k) for k in FIGURE_KEYS},
    }
    return orjson.dumps(out)


@router.get("/collections/{level}/items/{code}")
def item(
    request: Request,
    session: SessionDep,
    user: Reader,
    level: Annotated[str, Path()],
    code: Annotated[str, Path(max_length=48)],
) -> Response:
    """One unit (``code`` for the current version, ``code@YYYY-MM-DD`` for a past one)."""
    _only(request, {"f"})
    lv = _level(session, level)
    units, feats = level_features(session, lv.code)
    wanted, _, since = code.partition("@")
    idx = select_features(units, feats, user.unit_code, None, (None, None))
    for i in idx:
        if feats.codes[i] != wanted:
            continue
        current = feats.valid_to[i] is None
        if (since and feats.valid_from[i].isoformat() == since) or (not since and current):
            feature = orjson.loads(_feature(feats, i, user.unit_code))
            base = f"{_base(request)}/collections/{lv.code}"
            feature["links"] = [  # OGC API - Features, /req/core/f-links
                {"href": f"{base}/items/{code}", "rel": "self", "type": GEOJSON},
                {"href": base, "rel": "collection", "type": JSON, "title": lv.name_en},
            ]
            return Response(orjson.dumps(feature), media_type=GEOJSON)
    raise ApiError(404, f"no feature {code!r} in collection {lv.code!r} in your jurisdiction")
