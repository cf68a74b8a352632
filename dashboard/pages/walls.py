"""A composed wall ``/dashboard/wall/<name>`` (also ``/dashboard/wall?name=<name>``): see
``dashboard.components.composed_wall``. The default wall ``/dashboard/wall`` is unchanged."""

from __future__ import annotations

import dash

from dashboard.composed_wall import composed_layout

dash.register_page(__name__, path_template="/wall/<name>", title="治理 Zhili · 大屏")


def layout(name: str | None = None, **query: str):
    """The wall ``name`` for the logged-in user."""
    return composed_layout(name or "", "en" if query.get("lang") == "en" else "zh")
