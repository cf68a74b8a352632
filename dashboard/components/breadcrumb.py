"""The breadcrumb 市 › 镇 › 村 › 网格: each ancestor a link one click up."""

from __future__ import annotations

from dash import dcc, html


def breadcrumb(trail: list[tuple[str, str]], current: str, element_id: str) -> html.Nav:
    """``trail``: (name, href) of each ancestor, root first; ``current``: this unit's name."""
    parts: list = []
    for name, href in trail:
        parts.append(dcc.Link(name, href=href, className="crumb"))
        parts.append(html.Span("›", className="crumb-sep"))
    parts.append(html.Span(current, className="crumb current"))
    return html.Nav(parts, className="breadcrumb", id=element_id)
