"""The plain basemap: when the city has neither an intranet tile server (``ZHILI_TILE_URL``)
nor a tile file in its data folder, the map stands on its own imported boundaries.

Around the units shown, the viewer's other units are drawn in light grey, with their
place names: the units of the two levels below the viewer's home unit (a city's towns and
villages) that lie outside the unit shown. Only the viewer's own subtree is drawn (a
town's official sees no neighbouring town), from the same scoped geometry routes as the
map itself, so no request leaves the app. The map's view is the shown units' extent with
a margin, so the neighbours hold it in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.principal import Principal
from dashboard import client
from dashboard.views import label_points

MARGIN = 0.06  # of the shown extent, on each side (the shown units still fill the panel)
FILL = "#eeeeea"
LINE = "#c4c4c0"
FINE_LINE = "#d8d8d4"
NAME = "#8a8a86"


@dataclass(frozen=True)
class PlainBasemap:
    """What the map draws under the figures: per level, the geometry URL and the codes of
    the units drawn; place names at their points; the view box (lon/lat min, max)."""

    layers: list[tuple[str, list[str]]]
    names: list[tuple[str, float, float]]
    box: tuple[float, float, float, float]


def plain_basemap(who: Principal, code: str, level: str, font: int = 11) -> PlainBasemap | None:
    """The plain basemap of the map of ``code``'s units of ``level`` for ``who``; None when
    tiles are set up, when ``code`` is the viewer's home unit (nothing of theirs lies
    around it) or when there is nothing to draw."""
    if client.settings().tile_url or code == who.unit_code:
        return None
    home, unit = client.unit_view(who, who.unit_code), client.unit_view(who, code)
    shown = client.display_geometry(who, code, level)
    if home is None or unit is None or shown is None or shown.extent is None:
        return None
    x0, y0, x1, y1 = shown.extent
    dx, dy = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
    box = (x0 - dx, y0 - dy, x1 + dx, y1 + dy)
    reach = (box[0] - (box[2] - box[0]), box[1] - (box[3] - box[1]))
    reach += (box[2] + (box[2] - box[0]), box[3] + (box[3] - box[1]))
    near = {code, *(a.code for a in unit.ancestors)}
    below_unit = {lv for lv, _, _ in client.levels_below(unit.level)}
    layers: list[tuple[str, list[str]]] = []
    labels: list[tuple[str, str, float, float, float]] = []
    for base_level, _, _ in client.levels_below(home.level)[:2]:
        around = client.display_geometry(who, who.unit_code, base_level)
        if around is None:
            continue
        inside = set(near)
        if base_level in below_unit:
            under = client.display_geometry(who, code, base_level)
            inside |= {lab[0] for lab in under.labels} if under else set()
        # only the neighbours (a unit whose point lies within a box's width of the view):
        # at metro, a town's map does not draw the city's 2,236 villages
        kept = [
            lab
            for lab in around.labels
            if lab[0] not in inside
            and reach[0] <= lab[2] <= reach[2]
            and reach[1] <= lab[3] <= reach[3]
        ]
        if not kept:
            continue
        layers.append((client.boundaries_url(who.unit_code, base_level), [k[0] for k in kept]))
        labels += [lab for lab in kept if box[0] <= lab[2] <= box[2] and box[1] <= lab[3] <= box[3]]
    if not layers:
        return None
    # the shown units' names first: a place name never runs into one of theirs
    shown_first = [(c, n, x, y, 1 + a) for c, n, x, y, a in shown.labels]
    placed = label_points(shown_first + labels, limit=60 + len(labels), extent=box, font=font + 1)
    names = [(name, lon, lat) for c, name, lon, lat, _ in labels if placed[c][2]]
    return PlainBasemap(layers, names, box)


def basemap_traces(basemap: PlainBasemap, font: int = 11) -> list[dict]:
    """The basemap's traces: the coarser level filled light grey, the finer outlined, the
    place names in grey. None of them answers a hover or a click."""
    traces: list[dict] = []
    for i, (url, codes) in enumerate(basemap.layers):
        fill = FILL if i == 0 else "rgba(0,0,0,0)"
        traces.append(
            {
                "type": "choropleth",
                "name": f"basemap-{i}",
                "geojson": url,
                "featureidkey": "properties.code",
                "locations": codes,
                "z": [0] * len(codes),
                "colorscale": [[0, fill], [1, fill]],
                "showscale": False,
                "marker": {"line": {"color": LINE if i == 0 else FINE_LINE, "width": 1 - i / 2}},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    traces.append(
        {
            "type": "scattergeo",
            "name": "basemap-names",
            "mode": "text",
            "lon": [n[1] for n in basemap.names],
            "lat": [n[2] for n in basemap.names],
            "text": [n[0] for n in basemap.names],
            "textfont": {"size": font, "color": NAME},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    )
    return traces


def with_basemap(figure: dict, basemap: PlainBasemap | None, font: int = 11) -> dict:
    """``figure`` (a plain ``geo`` map) standing on ``basemap``: its traces after the map's
    own two (which metric changes patch by index; the basemap's units never overlap the
    shown ones) and the view set to the basemap's box."""
    if basemap is None or "geo" not in figure["layout"]:
        return figure
    figure["data"][2:2] = basemap_traces(basemap, font)
    x0, y0, x1, y1 = basemap.box
    geo = figure["layout"]["geo"]
    geo["fitbounds"] = False
    geo["lonaxis"] = {"range": [x0, x1]}
    geo["lataxis"] = {"range": [y0, y1]}
    return figure
