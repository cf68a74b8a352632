"""``/dashboard/``: lands on the user's root unit (the server redirects; this page covers
client-side navigation to the root path)."""

import dash
from dash import dcc, html

from dashboard import client

dash.register_page(__name__, path="/", title="治理 Zhili")


def layout(**_query: str) -> html.Div:
    """A redirect to the root unit's page (or to the login)."""
    who = client.principal()
    target = "/login" if who is None else f"/unit/{who.unit_code}"
    return html.Div(
        dcc.Location(id="home-redirect", href=dash.get_relative_path(target)), id="home"
    )
