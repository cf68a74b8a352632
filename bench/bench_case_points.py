"""The map's ``cases`` layer at metro: 50,000 case points at city level drawn in Chromium.

Reads (never writes) a metro database::

    python -m bench.bench_case_points postgresql://postgres@127.0.0.1:5432/zhili_metro_copy

Times the layer's points at city level in process (``api.services.case_points``: the
last 30 days' cases, up to 100,000), takes the first 50,000, builds the dashboard's trace
(``dashboard.components.layers.case_trace``) both ways — the tiled map's ``scattermap``
with MapLibre's clusters (the full plotly.js, as the dashboard loads it with a tile layer;
no basemap tiles here: the offline ``white-bg`` style) and the plain map's
``scattergeo`` (the dashboard's own bundle) —, and times ``Plotly.newPlot`` in headless
Chromium until the plot is drawn (its promise, then two animation frames; −1: not within
20 s), 3 runs each,
every request to another host refused.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from api.db.session import session_scope
from api.principal import Principal
from api.services.case_points import case_points
from bench.common import summarize
from dashboard.components.layers import case_trace

POINTS = 50_000
RUNS = 3
HERE = Path(__file__).resolve().parent
FULL = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
OWN = HERE.parent / "dashboard" / "assets" / "vendor" / "plotly-zhili-4.1.1.min.js"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="{bundle}"></script></head><body style="margin:0">
<div id="map" style="width:1200px;height:800px"></div>
<script>
window.draw = function () {{
  var fig = {fig};
  var t0 = performance.now();
  var drawn = Plotly.newPlot("map", fig.data, fig.layout).then(function () {{
    return new Promise(function (resolve) {{
      requestAnimationFrame(function () {{ requestAnimationFrame(function () {{
        resolve(performance.now() - t0);
      }}); }});
    }});
  }});
  var late = new Promise(function (resolve) {{
    setTimeout(function () {{ resolve(-1); }}, 20000);
  }});
  return Promise.race([drawn, late]);  /* -1: not drawn within 20 s */
}};
</script></body></html>"""


def _figure(trace: dict, tiled: bool, extent: tuple[float, float, float, float]) -> dict:
    lon0, lat0, lon1, lat1 = extent
    centre = {"lon": (lon0 + lon1) / 2, "lat": (lat0 + lat1) / 2}
    if tiled:
        layout = {"map": {"style": "white-bg", "center": centre, "zoom": 8.5}}
    else:
        layout = {
            "geo": {
                "fitbounds": "locations",
                "lonaxis": {"range": [lon0, lon1]},
                "lataxis": {"range": [lat0, lat1]},
                "visible": False,
            }
        }
    return {"data": [trace], "layout": {**layout, "margin": {"l": 0, "r": 0, "t": 0, "b": 0}}}


def run(url: str) -> dict:
    """Server and browser timings of 50,000 case points at city level."""
    from playwright.sync_api import sync_playwright

    out: dict = {"load_average_before": os.getloadavg()}
    with session_scope(url) as session:
        city = session.execute(
            text("SELECT code FROM admin_unit WHERE level = 'city' AND valid_to IS NULL")
        ).scalar_one()
        who = Principal(0, "bench", "admin", city)
        samples, feats = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            feats = case_points(session, who, city)
            samples.append((time.perf_counter() - t0) * 1000)
        out["layer_points_city"] = summarize(samples) | {"points": len(feats)}
    feats = feats[:POINTS]
    lons = [f["geometry"]["coordinates"][0] for f in feats]
    lats = [f["geometry"]["coordinates"][1] for f in feats]
    extent = (min(lons), min(lats), max(lons), max(lats))
    layer = {
        "layer": {
            "name": "cases",
            "legend": [
                {"key": k, "label_zh": k, "label_en": k, "color": c}
                for k, c in (
                    ("overdue", "#e31a1c"),
                    ("received", "#1f78b4"),
                    ("scheduled", "#33a02c"),
                    ("handled", "#6a3d9a"),
                    ("visited", "#b15928"),
                    ("evaluated", "#999999"),
                )
            ],
        },
        "features": feats,
    }
    out["points_drawn"] = len(feats)
    refused: list[str] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for name, tiled, bundle in (
            ("scattergeo", False, OWN),
            ("scattermap_clustered", True, FULL),
        ):
            fig = _figure(case_trace(layer, tiled, "zh"), tiled, extent)
            page_path = Path(tmp) / f"{name}.html"
            page_path.write_text(PAGE.format(bundle=bundle.as_uri(), fig=json.dumps(fig)))
            samples = []
            for _ in range(RUNS):
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.route(
                    "**/*",
                    lambda route: (
                        route.continue_()
                        if route.request.url.startswith("file://")
                        else (refused.append(route.request.url), route.abort())
                    ),
                )
                page.goto(page_path.as_uri())
                samples.append(page.evaluate("window.draw()"))
                if not samples[1:]:
                    page.screenshot(
                        path=str(Path(tempfile.gettempdir()) / f"case_points_{name}.png")
                    )
                page.close()
            out[f"draw_{name}"] = summarize(samples)
        browser.close()
    out["requests_to_other_hosts"] = len(refused)
    out["load_average_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1]), indent=2, ensure_ascii=False))
