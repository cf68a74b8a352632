"""The fast paths beside their references: every query shape asked through the HTTP API
(the cube, the summed histograms, the compressed GeoJSON) and recounted the plain way
(``api.engine.reference``, straight from table ``case``), on SQLite and PostGIS, before
and after intake changes. The two must agree.

Shapes: every metric of ``/api/v1/metrics`` (but ``safety_index``, whose own arithmetic is
tested in tests/alerts: its measures are those of caseload, serious_cases,
resolution_rate, on_time_rate, satisfaction, grids and grids_without_full_time, all
compared here) × the children of the city and the city itself (``self``), every village of
the city and every grid of a town (choropleth ``level=``) × a month, a quarter, a year, an
arbitrary range, a range with no data, ranges that end after the last case (before and
after today) × compare none, yoy and prev (the previous value is the recount of the
previous period the API names).
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from fastapi.testclient import TestClient

from api.db.session import dispose_engines, session_scope
from api.engine import forget_states, reference
from api.engine.registry import MEASURES, REGISTRY
from api.engine.rollup import CaseSnapshot, apply_case_changes
from api.settings import Settings
from tests.conftest import DATABASES, token_for
from tests.engine.cases import insert_cases, leaf_ids, random_cases
from tests.utils.world import TinyWorld, build_tiny_world

# the engine writes the choropleth's floats rounded to 6 decimals; 1e-6 forgives a last
# digit rounded the other way
TOLERANCE = 1e-6
OWN_ARITHMETIC = {m.id for m in REGISTRY.values() if m.compute is not None}  # safety_index
PERIODS = [
    {"period": "2025-02"},  # a month (yoy: 2024-02 with its 29th)
    {"period": "2024-Q2"},  # a quarter
    {"period": "2025"},  # a year
    {"start": "2023-05-17", "end": "2024-08-03"},  # an arbitrary range
    {"period": "2019"},  # no data (nor a year before)
    {"start": "2026-06-15", "end": "2026-09-30"},  # past the last case (2026-06-30)
    {"start": "2026-05-01", "end": "2030-03-31"},  # past today: stocks as they stand
]
FIGURE_KEYS = ("value", "numerator", "denominator", "count")
# areas: the engine projects the leaves on an equal-area plane centred on the data, the
# reference measures them on the ellipsoid (geodesic edges); they differ by ~2e-7
AREA_MEASURES = {"area_km2", "grid_area_km2"}
AREA_TOLERANCE = 1e-6


@dataclass
class Served:
    """One database with the tiny world and random cases, and the API over it."""

    kind: str
    url: str
    world: TinyWorld
    api: TestClient
    metrics: list[str]
    min_denominator: int  # the app's low-count threshold


@pytest.fixture(scope="module", params=DATABASES)
def served(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Served]:
    """One world per database for the whole module (the tests that change it compare
    against a recount of what it then holds)."""
    from api.app import create_app

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("reference") / "zhili.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        server = request.getfixturevalue("postgis_server")
        name = server.create(template=request.getfixturevalue("postgis_template"))
        url, drop = server.url_for(name), name
    forget_states()
    with session_scope(url) as session:
        world = build_tiny_world(session)
        leaves = leaf_ids(session)
        cases = random_cases(leaves, 500, dt.date(2023, 1, 1), dt.date(2026, 6, 30), seed=11)
        leap = random_cases(leaves, 12, dt.date(2024, 2, 29), dt.date(2024, 2, 29), seed=12)
        for c in leap:
            c["external_id"] += "-leap"
        rows = insert_cases(session, leaves, cases + leap)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    token = token_for(url, "admin", world.city)
    settings = Settings(database_url=url, cache_dir=tmp_path_factory.mktemp("cache"))
    app = create_app(settings, with_dashboard=False)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        listed = api.get("/api/v1/metrics").json()
        ids = [m["id"] for m in (listed["metrics"] if isinstance(listed, dict) else listed)]
        # the recount counts cases and the network; the events' figures have their own
        # recount from raw events (tests/events/test_events.py)
        recounted = ("cases", "grid_network")
        metrics = [
            m
            for m in ids
            if m not in OWN_ARITHMETIC
            and all(MEASURES[x].domain.name in recounted for x in REGISTRY[m].measures())
        ]
        yield Served(request.param, url, world, api, metrics, settings.min_denominator)
    forget_states()
    dispose_engines()
    if drop:
        request.getfixturevalue("postgis_server").drop(drop)


class Recounts:
    """The reference's figures, each shape read once (``reference.Units``) and counted
    per period: every metric reads the same measures, as the API's read the same cube."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.units: dict[tuple[str, str], reference.Units] = {}

    def figures(self, parent: str, level: str, metric: str, start: str, end: str) -> dict:
        if (parent, level) not in self.units:
            with session_scope(self.url) as session:
                self.units[parent, level] = reference.Units.read(session, parent, level)
        table = reference.measures(
            self.units[parent, level], dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        )
        return reference.figures(REGISTRY[metric], table)


