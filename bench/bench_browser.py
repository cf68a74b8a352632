"""Browser benchmark: the dashboard in headless Debian Chromium (software rendering).

    python -m bench.bench_browser [DATABASE_URL] [--repeat N]

Serves the whole app (uvicorn, one process) on the database (default: the metro preset,
``zhili_metro`` on PostGIS), logs in as a city admin and times, from the browser's side:

- first map: navigation to the root unit's page until every shape of its children is drawn
  (a fresh browser context each time: nothing cached);
- drill-down: a click on the largest child until its own children are drawn;
- metric change: picking another metric until the map shows it;
- wall refresh: from the refresh request leaving the browser to "data as of" updated;
- wall memory: the JS heap over three minutes of one-second refreshes (30 s below metro);

beside a plain Plotly page (served from 127.0.0.1 too) that draws the same polygons with
``Plotly.newPlot`` (the city's children), and all the grids of the city at once (8,841 at
the metro preset) — the "about 3 s of plotting" the dashboard must beat. Prints medians.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.common import ratio

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
SHAPES = "#unit-map path.choroplethlocation"
WALL_SECONDS = {"metro": 180}  # one-second refreshes: three hours of the default 60 s


class _Server:
    """The app under uvicorn in a thread (as the tests' live server)."""

    def __init__(self, settings) -> None:
        import socket

        import uvicorn

        from api.app import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _cookie(url: str, settings) -> tuple[str, str]:
    """A session cookie of a city admin (user ``bench-browser``, created once)."""
    from api.db.session import session_scope
    from api.services.auth import create_user, find_user
    from api.services.sessions import open_session
    from api.services.units import current_units, list_levels

    with session_scope(url) as session:
        root = current_units(session, list_levels(session)[0].code)[0].code
        user = find_user(session, "bench-browser") or create_user(
            session, "bench-browser", "admin", root
        )
        return root, open_session(session, settings, user)


# The largest shape on the map, and a point inside it that a click reaches (not covered
# by a name or another shape): (location code, x, y) in viewport pixels.
INSIDE_POINT = """() => {
    const gd = document.querySelector('#unit-map .js-plotly-plot');
    const paths = [...document.querySelectorAll('#unit-map path.choroplethlocation')];
    let best = 0, bi = 0;
    paths.forEach((p, i) => { const b = p.getBBox();
        if (b.width * b.height > best) { best = b.width * b.height; bi = i; } });
    const path = paths[bi], box = path.getBBox(), ctm = path.getScreenCTM();
    const svg = path.ownerSVGElement;
    for (let n = 4; n <= 64; n *= 2) {
        for (let i = 1; i < n; i++) { for (let j = 1; j < n; j++) {
            const p = svg.createSVGPoint();
            p.x = box.x + box.width * i / n; p.y = box.y + box.height * j / n;
            if (!path.isPointInFill(p)) { continue; }
            const s = p.matrixTransform(ctm);
            const hit = document.elementFromPoint(s.x, s.y);
            if (hit && hit.classList.contains('choroplethlocation') && hit !== path) {
                continue;  /* another unit drawn over this point */
            }
            return [gd.data[0].locations[bi], s.x, s.y];
        } }
    }
    throw new Error('no point found inside the largest shape');
}"""


def _median(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def _wait_shapes(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('{SHAPES}').length === {n}", timeout=120_000)


def _ms_since(page, t0: float) -> float:
    return page.evaluate("performance.now()") - t0


def time_dashboard(browser, server_url: str, cookie: str, root: str, repeat: int) -> dict:
    from api.services.sessions import COOKIE_NAME

    first, drill, metric, wall = [], [], [], []
    shapes = {}
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": server_url}])
        page = context.new_page()
        page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(f"{server_url}/dashboard/unit/{root}?metric=caseload&period=year")
        page.wait_for_selector(SHAPES, timeout=120_000)
        n = page.evaluate(
            "document.querySelector('#unit-map .js-plotly-plot').data[0].locations.length"
        )
        _wait_shapes(page, n)
        first.append((time.perf_counter() - t0) * 1000)
        shapes["city_children"] = n

        # drill into the child with the largest shape on screen, clicking a point that
        # lies inside it (its bounding box's centre may be a neighbour's, or outside)
        target, x, y = page.evaluate(INSIDE_POINT)
        from dashboard import client as _  # noqa: F401  (keeps import cost out of timings)

        t0 = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_selector(f'#unit-page[data-unit="{target}"]', timeout=120_000)
        page.wait_for_selector(SHAPES, timeout=120_000)
        n2 = page.evaluate(
            "document.querySelector('#unit-map .js-plotly-plot').data[0].locations.length"
        )
        _wait_shapes(page, n2)
        drill.append((time.perf_counter() - t0) * 1000)
        shapes["town_children"] = n2

        t0 = time.perf_counter()
        page.locator("#unit-metric").click()
        page.get_by_role("dialog").get_by_text("办结率", exact=True).click()
        page.wait_for_function(
            "document.querySelector('#unit-legend') &&"
            " document.querySelector('#unit-legend').innerText.includes('办结率') &&"
            f" document.querySelectorAll('{SHAPES}').length === {n2}",
            timeout=120_000,
        )
        metric.append((time.perf_counter() - t0) * 1000)
        context.close()

    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": server_url}])
    page = context.new_page()
    page.goto(f"{server_url}/dashboard/wall?refresh=2")
    page.wait_for_selector("#wall-map path.choroplethlocation", timeout=120_000)
    page.evaluate(
        """() => {
            window.__asof = [];
            new MutationObserver(() => window.__asof.push(performance.now()))
              .observe(document.getElementById('wall-asof-text'), {childList: true,
                       subtree: true, characterData: true});
        }"""
    )
    page.wait_for_timeout(2000 * (repeat + 1) + 1000)
    wall = page.evaluate(
        """() => {
            const reqs = performance.getEntriesByType('resource')
              .filter(e => e.name.includes('_dash-update-component')).map(e => e.startTime);
            return window.__asof.map(t => t - Math.max(...reqs.filter(s => s < t)));
        }"""
    )
    context.close()
    return {
        "first_map_ms": _median(first),
        "drill_down_ms": _median(drill),
        "metric_change_ms": _median(metric),
        "wall_refresh_ms": _median(wall) if wall else None,
        "shapes": shapes,
        "samples": len(first),
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def wall_heap(browser, server_url: str, cookie: str, root: str, seconds: int) -> dict:
    """The wall display with one-second refreshes rotating through two metrics and the
    root and one of its children for ``seconds`` (an hour of 60-second refreshes compressed
    into a minute): the JS heap after garbage collection, after a warm-up and every 30 s."""
    from api.services.sessions import COOKIE_NAME

    context = browser.new_context(viewport={"width": 3840, "height": 2160})
    context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": server_url}])
    page = context.new_page()
    page.goto(f"{server_url}/dashboard/wall?refresh=1&metrics=caseload,on_time_rate")
    page.wait_for_selector("#wall-map path.choroplethlocation", timeout=120_000)
    cdp = context.new_cdp_session(page)
    cdp.send("HeapProfiler.enable")

    def heap_mb() -> float:
        cdp.send("HeapProfiler.collectGarbage")
        return round(cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20, 2)

    page.evaluate(
        """() => { window.__refreshes = 0;
            new MutationObserver(() => window.__refreshes++).observe(
                document.getElementById('wall-asof-text'),
                {childList: true, subtree: true, characterData: true}); }"""
    )
    page.wait_for_timeout(15_000)  # every view drawn once
    samples = [heap_mb()]
    start = page.evaluate("window.__refreshes")
    for _ in range(max(1, seconds // 30)):
        page.wait_for_timeout(min(30, seconds) * 1000)
        samples.append(heap_mb())
    refreshes = page.evaluate("window.__refreshes") - start
    context.close()
    return {
        "wall_heap_mb_after_warm_up": samples[0],
        "wall_heap_mb_at_end": samples[-1],
        "wall_heap_mb_every_30s": samples,
        "wall_heap_refreshes": refreshes,
    }


def _plain_page(folder: Path, name: str, geojson: bytes, codes: list[str]) -> None:
    (folder / f"{name}.json").write_bytes(geojson)
    z = list(range(len(codes)))
    (folder / f"{name}.html").write_text(
        "<html><head><meta charset='utf-8'><script src='plotly.min.js'></script></head>"
        "<body><div id='g' style='width:1200px;height:800px'></div><script>"
        f"fetch('{name}.json').then(r => r.json()).then(gj => {{"
        "const t0 = performance.now();"
        f"return Plotly.newPlot('g', [{{type: 'choropleth', geojson: gj, locations: "
        f"{orjson.dumps(codes).decode()}, z: {z}, featureidkey: 'properties.code'}}],"
        " {geo: {visible: false, fitbounds: 'locations'}},"
        " {topojsonURL: 'topo/'}).then(() => { window.plotMs = performance.now() - t0; });"
        "});</script></body></html>"
    )


def time_plain_plotly(browser, url: str, root: str, repeat: int) -> dict:
    """Plotly.newPlot of the city's children and of every grid, from a static page."""
    import plotly
    from sqlalchemy import select

    from api.db.models import AdminUnit
    from api.db.session import session_scope
    from dashboard.client import _geometry

    folder = Path(tempfile.mkdtemp(prefix="zhili_plain_"))
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", folder)
    (folder / "topo").mkdir()
    (folder / "topo" / "world_110m.json").write_text('{"type":"Topology","objects":{},"arcs":[]}')
    with session_scope(url) as session:
        levels = session.execute(
            select(AdminUnit.level, AdminUnit.parent_code).where(AdminUnit.parent_code == root)
        ).first()
        city = _geometry(session, root, levels.level)
        _plain_page(folder, "city", city.body, [lab[0] for lab in city.labels])
        grids = _all_grids(session)
        _plain_page(folder, "grids", grids[0], grids[1])
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    out = {"all_grids": len(grids[1])}
    try:
        for name in ("city", "grids"):
            samples = []
            for _ in range(repeat if name == "city" else max(2, repeat // 2)):
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.on("request", lambda r: None)
                page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/{name}.html")
                page.wait_for_function("window.plotMs !== undefined", timeout=120_000)
                samples.append(page.evaluate("window.plotMs"))
                page.close()
            out[f"plain_plotly_{name}_ms"] = _median(samples)
    finally:
        httpd.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _all_grids(session) -> tuple[bytes, list[str]]:
    """Every current grid's display geometry (clockwise, as the dashboard draws it)."""
    import shapely
    from shapely.geometry import mapping, shape

    from api.services.display import display_layer

    layer = display_layer(session, "grid", None)
    codes = list(layer.codes)
    shapes = [shape(orjson.loads(layer.fragments[c])) for c in codes]
    oriented = shapely.orient_polygons(shapes, exterior_cw=True)
    features = [
        {"type": "Feature", "properties": {"code": c}, "geometry": mapping(g)}
        for c, g in zip(codes, oriented, strict=True)
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features}), codes


def _warm(url: str, settings, root: str) -> None:
    """Build the metric engine's state and the root's display geometry once (the server
    runs in this process and shares them): the timings are of a running server."""
    from api.db.session import session_scope
    from api.engine import engine_state
    from api.services.display import children_level, display_layer

    with session_scope(url) as session:
        engine_state(session)
        level = children_level(session, root)
        display_layer(session, level, root, cache_dir=settings.cache_dir)


def run(database_url: str | None = None, preset: str = "metro", repeat: int = 5) -> dict:
    """The timings, printed and returned."""
    from playwright.sync_api import sync_playwright

    from api.db.session import normalize_url
    from api.settings import Settings

    url = normalize_url(database_url or DEFAULT_URL)
    cache = Path(tempfile.gettempdir()) / "zhili_bench_browser_cache"
    settings = Settings(database_url=url, cache_dir=cache)
    root, cookie = _cookie(url, settings)
    t0 = time.perf_counter()
    _warm(url, settings, root)
    print(f"server caches warmed in {time.perf_counter() - t0:.0f} s (untimed)", flush=True)
    with _Server(settings) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        # warm the server's caches (metric engine, display geometry) once, untimed
        warm = time_dashboard(browser, server.url, cookie, root, 1)
        print(f"warm-up: {warm}", flush=True)
        ours = time_dashboard(browser, server.url, cookie, root, repeat)
        plain = time_plain_plotly(browser, url, root, repeat)
        heap = wall_heap(browser, server.url, cookie, root, WALL_SECONDS.get(preset, 30))
        browser.close()
    figures = {"preset": preset, **ours, **plain, **heap}
    figures["first_map_vs_plain_all_grids"] = ratio(
        plain["plain_plotly_grids_ms"], ours["first_map_ms"]
    )
    for key, value in figures.items():
        print(f"{key}: {value}", flush=True)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--preset", default="metro")
    args = parser.parse_args()
    run(args.database_url, args.preset, args.repeat)
