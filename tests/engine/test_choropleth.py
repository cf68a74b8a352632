"""Choropleth: values, counts, previous values, low-count flags and classes in one GeoJSON
with the display geometry; CSV / GeoPackage downloads, audited."""

from __future__ import annotations

import datetime as dt
import io
import warnings

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import AuditLog
from api.db.session import session_scope
from api.engine.choropleth import class_breaks
from tests.conftest import token_for
from tests.engine.expected import expected, leaves_under


@pytest.fixture
def api(app, db_url, cased):
    token = token_for(db_url, "analyst", cased.world.city, name="ana")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_choropleth_geojson(api, cased) -> None:
    w = cased.world
    r = api.get(
        "/api/v1/choropleth",
        params={"parent": w.city, "level": "village", "metric": "resolution_rate",
                "period": "2025", "compare": "yoy", "classes": "equal_interval", "k": 3},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert sorted(f["id"] for f in body["features"]) == sorted(w.villages)
    breaks = body["breaks"]
    assert len(breaks) == 3
    start, end = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
    before = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    for f in body["features"]:
        p = f["properties"]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        under = leaves_under(w, p["code"], cased.leaves)
        want = expected("resolution_rate", cased.cases, under, 0, start, end)
        assert p["value"] == pytest.approx(want)
        assert p["previous"] == pytest.approx(
            expected("resolution_rate", cased.cases, under, 0, *before)
        )
        assert p["low_count"] == (p["count"] < 10)
        lower = breaks[p["class"] - 1] if p["class"] else -float("inf")
        assert lower < p["value"] <= breaks[p["class"]] + 1e-12


def test_choropleth_downloads_are_audited(api, cased, db_url) -> None:
    import pyogrio

    w = cased.world
    params = {"parent": w.towns[0], "level": "grid", "metric": "caseload", "period": "2024"}
    csv = api.get("/api/v1/choropleth", params={**params, "format": "csv"})
    assert csv.status_code == 200, csv.text
    text = csv.content.decode("utf-8-sig")
    assert text.count("\n") >= 1 + 4
    gpkg = api.get("/api/v1/choropleth", params={**params, "format": "gpkg"})
    assert gpkg.status_code == 200
    frame = pyogrio.read_dataframe(io.BytesIO(gpkg.content))
    grids = sorted(g for g in w.grids if g.startswith(w.towns[0]))
    assert sorted(frame["code"]) == grids
    for _, row in frame.iterrows():
        under = leaves_under(w, row["code"], cased.leaves)
        assert row["value"] == expected(
            "caseload", cased.cases, under, 0, dt.date(2024, 1, 1), dt.date(2024, 12, 31)
        )
    with session_scope(db_url) as session:
        logs = session.scalars(select(AuditLog).where(AuditLog.action == "export")).all()
        formats = sorted(log.detail["format"] for log in logs)
        assert "csv" in formats and "gpkg" in formats
        gp = next(log for log in logs if log.detail["format"] == "gpkg")
        assert gp.user_name == "ana"
        assert gp.detail["rows"] == 4
        assert gp.detail["metric"] == "caseload"
        assert gp.detail["level"] == "grid" and gp.detail["parent"] == w.towns[0]


def test_choropleth_errors(api, cased) -> None:
    w = cased.world
    bad = [
        ({"level": "city"}, 400, "not below"),
        ({"level": "planet"}, 400, "unknown level"),
        ({"classes": "rainbow"}, 400, "bad classes"),
        ({"classes": "fixed"}, 400, "breaks="),
        ({"classes": "fixed", "breaks": "3,1"}, 400, "ascending"),
        ({"metric": "nope"}, 400, "unknown metric"),
        ({"parent": "000"}, 404, "jurisdiction"),
    ]
    for params, status, words in bad:
        r = api.get("/api/v1/choropleth", params={"parent": w.city, **params})
        assert r.status_code == status, (params, r.text)
        assert words in r.json()["message"]


def test_class_breaks_schemes() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, None]
    low = [False] * 10 + [True]
    for scheme in ("quantiles", "natural_breaks", "equal_interval"):
        bounds, classes = class_breaks(values, low, scheme, 5)
        assert len(bounds) == 5 and bounds[-1] == 10.0
        assert classes[-1] is None
        assert classes[:10] == sorted(classes[:10])
        assert classes[0] == 0 and classes[9] == 4
    bounds, classes = class_breaks(values, low, "fixed", 5, [2.5, 5.0])
    assert bounds == [2.5, 5.0, 10.0]
    assert classes[:10] == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    eq, _ = class_breaks(values, low, "equal_interval", 3)
    assert eq == pytest.approx([4.0, 7.0, 10.0])


