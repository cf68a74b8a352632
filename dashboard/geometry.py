"""The map's geometry route: ``/dashboard/geometry/<level>/<parent>.json``.

Served with an ETag and a short private cache lifetime, so the browser fetches each level's
shapes once and plotly.js keeps them for the page's life; scoped to the logged-in user.
"""

from __future__ import annotations

import flask

from dashboard import client


def register(server: flask.Flask) -> None:
    """Add the geometry route to the Dash app's Flask server."""

    @server.get("/geometry/<level>/<parent>.json")
    def geometry(level: str, parent: str) -> flask.Response:
        who = client.principal()
        if who is None:
            return flask.Response('{"detail":"log in first"}', 401, mimetype="application/json")
        found = client.display_geometry(who, parent, level)
        if found is None:
            body = f'{{"detail":"no unit {parent!r} in your jurisdiction"}}'
            return flask.Response(body, 404, mimetype="application/json")
        headers = {"ETag": found.etag, "Cache-Control": "private, max-age=300"}
        if flask.request.headers.get("If-None-Match") == found.etag:
            return flask.Response(status=304, headers=headers)
        return flask.Response(found.body, 200, headers=headers, mimetype="application/geo+json")