def same(have: float | None, want: float | None, rel: float = 1e-12) -> bool:
    """Equal to the reference rounded to 6 decimals, within the last digit (or within
    ``rel``, relative)."""
    if have is None or want is None:
        return have is None and want is None
    return math.isclose(have, round(want, 6), rel_tol=rel, abs_tol=TOLERANCE)


def check_rows(served: Served, rows: list[dict], body: dict, recounts: Recounts, parent: str,
               level: str, shape: str) -> None:  # fmt: skip
    """Each row's figures, low-count flag, interval and previous value equal the
    recount's."""
    # children/metrics describes the metric in "metric"; the choropleth names it there and
    # describes it in "metric_info"
    metric = REGISTRY[body["metric"] if "metric_info" in body else body["metric"]["id"]]
    period, before = body["period"], body["previous_period"]
    want = recounts.figures(parent, level, metric.id, period["start"], period["end"])
    assert sorted(r["code"] for r in rows) == sorted(want), (shape, metric.id)
    earlier = None
    if before is not None and metric.timed:
        earlier = recounts.figures(parent, level, metric.id, before["start"], before["end"])
    rel = AREA_TOLERANCE if AREA_MEASURES & set(metric.measures()) else 1e-12
    for row in rows:
        fig = want[row["code"]]
        where = (shape, metric.id, row["code"], period, row, fig)
        for key in FIGURE_KEYS:
            assert same(row[key], getattr(fig, key), rel), (key, *where)
        low = reference.is_low_count(metric, fig, served.min_denominator)
        assert row["low_count"] == low, where
        lo, hi = reference.plain_interval(metric, fig)
        assert same(row["ci_low"], lo) and same(row["ci_high"], hi), where
        if before is None:
            assert "previous" not in row, where
        else:
            previous = earlier[row["code"]].value if earlier is not None else None
            if before.get("covered") == "none":  # no data in the base: no previous value
                previous = None
            assert same(row["previous"], previous), ("previous", before, *where)