def test_quantile_breaks_are_mapclassifys() -> None:
    """The quantile breaks are mapclassify's Quantiles bins to the last bit, ties and
    low-count values included, so that the map's classes match what an analyst gets from
    mapclassify (or QGIS) on the exported values."""
    import mapclassify

    rng = np.random.default_rng(7)
    for n in (3, 10, 57, 2236):
        for k in (2, 5, 7):
            values = np.round(rng.gamma(2.0, 30.0, n), int(rng.integers(0, 3))).tolist()
            values[0] = None
            low = (rng.random(n) < 0.2).tolist()
            bounds, _ = class_breaks(values, low, "quantiles", k)
            have = np.array([v for v in values if v is not None])
            solid = np.array([v for v, lo in zip(values, low, strict=True)
                              if v is not None and not lo])  # fmt: skip
            y = solid if len(np.unique(solid)) >= k else have
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = mapclassify.Quantiles(y, k=min(k, len(np.unique(y)))).bins
            assert bounds == expected.tolist(), (n, k)


def test_export_command_writes_what_the_api_serves(api, cased, db_url, tmp_path) -> None:
    """``zhili export`` gives the same units and figures as GET /choropleth, audited as the
    command line; a bad metric is one line and exit code 2, with no file written."""
    import subprocess
    import sys

    import pyogrio

    w = cased.world
    args = ["--level", "village", "--metric", "resolution_rate", "--period", "2025"]
    out = tmp_path / "villages.gpkg"
    run = [sys.executable, "-m", "api", "export", "--database-url", db_url]
    done = subprocess.run([*run, *args, "--format", "gpkg", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(out)
    served = api.get("/api/v1/choropleth", params={"parent": w.city, "level": "village",
                     "metric": "resolution_rate", "period": "2025"}).json()  # fmt: skip
    want = {f["id"]: f["properties"]["value"] for f in served["features"]}
    assert dict(zip(frame["code"], frame["value"], strict=True)) == pytest.approx(want)
    with session_scope(db_url) as session:
        entries = session.scalars(
            select(AuditLog).where(AuditLog.action == "export", AuditLog.user_name == "cli")
        ).all()
        assert [(e.detail["format"], e.detail["rows"]) for e in entries] == [("gpkg", len(want))]

    bad = tmp_path / "bad.csv"
    wrong = ["--level", "village", "--metric", "nonsense", "--format", "csv", "-o", str(bad)]
    refused = subprocess.run([*run, *wrong], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "nonsense" in refused.stderr and "Traceback" not in refused.stderr
    assert not bad.exists()


def test_choropleth_compressed_and_plain_bodies_agree(api, cased) -> None:
    """Browsers (and curl, GDAL, QGIS) take gzip and get it; others the plain body: the
    same GeoJSON every way, each a valid stream whose checksum its decoder checks."""
    import gzip

    params = {"parent": cased.world.city, "level": "grid", "metric": "caseload_per_10k",
              "period": "2025", "compare": "prev"}  # fmt: skip
    plain = api.get("/api/v1/choropleth", params=params, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert len(plain.json()["features"]) == len(cased.world.grids)
    for accept, encoding, decode in [
        ("gzip, deflate, br, zstd", "gzip", gzip.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("deflate;q=0, gzip;q=0.5", "gzip", gzip.decompress),
    ]:
        with api.stream("GET", "/api/v1/choropleth", params=params,
                        headers={"Accept-Encoding": accept}) as r:  # fmt: skip
            assert r.headers["content-encoding"] == encoding, accept
            assert "Accept-Encoding" in r.headers["vary"]
            raw = b"".join(r.iter_raw())
        assert decode(raw) == plain.content, accept
