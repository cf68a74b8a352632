"""Create the Dash app (Flask under the hood, mounted into the ASGI app at /dashboard/)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import dash
import flask
from dash import Dash, dcc, html

from api.settings import Settings
from dashboard import ids

HERE = Path(__file__).parent
# plotly.js with only the traces the dashboard draws (built by dashboard/plotly_bundle):
# a fifth of the full bundle to parse, which held the first map back by ~2 s.
PLOTLY_BUNDLE = "vendor/plotly-zhili-4.1.1.min.js"
# Dash's scripts need only the regenerator runtime of the Babel polyfill it ships (core-js
# for old browsers, ~0.5 s of a loaded CPU on each first load in Chromium).
REGENERATOR = "vendor/regenerator-runtime-0.14.1.js"
_POLYFILL_TAG = re.compile(r'<script src="[^"]*/deps/polyfill@[^"]*"></script>')
# Responses the server sends the same bytes for, again and again (the scripts, the map's
# geometry): compressed once and kept, not by the ASGI app's gzip on every request.
_PACKED_PREFIXES = ("/_dash-component-suites/", "/assets/", "/geometry/")
_PACKED_TYPES = {
    "application/javascript",
    "text/javascript",
    "text/css",
    "application/json",
    "application/geo+json",
}
_PACKED: dict[tuple[str, int, str], bytes] = {}
_PACKED_SIZE = 256


class _Dash(Dash):
    def interpolate_index(self, **kwargs: str) -> str:
        """The index page, with the regenerator runtime in the Babel polyfill's place."""
        tag = f'<script src="{self.get_asset_url(REGENERATOR)}"></script>'
        kwargs["scripts"] = _POLYFILL_TAG.sub(lambda _: tag, kwargs.get("scripts", ""), count=1)
        return super().interpolate_index(**kwargs)


def create_dash(settings: Settings) -> Dash:
    """The Dash app for ``settings``; every asset is served locally (no CDN)."""
    # With an intranet tile layer the map is a MapLibre subplot, which only the full
    # plotly.js bundle has: dcc.Graph loads that one itself when no ``Plotly`` is defined.
    bundle = {"src": f"/dashboard/assets/{PLOTLY_BUNDLE}", "defer": "defer"}
    scripts = [] if settings.tile_url else [bundle]
    app = _Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        assets_ignore=r"^(plotly-zhili|regenerator-runtime)-.*\.js$",  # named in the index
        external_scripts=scripts,
        requests_pathname_prefix="/dashboard/",
        routes_pathname_prefix="/",
        serve_locally=True,
        title="治理 Zhili",
        update_title=None,
        suppress_callback_exceptions=True,
        routing_callback_inputs={"shown_": dash.State(ids.SHOWN, "data")},
    )
    app.server.config["ZHILI_SETTINGS"] = settings
    app.layout = html.Div(
        [
            dcc.Location(id=ids.NAV, refresh="callback-nav"),
            dcc.Store(id=ids.SHOWN),
            dash.page_container,
        ],
        id="zhili-root",
    )

    from dashboard import geometry

    geometry.register(app.server)

    @app.server.before_request
    def land_on_root_unit() -> flask.Response | None:
        """``/dashboard/`` lands on the user's root unit (a real redirect, no history entry)."""
        if flask.request.path != "/":
            return None
        from dashboard import client

        who = client.principal()
        target = "login" if who is None else f"unit/{who.unit_code}"
        query = flask.request.query_string.decode()
        return flask.redirect(
            f"{flask.request.script_root}/{target}" + (f"?{query}" if query else "")
        )

    app.server.after_request(_packed)
    return app


def _packed(response: flask.Response) -> flask.Response:
    """Scripts, styles and geometry gzipped once and kept (by path, size and ETag)."""
    request = flask.request
    if (
        response.status_code != 200
        or not request.path.startswith(_PACKED_PREFIXES)
        or response.mimetype not in _PACKED_TYPES
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "")
    ):
        return response
    if request.path.startswith("/assets/vendor/"):  # versioned file names
        response.cache_control.public = True
        response.cache_control.max_age = 31536000
    response.direct_passthrough = False
    body = response.get_data()
    if len(body) < 1024:
        return response
    key = (request.full_path, len(body), response.headers.get("ETag", ""))
    packed = _PACKED.get(key)
    if packed is None:
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        if len(_PACKED) >= _PACKED_SIZE:
            _PACKED.pop(next(iter(_PACKED)))
        _PACKED[key] = packed
    response.set_data(packed)
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