def children_rows(served: Served, recounts: Recounts, metric: str, when: dict, compare):
    """The city's children (the towns) and the city itself (``self``)."""
    w = served.world
    params = {"metric": metric, **when, **({"compare": compare} if compare else {})}
    r = served.api.get(f"/api/v1/units/{w.city}/children/metrics", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    check_rows(served, body["children"], body, recounts, w.city, "town", "children of the city")
    check_rows(served, [body["self"]], body, recounts, w.city, "city", "self")


def choropleth_rows(served: Served, recounts: Recounts, parent: str, level: str, metric: str,
                    when: dict, compare, encoding: str = "deflate") -> bytes:  # fmt: skip
    """The units of ``level`` under ``parent`` on the map; the decoded body."""
    params = {"parent": parent, "level": level, "metric": metric, **when}
    if compare:
        params["compare"] = compare
    with served.api.stream(
        "GET", "/api/v1/choropleth", params=params, headers={"Accept-Encoding": encoding}
    ) as r:
        assert r.status_code == 200, r.read()
        raw = b"".join(r.iter_raw())
        used = r.headers.get("content-encoding")
    decoded = decode(raw, used)
    body = orjson.loads(decoded)
    rows = [f["properties"] for f in body["features"]]
    check_rows(served, rows, body, recounts, parent, level, f"{level}s of {parent}")
    return decoded


def decode(raw: bytes, encoding: str | None) -> bytes:
    """A body as sent with ``Content-Encoding`` ``encoding``, decoded (checksums checked)."""
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    assert encoding is None, encoding
    return raw


COMPARES = [None, "yoy", "prev"]


def test_period_metrics_equal_the_recount(served: Served) -> None:
    """Every period metric × every period × the city's children and itself; × three
    periods in turn (all seven over the metrics) on the maps of the city's villages and of
    a town's grids: the API's figures and previous values are the recount's."""
    w = served.world
    recounts = Recounts(served.url)
    timed = [m for m in served.metrics if REGISTRY[m].timed]
    assert len(timed) >= len(PERIODS)
    for i, metric in enumerate(timed):
        for n, when in enumerate(PERIODS):
            children_rows(served, recounts, metric, when, COMPARES[(n + i) % 3])
        for n in (i % 7, (i + 3) % 7, (i + 5) % 7):
            when = PERIODS[n]
            compare = COMPARES[(n + i + 1) % 3], COMPARES[(n + i + 2) % 3]
            choropleth_rows(served, recounts, w.city, "village", metric, when, compare[0])
            choropleth_rows(served, recounts, w.towns[0], "grid", metric, when, compare[1])


def test_network_metrics_equal_the_recount(served: Served) -> None:
    """The grid network's metrics (the network now, whatever the period): the city's
    children and itself, its villages and every grid of the city; no previous value."""
    w = served.world
    recounts = Recounts(served.url)
    for metric in (m for m in served.metrics if not REGISTRY[m].timed):
        children_rows(served, recounts, metric, {"period": "2025"}, "yoy")
        choropleth_rows(served, recounts, w.city, "village", metric, {"period": "2024"}, "prev")
        choropleth_rows(served, recounts, w.city, "grid", metric, {"period": "2019"}, None)


MAPS = [  # metric, parent (None: the city), level, Accept-Encoding
    ("resolution_rate", None, "village", "gzip, deflate, br"),
    ("p90_days_to_close", None, "grid", "gzip"),
    ("caseload_per_10k", "town", "grid", "identity"),
    ("station_build_rate", None, "village", "deflate"),
]


@pytest.mark.parametrize(("metric", "parent", "level", "encoding"), MAPS)
def test_choropleth_body_is_the_plain_writers(
    served: Served, metric: str, parent: str | None, level: str, encoding: str
) -> None:
    """The (compressed) GeoJSON, decoded, is what the plain writer makes of
    the same rows with the display geometry of ``/boundaries``: the same features, ids,
    properties and geometry, and the same metadata."""
    w = served.world
    code = w.towns[0] if parent == "town" else w.city
    recounts = Recounts(served.url)
    decoded = choropleth_rows(
        served, recounts, code, level, metric, {"period": "2025-Q3"}, "yoy", encoding
    )
    body = orjson.loads(decoded)
    layer = served.api.get(
        "/api/v1/boundaries",
        params={"parent": code, "level": level},
        headers={"Accept-Encoding": "identity"},
    )
    assert layer.status_code == 200, layer.text
    fragments = {
        f["properties"]["code"]: orjson.dumps(f["geometry"]) for f in layer.json()["features"]
    }
    rows = [f["properties"] for f in body["features"]]
    meta = {k: v for k, v in body.items() if k not in ("type", "features")}
    plain = reference.plain_feature_collection(rows, fragments, meta)
    assert orjson.loads(plain) == body
    assert [f["id"] for f in body["features"]] == [r["code"] for r in rows]
    assert all(f["geometry"] is not None for f in body["features"])


def test_figures_follow_intake(served: Served) -> None:
    """Cases posted, one re-sent to another grid, cases advanced 接-约-办-访-评 (one late):
    the cube catches up from the change log, and every figure still equals a recount."""
    w = served.world
    api = served.api
    march = {"period": "2025-03"}
    before = api.get(
        f"/api/v1/units/{w.city}/children/metrics", params={"metric": "caseload", **march}
    ).json()["self"]["value"]
    items = [
        {"source": "ref", "external_id": f"r{i}", "category": category,
         "channel": "hotline_12345", "reported_at": f"2025-03-{day:02d}T{hour:02d}:30:00+08:00",
         "unit_code": unit}
        for i, (category, day, hour, unit) in enumerate([
            ("labour", 3, 9, w.grids[0]),
            ("neighbour", 3, 23, w.grids[3]),  # 15:30 UTC: the 3rd in Shanghai
            ("petition", 31, 1, w.villages[2]),  # the 31st (the 30th in UTC)
            ("safety_hazard", 14, 10, w.grids[5]),
        ])
    ]  # fmt: skip
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # due in 60 days: overdue later
    items.append({**items[2], "external_id": "r-now", "reported_at": now.isoformat()})
    posted = api.post("/api/v1/cases", json=items)
    assert posted.status_code == 200, posted.text
    assert posted.json()["created"] == len(items)
    ids = [item["id"] for item in posted.json()["items"]]
    moved = api.post("/api/v1/cases", json={**items[0], "unit_code": w.grids[1]})
    assert moved.json()["updated"] == 1, moved.text
    steps = {
        ids[0]: [
            {"step": "scheduled", "at": "2025-03-04T10:00:00+08:00"},
            {"step": "handled", "at": "2025-03-09T10:00:00+08:00", "outcome": "mediated_success"},
            {"step": "visited", "at": "2025-03-10T10:00:00+08:00"},
            {"step": "evaluated", "at": "2025-03-11T10:00:00+08:00", "satisfaction": 5},
        ],
        ids[3]: [  # a week's deadline, handled a month later: late, overdue at March's end
            {"step": "scheduled", "at": "2025-03-15T10:00:00+08:00"},
            {"step": "handled", "at": "2025-04-16T10:00:00+08:00", "outcome": "resolved"},
        ],
        ids[1]: [
            {"step": "scheduled", "at": "2025-03-04T07:00:00+08:00"},
            {"step": "handled", "at": "2025-03-04T08:00:00+08:00", "outcome": "resolved"},
        ],
    }
    for case_id, moves in steps.items():
        for move in moves:
            r = api.patch(f"/api/v1/cases/{case_id}", json=move)
            assert r.status_code == 200, (move, r.text)

    recounts = Recounts(served.url)
    after = api.get(
        f"/api/v1/units/{w.city}/children/metrics", params={"metric": "caseload", **march}
    ).json()["self"]["value"]
    assert after == before + len(items) - 1
    ahead = {"start": "2026-05-01", "end": "2030-03-31"}  # the stocks of today, not of 2030
    for i, metric in enumerate(m for m in served.metrics if REGISTRY[m].timed):
        children_rows(served, recounts, metric, march, COMPARES[i % 3])
        children_rows(served, recounts, metric, ahead, COMPARES[(i + 1) % 3])
        choropleth_rows(served, recounts, w.city, "grid", metric, march, COMPARES[(i + 1) % 3])
        choropleth_rows(served, recounts, w.towns[0], "grid", metric, {"period": "2025"}, "prev")
