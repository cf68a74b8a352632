"""The level picker: which level a unit's map shows (its children, or any level below:
from the city every village or every grid). It writes ``show=<level>`` into the URL
(client-side, ``zhiliViews.levelToUrl``); the page is drawn from the URL, and a click on a
shape still drills down (a unit with no such level below maps its children)."""

from __future__ import annotations

from dash import dcc, html

from dashboard.components.words import w

LEVEL_PICKER = "unit-level-picker"


def level_picker(levels: list[tuple[str, str, str]], shown: str | None, lang: str) -> html.Div:
    """A dropdown of ``levels`` ((code, zh, en), shallowest first) with ``shown`` picked."""
    if len(levels) < 2:  # only the children: nothing to pick
        return html.Div(id=f"{LEVEL_PICKER}-box")
    options = [{"label": en if lang == "en" else zh, "value": code} for code, zh, en in levels]
    return html.Div(
        [
            html.Label(w("map_level", lang), htmlFor=LEVEL_PICKER),
            dcc.Dropdown(
                id=LEVEL_PICKER,
                options=options,
                value=shown or levels[0][0],
                clearable=False,
                searchable=False,
                style={"width": "9em"},
            ),
        ],
        id=f"{LEVEL_PICKER}-box",
        className="level-picker control",
    )
