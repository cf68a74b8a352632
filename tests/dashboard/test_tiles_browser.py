"""The optional intranet tile layer (``ZHILI_TILE_URL``): the map stands on tiles from the
site's own tile server, and still nothing is fetched from anywhere else."""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.settings import Settings
from tests.dashboard.conftest import login_cookie, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_kind", ["sqlite"])]

# a 1×1 grey PNG: what the tile server answers for every tile
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGOYCQAAmwCarS5ItAAAAABJRU5ErkJggg=="
)


class _Tiles(http.server.BaseHTTPRequestHandler):
    def __init__(self, seen: list[str], *args, **kwargs) -> None:
        self.seen = seen
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # the name http.server calls
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def tile_server() -> Iterator[tuple[str, list[str]]]:
    """An intranet tile server on 127.0.0.1: its URL template and the paths asked of it."""
    seen: list[str] = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Tiles, seen))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/tiles/{{z}}/{{x}}/{{y}}.png", seen
    httpd.shutdown()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, tile_server) -> Settings:
    """The app's settings with the intranet tile URL set."""
    return Settings(database_url=db_url, cache_dir=tmp_path / "cache", tile_url=tile_server[0])


def test_map_stands_on_intranet_tiles(
    browser, live_server, db_url, settings, world, tile_server, artifacts
):
    cookie = login_cookie(db_url, settings, "admin", world.city)
    watched = watched_page(browser, live_server.url, cookie)
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/unit/{world.city}?metric=caseload&period=year")
    page.wait_for_selector(f'#unit-page[data-unit="{world.city}"]', timeout=20_000)
    page.wait_for_selector("#unit-map canvas", timeout=20_000)
    trace = page.evaluate(
        "(() => { const t = document.querySelector('#unit-map .js-plotly-plot').data[0];"
        " return {type: t.type, locations: t.locations}; })()"
    )
    assert trace["type"] == "choroplethmap"
    assert sorted(trace["locations"]) == sorted(world.towns)
    page.wait_for_function(
        "document.querySelector('#unit-legend').innerText.length > 0", timeout=20_000
    )
    page.wait_for_timeout(1500)  # let MapLibre ask for its tiles
    assert any(p.startswith("/tiles/") and p.endswith(".png") for p in tile_server[1])
    page.screenshot(path=str(artifacts / "dashboard_city_tiles.png"), full_page=True)
    assert watched.external() == [], "requests left 127.0.0.1"
    assert watched.errors == [], "console errors"
    page.context.close()
