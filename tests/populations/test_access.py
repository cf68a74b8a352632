"""Only users with the special_populations permission see these figures at all (not
listed, 403 when asked, through the API and the dashboard's client), within their own
subtree; every read is audited."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from api.db.models import AuditLog
from api.db.session import dispose_engines, session_scope
from api.settings import Settings
from tests.populations.conftest import token_with

PROTECTED = (
    "visit_coverage_rate",
    "lost_contact_rate",
    "floating_per_100",
    "special_under_management",
    "rental_units_per_grid",
    "help_station_coverage",
)


@pytest.fixture(scope="module")
def tiny(sqlite_template, tmp_path_factory):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from seed.populations import seed_populations
    from tests.utils.world import build_tiny_world

    path = tmp_path_factory.mktemp("pop_access") / "t.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    with session_scope(url) as s:
        world = build_tiny_world(s)
        seed_populations(s, dt.date(2026, 10, 31), 2, 1)
    app = create_app(Settings(database_url=url, cache_dir=path.parent / "c"), with_dashboard=False)
    with TestClient(app) as client:
        yield url, world, client
    dispose_engines()


def _as(client, token: str):
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _reads(url: str) -> int:
    with session_scope(url) as s:
        return s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "populations.read")
        )


def test_without_the_permission_the_figures_do_not_exist(tiny):
    url, w, client = tiny
    for role in ("admin", "official", "analyst", "display"):
        c = _as(client, token_with(url, role, w.city, permitted=False))
        listed = {m["id"] for m in c.get("/api/v1/metrics").json()}
        assert "caseload" in listed and not listed & set(PROTECTED)
        for metric in PROTECTED:
            params = {"metric": metric, "period": "2026-10"}
            for path in (f"/api/v1/units/{w.city}/children/metrics",
                         f"/api/v1/units/{w.city}/timeseries", f"/api/v1/units/{w.city}/ranking",
                         "/api/v1/choropleth"):  # fmt: skip
                r = c.get(path, params=params)
                assert r.status_code == 403, (role, path, r.text)
                assert "special_populations permission" in r.json()["message"]
    assert _reads(url) == 0


def test_with_the_permission_every_read_is_audited_and_scoped(tiny):
    url, w, client = tiny
    c = _as(client, token_with(url, "official", w.towns[0], permitted=True))
    listed = {m["id"] for m in c.get("/api/v1/metrics").json()}
    assert set(PROTECTED) <= listed
    before = _reads(url)
    r = c.get(f"/api/v1/units/{w.towns[0]}/children/metrics",
              params={"metric": "visit_coverage_rate", "period": "2026-10"})  # fmt: skip
    assert r.status_code == 200
    rows = [r.json()["self"], *r.json()["children"]]
    assert all("suppressed" in row for row in rows)
    for row in rows:
        if row["suppressed"]:
            assert row["value"] is None and row["numerator"] is None
    geo = c.get("/api/v1/choropleth", params={"metric": "floating_per_100", "period": "2026-10",
                                               "level": "grid", "format": "csv"})  # fmt: skip
    assert geo.status_code == 200
    assert _reads(url) == before + 2
    other = c.get(f"/api/v1/units/{w.towns[1]}/children/metrics",
                  params={"metric": "visit_coverage_rate", "period": "2026-10"})  # fmt: skip
    assert other.status_code == 404  # another town: out of scope as ever
    quarter = c.get(f"/api/v1/units/{w.towns[0]}/children/metrics",
                    params={"metric": "visit_coverage_rate", "period": "2026-Q3"})  # fmt: skip
    assert quarter.status_code == 400 and "per calendar month" in quarter.json()["message"]


def test_dashboard_client_refuses_without_the_permission(tiny):
    from api.principal import Principal
    from dashboard import client as dash
    from dashboard.state import MapView

    _, w, _ = tiny
    who = Principal(1, "x", "official", w.city)
    allowed = Principal(1, "x", "official", w.city, permissions=frozenset({"special_populations"}))
    assert not dash.may_read_metric(who, "visit_coverage_rate")
    assert dash.may_read_metric(allowed, "visit_coverage_rate")
    del MapView


def test_user_add_grants_the_permission(tiny):
    from api.cli import main
    from api.services.auth import principal_for_token

    url, w, _ = tiny
    args = ["user", "add", "pop-reader", "--role", "analyst", "--unit", w.city]
    out = CliRunner().invoke(main, [*args, "--special-populations", "--database-url", url])
    assert out.exit_code == 0, out.output
    with session_scope(url) as s:
        principal = principal_for_token(s, out.output.strip().splitlines()[-1])
    assert principal.can_read_special_populations


def test_every_export_carries_the_maps_suppression(tiny, tmp_path):
    """GeoJSON, CSV and GeoPackage of one map suppress the same units."""
    import csv
    import io

    import geopandas as gpd

    url, w, client = tiny
    c = _as(client, token_with(url, "analyst", w.city, permitted=True))
    params = {"metric": "lost_contact_rate", "period": "2026-10", "level": "grid"}
    geo = c.get("/api/v1/choropleth", params=params).json()
    hidden = {f["id"] for f in geo["features"] if f["properties"]["suppressed"]}
    assert hidden  # the tiny world's grids are small
    flat = c.get("/api/v1/choropleth", params={**params, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(flat.content.decode("utf-8-sig"))))
    assert {r["code"] for r in rows if r["value"] == "<5"} == hidden
    assert all(r["numerator"] == "" for r in rows if r["code"] in hidden)
    path = tmp_path / "map.gpkg"
    path.write_bytes(c.get("/api/v1/choropleth", params={**params, "format": "gpkg"}).content)
    frame = gpd.read_file(path)
    assert set(frame.loc[frame["suppressed"].astype(bool), "code"]) == hidden
    assert frame.loc[frame["code"].isin(hidden), "value"].isna().all()


def test_the_ogc_collections_guard_and_suppress_as_the_api(tiny):
    """A GIS asking the OGC items for a special-population metric: refused without the
    permission; with it, audited, and a suppressed unit is null and flagged, as in the API."""
    url, w, client = tiny
    params = {"metric": "visit_coverage_rate", "period": "2026-10"}
    refused = _as(client, token_with(url, "analyst", w.city, permitted=False))
    r = refused.get("/ogc/collections/village/items", params=params)
    assert r.status_code == 403 and "special_populations permission" in r.json()["message"]
    c = _as(client, token_with(url, "analyst", w.city, permitted=True))
    before = _reads(url)
    api = c.get("/api/v1/choropleth", params={**params, "level": "village"}).json()
    ogc = c.get("/ogc/collections/village/items", params={**params, "limit": 1000}).json()
    assert _reads(url) == before + 2
    shown = {f["properties"]["code"]: f["properties"] for f in api["features"]}
    for f in ogc["features"]:
        p = f["properties"]
        assert p.get("suppressed") == shown[p["code"]].get("suppressed")
        if p.get("suppressed"):
            assert p["value"] is None
