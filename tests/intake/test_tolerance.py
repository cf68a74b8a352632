"""Points near a unit belong to it: a case point in no leaf unit but within
``ZHILI_LOCATE_TOLERANCE_M`` (50 m on the ground) of one — in a hairline gap or a sliver
between units, or just over the city's edge — goes to the nearest leaf and is flagged
``placed_by_tolerance``; farther out it is refused, told how far the nearest unit is. The
same through the API, a CSV file and a JSON-lines file; the figures count it under its leaf.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.cli import main
from api.db.models import Case
from api.db.session import session_scope
from api.settings import get_settings
from tests.conftest import token_for
from tests.intake.conftest import assert_rollups_equal_recount
from tests.utils.world import GapWorld, build_gap_world, east, north

PERIOD = {"start": "2025-03-01", "end": "2025-03-31"}


@dataclass(frozen=True)
class Spot:
    """A case point and where it must go: ``unit`` None means refused, ``why`` in reason."""

    name: str
    lon: float
    lat: float
    unit: str | None
    by_tolerance: bool = False
    why: str | None = None


def spots(w: GapWorld) -> list[Spot]:
    """The points of the tests, with their known answers."""
    y = w.mid_lat
    in_grid_4 = (w.sliver_east + 0.0075, y)
    return [
        Spot("2 cm west of the city", east(w.west_edge, y, -0.02), y, w.grids[0], True),
        Spot("hairline gap, 2 cm from grid 1", east(w.hairline_west, y, 0.02), y, w.grids[0], True),
        Spot("sliver, 30 m from grid 2", east(w.sliver_west, y, 30), y, w.grids[1], True),
        Spot("sliver, 30 m from grid 3", east(w.sliver_east, y, -30), y, w.grids[2], True),
        Spot(
            "45 m north of grid 4",
            in_grid_4[0],
            north(in_grid_4[0], w.north, 45),
            w.grids[3],
            True,
        ),
        Spot("mid-sliver, 75 m from both", east(w.sliver_west, y, 75), y, w.town),
        Spot("inside grid 4", *in_grid_4, w.grids[3]),
        Spot("500 m west of the city", east(w.west_edge, y, -500), y, None, why="500 m"),
        Spot(
            "60 m north of the city",
            in_grid_4[0],
            north(in_grid_4[0], w.north, 60),
            None,
            why="60 m",
        ),
    ]


def item(i: int, spot: Spot) -> dict:
    return {
        "source": "12345",
        "external_id": f"T{i}",
        "category": "neighbour",
        "channel": "hotline_12345",
        "reported_at": "2025-03-05T09:00:00+08:00",
        "lon": spot.lon,
        "lat": spot.lat,
    }


@pytest.fixture
def gap_world(db_url: str) -> GapWorld:
    with session_scope(db_url) as session:
        return build_gap_world(session)


@pytest.fixture
def writer(app, db_url: str, gap_world: GapWorld) -> Iterator[TestClient]:
    token = token_for(db_url, "intake", gap_world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def admin(app, db_url: str, gap_world: GapWorld) -> Iterator[TestClient]:
    token = token_for(db_url, "admin", gap_world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def stored(db_url: str) -> dict[str, tuple[str | None, str | None, bool]]:
    """external_id → (village, grid, placed_by_tolerance) of every stored case."""
    with session_scope(db_url) as session:
        rows = session.execute(
            select(Case.external_id, Case.village_code, Case.grid_code, Case.placed_by_tolerance)
        ).all()
    return {e: (v, g, p) for e, v, g, p in rows}


def assert_placed(db_url: str, w: GapWorld) -> None:
    """Each point where ``spots`` says, flagged when placed by the tolerance; none refused
    stored."""
    got = stored(db_url)
    for i, spot in enumerate(spots(w)):
        key = f"T{i}"
        if spot.unit is None:
            assert key not in got, spot.name
            continue
        village = spot.unit[:12] if len(spot.unit) >= 12 else None
        grid = spot.unit if len(spot.unit) == 15 else None
        assert got[key] == (village, grid, spot.by_tolerance), spot.name


def test_the_api_places_near_points_in_the_nearest_grid_and_flags_them(
    writer, admin, db_url, gap_world
):
    w = gap_world
    places = spots(w)
    body = writer.post("/api/v1/cases", json=[item(i, s) for i, s in enumerate(places)]).json()
    assert (body["created"], body["rejected"]) == (7, 2), body
    for result, spot in zip(body["items"], places, strict=True):
        if spot.unit is None:
            assert result["status"] == "rejected", spot.name
            assert "outside every unit of the city" in result["reason"], result
            assert f"{spot.why} from the nearest" in result["reason"], result
    assert_placed(db_url, w)

    listed = admin.get("/api/v1/cases", params={"limit": 100}).json()["items"]
    flags = {c["external_id"]: (c["unit_code"], c["placed_by_tolerance"]) for c in listed}
    assert flags == {
        f"T{i}": (s.unit, s.by_tolerance) for i, s in enumerate(places) if s.unit is not None
    }

    # the figures count each placed case under its leaf, at every level
    def caseload(parent: str) -> dict[str, float]:
        r = admin.get(
            f"/api/v1/units/{parent}/children/metrics", params={"metric": "caseload", **PERIOD}
        )
        assert r.status_code == 200, r.text
        out = {row["code"]: row["value"] for row in r.json()["children"]}
        return out | {"self": r.json()["self"]["value"]}

    assert caseload(w.villages[0]) == {w.grids[0]: 2, w.grids[1]: 1, "self": 3}
    assert caseload(w.villages[1]) == {w.grids[2]: 1, w.grids[3]: 2, "self": 3}
    assert caseload(w.town) == {w.villages[0]: 3, w.villages[1]: 3, "self": 7}
    assert_rollups_equal_recount(db_url)


def test_a_resend_from_the_gap_into_the_grid_clears_the_flag(writer, db_url, gap_world):
    w = gap_world
    near = spots(w)[0]
    assert writer.post("/api/v1/cases", json=item(0, near)).json()["created"] == 1
    inside = Spot("inside grid 1", 121.0025, w.mid_lat, w.grids[0])
    body = writer.post("/api/v1/cases", json=item(0, inside)).json()
    assert body["updated"] == 1, body
    assert body["items"][0]["changed"] == ["lon", "placed_by_tolerance"]
    assert stored(db_url)["T0"] == (w.villages[0], w.grids[0], False)
    assert_rollups_equal_recount(db_url)


@pytest.fixture
def no_tolerance(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("ZHILI_LOCATE_TOLERANCE_M", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("ZHILI_LOCATE_TOLERANCE_M")
    get_settings.cache_clear()


def test_a_tolerance_of_zero_refuses_every_point_outside_the_units(
    no_tolerance, writer, db_url, gap_world
):
    outside_city = spots(gap_world)[0]
    body = writer.post("/api/v1/cases", json=item(0, outside_city)).json()
    assert body["rejected"] == 1, body
    assert "0 m from the nearest" in body["items"][0]["reason"]  # 2 cm
    in_the_gap = spots(gap_world)[1]  # inside the village: it falls back to it, as before
    assert writer.post("/api/v1/cases", json=item(1, in_the_gap)).json()["created"] == 1
    assert stored(db_url)["T1"] == (gap_world.villages[0], None, False)


def run(db_url: str, *args: str):
    return CliRunner().invoke(main, ["import-cases", *args, "--quiet", "--database-url", db_url])


def count_cases(db_url: str) -> int:
    with session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(Case))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_imported_file_places_near_points_alike(db_url, gap_world, tmp_path, fmt):
    places = spots(gap_world)
    items = [item(i, s) for i, s in enumerate(places)]
    path = tmp_path / f"cases.{fmt}"
    if fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            out = csv.DictWriter(fh, fieldnames=list(items[0]))
            out.writeheader()
            out.writerows(items)
    else:
        path.write_bytes(b"\n".join(orjson.dumps(i) for i in items) + b"\n")
    result = run(db_url, str(path), "--errors", str(tmp_path / "bad.csv"))
    assert result.exit_code == 1, result.output  # some rows were refused
    assert "9 rows: 7 created, 0 updated, 0 unchanged, 2 rejected" in result.output
    with (tmp_path / "bad.csv").open(encoding="utf-8-sig") as fh:
        errors = list(csv.DictReader(fh))
    first_line = 2 if fmt == "csv" else 1
    refused = [(i, s) for i, s in enumerate(places) if s.unit is None]
    assert [(int(e["line"]), e["external_id"]) for e in errors] == [
        (i + first_line, f"T{i}") for i, _ in refused
    ]
    for e, (_, spot) in zip(errors, refused, strict=True):
        assert f"outside every unit of the city, {spot.why} from the nearest" in e["reason"]
    assert_placed(db_url, gap_world)
    assert_rollups_equal_recount(db_url)

    again = run(db_url, str(path))
    assert "9 rows: 0 created, 0 updated, 7 unchanged, 2 rejected" in again.output
    assert count_cases(db_url) == 7
