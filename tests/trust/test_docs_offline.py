"""Point 16: /docs works offline: Swagger UI's script, style and icon come from the app,
and the page asks no other host (a real Chromium, every request recorded)."""

from __future__ import annotations

from urllib.parse import urlparse

from tests.conftest import LiveServer


def test_docs_page_is_served_whole_by_the_app(trust_client) -> None:
    html = trust_client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    js = trust_client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert trust_client.get("/docs/assets/..%2Fsecret").status_code == 404
    assert trust_client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_docs_asks_no_other_host(trust_world, browser, artifacts) -> None:
    with LiveServer(trust_world.settings) as server:
        context = browser.new_context()
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)  # the operations are drawn
        page.screenshot(path=str(artifacts / "docs_offline.png"))
        context.close()
    hosts = {urlparse(u).hostname for u in asked if not u.startswith("data:")}
    assert hosts == {"127.0.0.1"}, sorted(set(asked))
    assert any(u.endswith("/openapi.json") for u in asked)
