"""Map layers on the unit page: a toggle per registered layer (``layers=`` in the URL,
written client-side by ``zhiliViews.layersToUrl``), its points as a trace appended to the
map (colour by class, hover with the facts), and its legend under the map."""

from __future__ import annotations

from dash import dcc, html

from dashboard.components.words import w

LAYER_TOGGLES = "unit-layer-toggles"
LAYER_LEGEND = "unit-layer-legend"


def layer_toggles(layers: list[dict], on: tuple[str, ...], lang: str) -> html.Div:
    """A checkbox per layer (``layers``: name, labels, legend), ticked when in ``on``."""
    options = [
        {"label": (x["label_en"] if lang == "en" else x["label_zh"]), "value": x["name"]}
        for x in layers
    ]
    return html.Div(
        [
            html.Span(w("layers", lang), className="label"),
            dcc.Checklist(
                id=LAYER_TOGGLES,
                options=options,
                value=[x for x in on if x in {o["value"] for o in options}],
                inline=True,
            ),
        ],
        className="layer-toggles control",
    )


def _hover(props: dict, lang: str) -> str:
    if "kind_zh" in props:  # a facility
        kind = props["kind_en"] if lang == "en" else props["kind_zh"]
        status = w(props["status"], lang)
        video = w("video", lang) + (" ✓" if props.get("video_linked") else " ✗")
        return f"{props['unit_name']} · {kind}<br>{status} · {video}"
    what = f"{props.get('kind', '')} {props.get('category') or ''}"
    return f"{props.get('unit_name', '')} · {w('layer_alerts', lang)}: {what}"


def _rings(features: list[dict]) -> tuple[list, list]:
    """The outer rings of (multi)polygon features, as one lon/lat line with gaps."""
    lon: list = []
    lat: list = []
    for f in features:
        g = f["geometry"]
        polygons = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        for poly in polygons:
            for x, y in poly[0]:
                lon.append(x)
                lat.append(y)
            lon.append(None)
            lat.append(None)
    return lon, lat


def area_traces(fc: dict, tiled: bool, lang: str) -> list[dict]:
    """A layer's polygon features (a reach, its gaps), one filled trace per class."""
    traces = []
    for e in fc["layer"]["legend"]:
        feats = [
            f
            for f in fc["features"]
            if f["properties"]["class"] == e["key"]
            and f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        ]
        if not feats:
            continue
        lon, lat = _rings(feats)
        label = e["label_en"] if lang == "en" else e["label_zh"]
        traces.append(
            {
                "type": "scattermap" if tiled else "scattergeo",
                "mode": "lines",
                "lon": lon,
                "lat": lat,
                "fill": "toself",
                "fillcolor": e["color"] + "55",
                "line": {"color": e["color"], "width": 0.5},
                "hoverinfo": "skip",
                "showlegend": False,
                "name": f"layer-{fc['layer']['name']}-{e['key']}",
                "meta": label,
            }
        )
    return traces


def _point_hover(props: dict, lang: str) -> str:
    if "events_gained" in props:  # a suggested new base
        gain = props["events_gained"]
        return f"{props.get('unit_name', '')} · {w('suggested_base', lang)}: +{gain}"
    if "force_kind" in props or props.get("class") == "base":
        return props.get("name") or props.get("code", "")
    return _hover(props, lang)


def case_trace(fc: dict, tiled: bool, lang: str) -> dict:
    """The cases layer: a point per case coloured by its class (step, overdue), its id in
    ``customdata`` (a click opens it on the desk); clustered on a tiled map (MapLibre's
    clusters: counts when zoomed out, single points when zoomed in)."""
    legend = {e["key"]: e for e in fc["layer"]["legend"]}
    feats = fc["features"]
    words = {e["key"]: e["label_en"] if lang == "en" else e["label_zh"] for e in legend.values()}
    trace = {
        "type": "scattermap" if tiled else "scattergeo",
        "mode": "markers",
        "lon": [f["geometry"]["coordinates"][0] for f in feats],
        "lat": [f["geometry"]["coordinates"][1] for f in feats],
        "customdata": [f"case:{f['properties']['id']}" for f in feats],
        "text": [
            f"#{f['properties']['id']} · {words.get(f['properties']['class'], '')}" for f in feats
        ],
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {
            "size": 6,
            "color": [legend.get(f["properties"]["class"], {}).get("color", "#444") for f in feats],
        },
        "showlegend": False,
        "name": "layer-cases",
    }
    if tiled:
        trace["cluster"] = {"enabled": True, "maxzoom": 13, "color": "#41729f", "opacity": 0.8}
    return trace


def layer_traces(collections: list[dict], tiled: bool, lang: str) -> list[dict]:
    """One marker trace per layer (``collections``: each layer's GeoJSON with its legend),
    a ``scattermap`` on a tiled map, else ``scattergeo``; a layer's areas (polygons) as
    filled traces under its points."""
    traces = []
    for n, fc in enumerate(collections):
        if fc["layer"]["name"] == "cases":
            traces.append(case_trace(fc, tiled, lang))
            continue
        legend = {e["key"]: e for e in fc["layer"]["legend"]}
        traces.extend(area_traces(fc, tiled, lang))
        feats = [f for f in fc["features"] if f["geometry"]["type"] == "Point"]
        if not feats:
            continue
        # facilities of one unit stand at one point: spread them a little
        spread = 0.004 * (n + 1) if fc["layer"]["name"] in ("facilities", "alerts") else 0
        lon = [f["geometry"]["coordinates"][0] + spread * (i % 3 - 1) for i, f in enumerate(feats)]
        lat = [f["geometry"]["coordinates"][1] for f in feats]
        colour = [legend.get(f["properties"]["class"], {}).get("color", "#444") for f in feats]
        trace = {
            "type": "scattermap" if tiled else "scattergeo",
            "mode": "markers",
            "lon": lon,
            "lat": lat,
            "text": [_point_hover(f["properties"], lang) for f in feats],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 9, "color": colour},
            "showlegend": False,
            "name": f"layer-{fc['layer']['name']}",
        }
        if not tiled:
            symbol = "diamond" if fc["layer"]["name"] == "alerts" else "circle"
            symbols = [
                "star"
                if legend.get(f["properties"]["class"], {}).get("symbol") == "star"
                else symbol
                for f in feats
            ]
            trace["marker"] |= {"symbol": symbols, "line": {"color": "#ffffff", "width": 1}}
            sizes = [14 if s == "star" else 9 for s in symbols]
            trace["marker"]["size"] = sizes
        traces.append(trace)
    return traces


def layer_legend(collections: list[dict], lang: str) -> html.Div:
    """Each shown layer's classes with their colours (and how many points of each)."""
    rows = []
    for fc in collections:
        layer = fc["layer"]
        counts: dict[str, int] = {}
        for f in fc["features"]:
            counts[f["properties"]["class"]] = counts.get(f["properties"]["class"], 0) + 1
        items = [html.B(layer["label_en"] if lang == "en" else layer["label_zh"])]
        for e in layer["legend"]:
            label = e["label_en"] if lang == "en" else e["label_zh"]
            items += [html.Span(className="swatch", style={"background": e["color"]}),
                      html.Span(f"{label} ({counts.get(e['key'], 0)})")]  # fmt: skip
        rows.append(html.Div(items, className="layer-legend-row"))
    return html.Div(rows, id=LAYER_LEGEND, className="layer-legend")
