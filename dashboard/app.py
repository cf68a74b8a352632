"""Create the Dash app (Flask under the hood, mounted into the ASGI app at /dashboard/)."""

from __future__ import annotations

from pathlib import Path

import dash
import flask
from dash import Dash, dcc, html

from api.settings import Settings
from dashboard import ids

HERE = Path(__file__).parent


def create_dash(settings: Settings) -> Dash:
    """The Dash app for ``settings``; every asset is served locally (no CDN)."""
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        requests_pathname_prefix="/dashboard/",
        routes_pathname_prefix="/",
        serve_locally=True,
        title="治理 Zhili",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    app.server.config["ZHILI_SETTINGS"] = settings
    app.layout = html.Div(
        [dcc.Location(id=ids.NAV, refresh="callback-nav"), dash.page_container], id="zhili-root"
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

    return app
