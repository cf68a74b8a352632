"""Dispatch events end to end on both databases: a small world of events whose right
answers this test computes itself (each share over the events that needed the step, the
median and 90th percentile of each interval by nearest rank), the rollups equal to a
rebuild from the raw events, late updates, and every refusal with its reason and nothing
stored."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.events import HISTOGRAMS, DispatchEvent, EventRollupDaily, PatrolUnit
from api.db.session import session_scope
from api.engine import EVENTS, rebuild
from geo.locate import wgs84_to_gcj02
from tests.conftest import token_for

BEIJING = dt.timezone(dt.timedelta(hours=8))
MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
FORCES = ("police", "unit_security", "grid_patrol", "volunteer")
TYPES = ("crime", "dispute", "traffic", "help", "other")


def grid_box(world, code: str) -> tuple[float, float, float, float]:
    """The tiny world's grid boxes (tests/utils/world.py): town t, village v, grid g."""
    t, v, g = int(code[6:9]) - 1, int(code[9:12]) - 1, int(code[12:15]) - 1
    x0, y0 = 121.0 + 0.1 * t + 0.05 * g, 31.4 + 0.1 * v
    return x0, y0, x0 + 0.05, y0 + 0.1


def make_events(world, n: int = 160, seed: int = 7) -> list[dict]:
    """Events in March 2026 in the six grids, with step times drawn so that every target
    is met by some and missed by others."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        grid = world.grids[i % len(world.grids)]
        x0, y0, x1, y1 = grid_box(world, grid)
        received = dt.datetime(
            2026, 3, 1 + i % 28, int(rng.integers(0, 24)), int(rng.integers(0, 60)), tzinfo=BEIJING
        )
        set_off = received + dt.timedelta(seconds=int(rng.integers(20, 400)))
        on_scene = set_off + dt.timedelta(seconds=int(rng.integers(30, 500)))
        event = {
            "source": "110",
            "external_id": f"E{i:04d}",
            "type": TYPES[i % 5],
            "priority": 1 + i % 3,
            "received_at": received.isoformat(),
            "set_off_at": set_off.isoformat(),
            "force_kind": FORCES[(i // 3) % 4],
            "lon": round(float(rng.uniform(x0 + 0.001, x1 - 0.001)), 6),
            "lat": round(float(rng.uniform(y0 + 0.001, y1 - 0.001)), 6),
        }
        if i % 10 != 3:  # one in ten has no on-scene time yet: a miss until it arrives
            event["on_scene_at"] = on_scene.isoformat()
        if i % 4 == 0:
            event["support_requested"] = True
            if i % 8 == 0:
                support = received + dt.timedelta(seconds=int(rng.integers(300, 1500)))
                event["support_at"] = support.isoformat()
        if i % 9 == 0:
            event["cordon_at"] = (
                received + dt.timedelta(seconds=int(rng.integers(600, 2700)))
            ).isoformat()
        event["closed_at"] = (received + dt.timedelta(hours=2)).isoformat()
        out.append(event)
    return out


def seconds(e: dict, step: str) -> float | None:
    at = e.get(step)
    if at is None:
        return None
    a = dt.datetime.fromisoformat(at)
    return math.floor(a.timestamp()) - math.floor(
        dt.datetime.fromisoformat(e["received_at"]).timestamp()
    )


def expected(events: list[dict]) -> dict[str, float | None]:
    """The figures of a set of events, counted here from the raw events."""
    n = len(events)

    def share(step, limit, needed):
        need = [e for e in events if needed(e)]
        hit = [e for e in need if seconds(e, step) is not None and seconds(e, step) <= limit]
        return len(hit) / len(need) if need else None

    def rank(step, q, needed=lambda e: True):
        values = sorted(seconds(e, step) // 60 for e in events if needed(e) and e.get(step))
        return float(values[max(1, math.ceil(q * len(values) - 1e-9)) - 1]) if values else None

    support = lambda e: bool(e.get("support_requested") or e.get("support_at"))  # noqa: E731
    cordon = lambda e: bool(e.get("cordon_at"))  # noqa: E731
    return {
        "dispatch_events": n,
        "set_off_3min_rate": share("set_off_at", 180, lambda e: True),
        "on_scene_5min_rate": share("on_scene_at", 300, lambda e: True),
        "support_15min_rate": share("support_at", 900, support),
        "cordon_30min_rate": share("cordon_at", 1800, cordon),
        "median_minutes_to_scene": rank("on_scene_at", 0.5),
        "p90_minutes_to_scene": rank("on_scene_at", 0.9),
        "median_minutes_to_set_off": rank("set_off_at", 0.5),
        "median_minutes_to_support": rank("support_at", 0.5, support),
        "crime_events": sum(e["type"] == "crime" for e in events),
    }


def rollup_rows(session) -> dict[str, set]:
    tables = [EventRollupDaily.__table__, *(h.__table__ for h in HISTOGRAMS)]
    return {t.name: set(session.execute(select(t)).all()) for t in tables}


@pytest.fixture
def api(app, db_url, world):
    with session_scope(db_url) as session:
        session.add_all([PatrolUnit(code=f"P{k}", force_kind=k) for k in FORCES])
    token = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def test_figures_from_rollups_equal_the_raw_events(api, db_url, world) -> None:
    events = make_events(world)
    answer = api.post("/api/v1/events", json=events)
    assert answer.status_code == 200, answer.text[:600][:600]
    assert answer.json()["created"] == len(events)

    town = world.towns[0]
    villages = [v for v in world.villages if world.parent[v] == town]
    for metric in expected(events):
        got = api.get(
            f"/api/v1/units/{town}/children/metrics", params={"metric": metric, **MARCH}
        ).json()
        values = {c["code"]: c["value"] for c in got["children"]}
        for village in villages:
            mine = [
                e
                for e, g in zip(
                    events, [world.grids[i % 6] for i in range(len(events))], strict=True
                )
                if world.parent[g] == village
            ]
            want = expected(mine)[metric]
            assert values[village] == pytest.approx(want), (metric, village)
        assert got["self"]["value"] == pytest.approx(
            expected(
                [
                    e
                    for i, e in enumerate(events)
                    if world.parent[world.parent[world.grids[i % 6]]] == town
                ]
            )[metric]
        ), metric

    per_force = api.get(
        f"/api/v1/units/{world.city}/breakdown",
        params={"metric": "on_scene_5min_rate", "by": "force_kind", **MARCH},
    ).json()
    for item in per_force["items"]:
        mine = [e for e in events if e["force_kind"] == item["key"]]
        assert item["value"] == pytest.approx(expected(mine)["on_scene_5min_rate"])

    with session_scope(db_url) as session:  # the rollups kept by intake = a rebuild
        kept = rollup_rows(session)
        rebuild(session, EVENTS)
        assert rollup_rows(session) == kept
        assert sum(r.events for r in kept["event_rollup_daily"]) == len(events)


def test_a_late_on_scene_time_is_accepted_and_moves_the_figures(api, db_url, world) -> None:
    events = make_events(world, n=30)
    assert api.post("/api/v1/events", json=events).status_code == 200
    late = events[3]  # stored without an on-scene time
    assert "on_scene_at" not in late
    arrived = dt.datetime.fromisoformat(late["received_at"]) + dt.timedelta(minutes=4)
    update = {
        "source": "110",
        "external_id": late["external_id"],
        "on_scene_at": arrived.isoformat(),
    }
    again = api.post("/api/v1/events", json=update).json()
    assert again["updated"] == 1 and again["items"][0]["changed"] == ["on_scene_at"]
    assert api.post("/api/v1/events", json=update).json()["unchanged"] == 1
    city = api.get(
        f"/api/v1/units/{world.city}/children/metrics",
        params={"metric": "on_scene_5min_rate", **MARCH},
    ).json()["self"]
    late["on_scene_at"] = arrived.isoformat()
    assert city["value"] == pytest.approx(expected(events)["on_scene_5min_rate"])
    with session_scope(db_url) as session:
        kept = rollup_rows(session)
        rebuild(session, EVENTS)
        assert rollup_rows(session) == kept


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_gcj02_points_and_codes_are_placed(api, db_url, world) -> None:
    x0, y0, *_ = grid_box(world, world.grids[4])
    lon, lat = wgs84_to_gcj02(np.array([x0 + 0.02]), np.array([y0 + 0.05]))
    base = {
        "source": "110",
        "received_at": "2026-03-05T10:00:00+08:00",
        "type": "help",
        "force_kind": "police",
    }
    items = [
        {**base, "external_id": "G1", "lon": float(lon[0]), "lat": float(lat[0]), "crs": "gcj02"},
        {**base, "external_id": "G2", "unit_code": world.grids[1], "category": "medical"},
        {
            **base,
            "external_id": "G3",
            "lon": x0 + 0.02,
            "lat": y0 + 0.05,
            "patrol_unit_code": "Pvolunteer",
            "force_kind": None,
        },
    ]
    answer = api.post("/api/v1/events", json=items)
    assert answer.status_code == 200, answer.text[:600][:600]
    with session_scope(db_url) as session:
        rows = {e.external_id: e for e in session.scalars(select(DispatchEvent))}
    assert rows["G1"].grid_code == world.grids[4]
    assert rows["G2"].grid_code == world.grids[1] and rows["G2"].type == "help"
    assert rows["G3"].force_kind == "volunteer" and rows["G3"].shift == "day"


BAD = [  # (change to a good event, words of the reason)
    ({"set_off_at": "2026-03-05T09:59:00+08:00"}, "timestamps out of order"),
    (
        {"set_off_at": "2026-03-05T10:05:00+08:00", "on_scene_at": "2026-03-05T10:03:00+08:00"},
        "on_scene_at",
    ),
    ({"closed_at": "2026-03-05T09:00:00+08:00"}, "out of order"),
    ({"lon": 116.4, "lat": 39.9}, "outside every unit"),
    ({"lon": 31.5, "lat": 121.05}, "swapped"),
    ({"force_kind": "army"}, "unknown force"),
    ({"patrol_unit_code": "NOPE"}, "unknown patrol unit"),
    ({"patrol_unit_code": "Ppolice", "force_kind": "volunteer"}, "is 'police'"),
    ({"type": "weather"}, "unknown type"),
    ({"category": "theft", "type": "help"}, "is of type 'crime'"),
    ({"received_at": "2031-01-01T00:00:00+08:00"}, "in the future"),
    ({"received_at": "yesterday"}, "not a date-time"),
    ({"case_id": 99999}, "no case 99999"),
    ({"unit_code": "999"}, "no unit"),
    ({"colour": "red"}, "unknown field"),
]


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_every_bad_event_is_refused_with_its_reason_and_nothing_stored(api, db_url, world) -> None:
    x0, y0, *_ = grid_box(world, world.grids[0])
    good = {
        "source": "110",
        "external_id": "OK",
        "type": "help",
        "force_kind": "police",
        "received_at": "2026-03-05T10:00:00+08:00",
        "lon": x0 + 0.01,
        "lat": y0 + 0.01,
    }
    for change, words in BAD:
        item = {**good, **change}
        if "unit_code" in change:
            item.pop("lon"), item.pop("lat")
        answer = api.post("/api/v1/events", json=[good, {**item, "external_id": "BAD"}])
        assert answer.status_code == 422, (change, answer.text[:300])
        body = answer.json()
        reasons = [i.get("reason", "") for i in body["items"] if i["status"] == "rejected"]
        assert any(words in r for r in reasons), (change, reasons)
        assert "Traceback" not in answer.text[:600]
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(DispatchEvent)) == 0
        assert session.scalar(select(func.count()).select_from(EventRollupDaily)) == 0
    assert api.post("/api/v1/events", json=good).status_code == 200
    late_bad = {"source": "110", "external_id": "OK", "on_scene_at": "2026-03-05T09:00:00+08:00"}
    refused = api.post("/api/v1/events", json=late_bad)
    assert refused.status_code == 422 and "out of order" in refused.text
    with session_scope(db_url) as session:
        assert session.scalar(select(DispatchEvent.on_scene_at)) is None
