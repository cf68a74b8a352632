"""The OpenAPI 3.0 definition of the OGC API - Features service (hand-written: FastAPI
emits 3.1, the OGC conformance class asks for 3.0)."""

from __future__ import annotations


def _param(name: str, where: str, schema: dict, description: str, required: bool = False):
    return {
        "name": name,
        "in": where,
        "required": required,
        "schema": schema,
        "description": description,
        **({"style": "form", "explode": False} if where == "query" else {}),
    }


def openapi_document(base: str, levels: list[str], metrics: list[str] | None = None) -> dict:
    """The definition for a service at ``base`` with one collection per level, whose items
    may carry the figures of one of ``metrics`` over a period."""
    json_ok = {"200": {"description": "OK", "content": {"application/json": {}}}}
    geo_ok = {"200": {"description": "OK", "content": {"application/geo+json": {}}}}
    errors = {
        "400": {"description": "Bad request (unknown or invalid query parameter)"},
        "401": {"description": "Authentication required (Authorization: Bearer <token>)"},
        "404": {"description": "Not found in your jurisdiction"},
    }
    collection = _param("collectionId", "path", {"type": "string", "enum": levels}, "A level", True)
    feature = _param(
        "featureId", "path", {"type": "string"}, "Unit code (code@YYYY-MM-DD: past version)", True
    )
    items_params = [
        collection,
        _param("limit", "query", {"type": "integer", "minimum": 1, "default": 100},
               "Page size (values above 1000 are clamped to 1000)"),
        _param("offset", "query", {"type": "integer", "minimum": 0, "default": 0},
               "Features to skip"),
        _param("bbox", "query", {"type": "array", "items": {"type": "number"},
                                 "minItems": 4, "maxItems": 6},
               "minLon,minLat,maxLon,maxLat (CRS84)"),
        _param("datetime", "query", {"type": "string"},
               "Instant or interval a/b (.. open): unit versions valid then"),
        _param("metric", "query", {"type": "string", "enum": metrics or []},
               "A metric (GET /api/v1/metrics): each unit's value, numerator, denominator, "
               "count, low_count and interval join its properties"),
        _param("start", "query", {"type": "string", "format": "date"},
               "With metric: the period's first day, YYYY-MM-DD"),
        _param("end", "query", {"type": "string", "format": "date"},
               "With metric: the period's last day (inclusive)"),
        _param("period", "query", {"type": "string"},
               "With metric, instead of start/end: 2026, 2026-Q3, 2026-10, 2026-W05, last-30d"),
        _param("compare", "query", {"type": "string", "enum": ["yoy", "prev"]},
               "With metric: previous value and change against the year before (同比) or "
               "the period before (环比)"),
    ]  # fmt: skip

    def op(op_id: str, summary: str, responses: dict, params=None) -> dict:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "parameters": params or [],
                "responses": {**responses, **errors},
            }
        }

    return {
        "openapi": "3.0.3",
        "info": {"title": "Zhili 治理 OGC API - Features", "version": "1.0"},
        "servers": [{"url": base}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/": op("landing", "Landing page", json_ok),
            "/conformance": op("conformance", "Conformance classes", json_ok),
            "/api": op("api", "This definition", json_ok),
            "/collections": op("collections", "One collection per level", json_ok),
            "/collections/{collectionId}": op(
                "collection", "A level's collection", json_ok, [collection]
            ),
            "/collections/{collectionId}/items": op(
                "items", "Units of the level in your jurisdiction", geo_ok, items_params
            ),
            "/collections/{collectionId}/items/{featureId}": op(
                "item", "One unit", geo_ok, [collection, feature]
            ),
        },
    }
