"""The skeleton every later piece stands on: models, ancestry, health, migrations."""

from __future__ import annotations

import datetime as dt

import pytest
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import select

from api.db.models import AdminUnit, UnitAncestry
from api.db.session import session_scope
from api.services.units import (
    CITY_TOWN_VILLAGE_GRID,
    UnitRecord,
    add_units,
    ensure_levels,
    set_parent,
)


def test_unit_round_trips_with_its_geometry(db_url: str) -> None:
    # A polygon with a hole and a second part, at full coordinate precision.
    shell = [(121.123456789, 31.5), (121.2, 31.5), (121.2, 31.6), (121.123456789, 31.6)]
    hole = [(121.15, 31.52), (121.16, 31.52), (121.16, 31.53)]
    geom = MultiPolygon(
        [Polygon(shell, [hole]), Polygon([(121.3, 31.5), (121.4, 31.5), (121.4, 31.6)])]
    )
    with session_scope(db_url) as session:
        ensure_levels(session, CITY_TOWN_VILLAGE_GRID)
        add_units(
            session,
            [
                UnitRecord(
                    "320583",
                    "昆山市",
                    "city",
                    None,
                    geom,
                    population=1,
                    valid_from=dt.date(2020, 1, 1),
                )
            ],
        )
    with session_scope(db_url) as session:
        unit = session.scalars(select(AdminUnit)).one()
        assert unit.geom.equals_exact(geom, 0)
        assert unit.geom.geom_type == "MultiPolygon"
        assert unit.name == "昆山市" and unit.valid_from == dt.date(2020, 1, 1)
        assert unit.valid_to is None


def ancestors(session, code: str) -> dict[str, str]:
    rows = session.execute(
        select(UnitAncestry.ancestor_level, UnitAncestry.ancestor_code)
        .join(AdminUnit, AdminUnit.id == UnitAncestry.unit_id)
        .where(AdminUnit.code == code, AdminUnit.valid_to.is_(None))
    ).all()
    return dict(rows)


def test_ancestry_follows_a_reparented_unit(db_url: str, world) -> None:
    village = world.villages[0]  # in town 1, with two grids
    grid = world.grids[0]
    with session_scope(db_url) as session:
        assert ancestors(session, grid) == {
            "grid": grid,
            "village": village,
            "town": world.towns[0],
            "city": world.city,
        }
        set_parent(session, village, world.towns[1])
    with session_scope(db_url) as session:
        assert ancestors(session, village)["town"] == world.towns[1]
        assert ancestors(session, grid)["town"] == world.towns[1]  # the subtree follows
        assert ancestors(session, world.grids[2])["town"] == world.towns[0]  # others stay


def test_health_reports_database_and_revision(client, db_kind: str) -> None:
    from api.db.migrate import head_revision

    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if db_kind == "sqlite" else "postgresql")
    assert body["schema_revision"] == head_revision() != ""
    if db_kind == "postgis":
        assert body["postgis"].startswith("3.")


def test_levels_are_data(client) -> None:
    levels = client.get("/api/v1/levels").json()
    assert [lvl["code"] for lvl in levels] == ["city", "town", "village", "grid"]
    assert levels[2]["name_zh"] == "村/社区"


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic abc"])
def test_reads_need_a_valid_token(app, world, header) -> None:
    from fastapi.testclient import TestClient

    headers = {"Authorization": header} if header else {}
    response = TestClient(app).get("/api/v1/levels", headers=headers)
    assert response.status_code == 401
    assert "token" in response.json()["message"]


def test_first_bumps_of_a_dataset_version_from_two_transactions_both_count(db_url: str) -> None:
    """Two transactions that bump a name no one has bumped yet, at the same moment: both
    commit and the counter ends at 2 (before, the second INSERT failed on the key)."""
    import threading

    from api.db.versions import bump_version, get_version

    ready = threading.Barrier(2)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            with session_scope(db_url) as session:
                get_version(session, "fresh")  # open the transaction first
                ready.wait(timeout=10)
                bump_version(session, "fresh")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    with session_scope(db_url) as session:
        assert get_version(session, "fresh") == 2
