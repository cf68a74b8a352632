"""The choropleth of a unit's children as a plain figure dict (no ``go.Figure``).

Geometry is a URL (fetched once by plotly.js and kept in ``window.PlotlyGeoAssets``, and
cached by the browser with its ETag); the figure carries only codes and numbers, so a
metric or period change re-sends numbers alone (``map_patch``). The map is a ``geo``
subplot with every base layer off: no tiles, no topojson, no fonts from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import Patch

from dashboard.i18n import t

NO_DATA = -2
LOW_COUNT = -1
NO_DATA_COLOR = "#d0d0d0"
LOW_COUNT_COLOR = "#f3efe6"
WORSE_HIGH = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15", "#67000d", "#3b0007")
BETTER_HIGH = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c", "#08306b", "#041b3d")
NEUTRAL = ("#ffffd4", "#fee391", "#fec44f", "#fe9929", "#d95f0e", "#993404", "#662506")
# The plotly config every map uses: topojson from our own assets (never cdn.plot.ly).
GRAPH_CONFIG = {
    "topojsonURL": "/dashboard/assets/topojson/",
    "displaylogo": False,
    "scrollZoom": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"],
}


@dataclass(frozen=True)
class MapItem:
    """One unit on the map: its class (or NO_DATA / LOW_COUNT) and its hover card lines."""

    code: str
    name: str
    klass: int
    value_text: str
    count_text: str
    change_text: str
    rank_text: str


def palette(k: int, higher_is_better: bool | None) -> list[str]:
    """``k`` sequential colours, light (low) to dark (high): blue when high is good, red
    when high is bad, yellow-brown when neither (a caseload)."""
    colours = (
        NEUTRAL if higher_is_better is None else BETTER_HIGH if higher_is_better else WORSE_HIGH
    )
    if k <= 0:
        return []
    if k >= len(colours):
        return list(colours)
    step = (len(colours) - 2) / max(k - 1, 1)
    return [colours[round(i * step)] for i in range(k)]


def colorscale(k: int, higher_is_better: bool | None) -> tuple[list, int, int]:
    """A stepped colorscale over z = NO_DATA .. k-1, with its zmin and zmax."""
    colours = [NO_DATA_COLOR, LOW_COUNT_COLOR, *palette(k, higher_is_better)]
    n = len(colours)  # z = NO_DATA + i has colour i, at position i / (n - 1)
    scale = []
    for i, colour in enumerate(colours):
        scale.append([max((i - 0.5) / (n - 1), 0.0), colour])
        scale.append([min((i + 0.5) / (n - 1), 1.0), colour])
    return scale, NO_DATA, NO_DATA + n - 1


def _hover_template(lang: str) -> str:
    return (
        "<b>%{customdata[0]}</b><br>"
        f"{t('value', lang)}: %{{customdata[1]}}<br>"
        f"{t('count', lang)}: %{{customdata[2]}}<br>"
        f"{t('change', lang)}: %{{customdata[3]}}<br>"
        f"{t('rank', lang)}: %{{customdata[4]}}<extra></extra>"
    )


def _customdata(items: list[MapItem]) -> list[list[str]]:
    return [[i.name, i.value_text, i.count_text, i.change_text, i.rank_text] for i in items]


def map_figure(
    geojson_url: str,
    items: list[MapItem],
    k: int,
    higher_is_better: bool | None,
    points: dict[str, tuple[float, float, bool]],
    lang: str,
    dark: bool = False,
    label_size: int = 12,
    tile_url: str | None = None,
    extent: tuple[float, float, float, float] | None = None,
) -> dict:
    """The figure: one choropleth trace (classes as z) and one text trace with a point per
    unit in the same order (``points``: code → lon, lat, whether its name fits; names that
    do not fit are left blank).

    ``tile_url``: an intranet XYZ tile URL (``settings.tile_url``): the map is then drawn
    on those tiles (a MapLibre ``map`` subplot whose style names no other source, no
    glyphs and no sprite, so nothing is fetched from elsewhere); unit names are in the
    hover card only, as map text would need glyphs from a font server; ``extent`` (the
    shapes' lon/lat bounds) sets its view."""
    scale, zmin, zmax = colorscale(k, higher_is_better)
    line = "#1b2330" if dark else "#ffffff"
    placed = [points.get(i.code, (None, None, False)) for i in items]
    border = {"color": line, "width": 1}
    if tile_url:
        areas = _areas_trace("choroplethmap", geojson_url, items, lang, scale, (zmin, zmax))
        areas["marker"] = {"line": border, "opacity": 0.75}
        view = map_view(extent or _extent(placed))
        return _tiled_figure(geojson_url, areas, placed, tile_url, view)
    areas = _areas_trace("choropleth", geojson_url, items, lang, scale, (zmin, zmax))
    areas["marker"] = {"line": border}
    data = [
        areas,
        {
            "type": "scattergeo",
            "mode": "text",
            "lon": [p[0] for p in placed],
            "lat": [p[1] for p in placed],
            "text": [i.name if p[2] else "" for i, p in zip(items, placed, strict=True)],
            "textfont": {"size": label_size, "color": label_colours(items, k, higher_is_better)},
            "hoverinfo": "skip",
            "showlegend": False,
        },
    ]
    layout = {
        "geo": {
            "visible": False,
            "fitbounds": "locations",
            "projection": {"type": "mercator"},
            "bgcolor": "rgba(0,0,0,0)",
        },
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "dragmode": False,
        "showlegend": False,
        "hoverlabel": {"font": {"size": label_size + 2}},
        "uirevision": geojson_url,
    }
    return {"data": data, "layout": layout}


def _extent(points: list[tuple]) -> tuple[float, float, float, float] | None:
    lons = [p[0] for p in points if p[0] is not None]
    lats = [p[1] for p in points if p[1] is not None]
    return (min(lons), min(lats), max(lons), max(lats)) if lons else None


def map_view(
    extent: tuple[float, float, float, float] | None, width: int = 900, height: int = 600
) -> dict:
    """Centre and zoom of a ``width`` × ``height`` web-mercator map that shows ``extent``
    (lon/lat min, lon/lat max) whole."""
    import math

    if extent is None:
        return {"center": {"lon": 0, "lat": 0}, "zoom": 1}
    lons, lats = (extent[0], extent[2]), (extent[1], extent[3])

    def y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dx = max(max(lons) - min(lons), 1e-4) / 360
    dy = max(y(max(lats)) - y(min(lats)), 1e-4) / (2 * math.pi)
    # MapLibre's zoom 0 draws the world 512 px wide (raster tiles of 256 px are shown at
    # half a zoom level): a 256 px world put the shapes one zoom level too close
    zoom = math.log2(min(width / 512 / dx, height / 512 / dy)) - 0.15  # a small margin
    centre = {"lon": (min(lons) + max(lons)) / 2, "lat": (min(lats) + max(lats)) / 2}
    return {"center": centre, "zoom": round(max(0.0, min(zoom, 18.0)), 2)}


def _areas_trace(
    kind: str,
    geojson_url: str,
    items: list[MapItem],
    lang: str,
    scale: list,
    z_range: tuple[int, int],
) -> dict:
    """The units' areas coloured by class, the map's first trace (``map_patch`` writes its
    numbers): ``kind`` is ``choropleth`` on the plain map, ``choroplethmap`` on tiles."""
    return {
        "type": kind,
        "geojson": geojson_url,
        "featureidkey": "properties.code",
        "locations": [i.code for i in items],
        "z": [i.klass for i in items],
        "zmin": z_range[0],
        "zmax": z_range[1],
        "colorscale": scale,
        "showscale": False,
        "customdata": _customdata(items),
        "hovertemplate": _hover_template(lang),
    }


def _tiled_figure(geojson_url: str, areas: dict, placed: list, tile_url: str, view: dict) -> dict:
    data = [
        areas,
        {  # the label trace's place (``map_patch`` writes to it): invisible points
            "type": "scattermap",
            "mode": "markers",
            "lon": [p[0] for p in placed],
            "lat": [p[1] for p in placed],
            "marker": {"size": 1, "opacity": 0},
            "textfont": {},
            "hoverinfo": "skip",
            "showlegend": False,
        },
    ]
    style = {
        "version": 8,
        "sources": {"intranet": {"type": "raster", "tiles": [tile_url], "tileSize": 256}},
        "layers": [{"id": "intranet", "type": "raster", "source": "intranet"}],
    }
    layout = {
        "map": {"style": style, **view},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "showlegend": False,
        "uirevision": geojson_url,
    }
    return {"data": data, "layout": layout}


def map_patch(items: list[MapItem], k: int, higher_is_better: bool | None, lang: str) -> Patch:
    """Only the numbers of the map: classes, colours and hover cards (geometry untouched)."""
    scale, zmin, zmax = colorscale(k, higher_is_better)
    patch = Patch()
    patch["data"][0]["locations"] = [i.code for i in items]
    patch["data"][0]["z"] = [i.klass for i in items]
    patch["data"][0]["zmin"] = zmin
    patch["data"][0]["zmax"] = zmax
    patch["data"][0]["colorscale"] = scale
    patch["data"][0]["customdata"] = _customdata(items)
    patch["data"][0]["hovertemplate"] = _hover_template(lang)
    patch["data"][1]["textfont"]["color"] = label_colours(items, k, higher_is_better)
    return patch


def label_colours(items: list[MapItem], k: int, higher_is_better: bool | None) -> list[str]:
    """White names on dark classes, near-black on light ones (by the class colour's
    luminance), near-black on the low-count and no-data greys."""
    dark = []
    for colour in palette(k, higher_is_better):
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        dark.append(0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45)
    return ["#ffffff" if 0 <= i.klass < k and dark[i.klass] else "#1b1b1b" for i in items]
