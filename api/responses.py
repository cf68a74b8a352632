"""JSON responses serialised with orjson (numpy numbers and dates included)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class ORJSONResponse(JSONResponse):
    """``application/json`` rendered by orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=ORJSON_OPTIONS)


class GeoJSONResponse(ORJSONResponse):
    """``application/geo+json`` rendered by orjson."""

    media_type = "application/geo+json"
