"""docs/architecture.md's worked example, carried out: its code blocks declare a small fact
domain (patrol visits), and the API and a choropleth then serve it like any other figure."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import AdminUnit
from api.db.session import session_scope
from api.engine import forget_domain, get_metric
from tests.conftest import token_for

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


def example_blocks() -> list[str]:
    """The Python blocks of the worked example, in order."""
    section = DOC.read_text(encoding="utf-8").split("## Adding a fact domain", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture
def patrols(db_url: str, world):
    """The example's namespace after its blocks ran (the domain registered), with its
    table created in the test database; the domain is forgotten afterwards."""
    namespace: dict = {}
    for block in example_blocks():
        exec(compile(block, str(DOC), "exec"), namespace)
    with session_scope(db_url) as session:
        namespace["metadata"].create_all(session.get_bind())
    yield namespace
    forget_domain("patrol_visits")


BEIJING = dt.timezone(dt.timedelta(hours=8))


def at(day: int) -> dt.datetime:
    """10:00 on day ``day`` of 2026-03, Beijing time."""
    return dt.datetime(2026, 3, day, 10, tzinfo=BEIJING)


def test_the_example_domain_is_served_like_any_figure(db_url, world, app, patrols) -> None:
    with session_scope(db_url) as session:
        ids = dict(
            session.execute(
                select(AdminUnit.code, AdminUnit.id).where(AdminUnit.code.in_(world.grids))
            ).all()
        )
    g = world.grids  # two grids in each of the first three villages
    visits = [  # (grid, day, kind, hazard)
        (g[0], 2, "routine", True), (g[0], 3, "night", False), (g[1], 3, "routine", False),
        (g[2], 5, "special", True), (g[2], 6, "routine", True), (g[3], 9, "routine", False),
        (g[4], 1, "night", False),
    ]  # fmt: skip
    rows = [
        {"leaf_unit_id": ids[code], "visited_at": at(day), "kind": kind, "hazard_found": hazard}
        for code, day, kind, hazard in visits
    ]
    # 00:30 on 1 April in Beijing is still 31 March in UTC: an April visit, not a March one
    april = dt.datetime(2026, 4, 1, 0, 30, tzinfo=BEIJING)
    rows.append({**rows[0], "visited_at": april, "hazard_found": True})
    with session_scope(db_url) as session:
        patrols["record_visits"](session, rows)

    token = token_for(db_url, "analyst", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        listed = {m["id"]: m for m in api.get("/api/v1/metrics").json()}
        assert listed["hazard_find_rate"]["timed"] is True
        assert get_metric("patrol_visits_per_1k").denominator == "population"

        period = {"start": "2026-03-01", "end": "2026-03-31"}
        town = world.parent[world.parent[g[0]]]
        answer = api.get(
            f"/api/v1/units/{town}/children/metrics", params={"metric": "patrol_visits", **period}
        ).json()
        by_village = {c["code"]: c["value"] for c in answer["children"]}
        expected: dict[str, int] = {}
        for code, *_ in visits:
            if world.parent[world.parent[code]] == town:
                expected[world.parent[code]] = expected.get(world.parent[code], 0) + 1
        assert by_village == {v: expected.get(v, 0) for v in by_village}
        assert answer["self"]["value"] == sum(expected.values())

        rate = api.get(
            "/api/v1/choropleth",
            params={"parent": world.city, "level": "grid", "metric": "hazard_find_rate",
                    **period},
        )  # fmt: skip
        assert rate.status_code == 200
        features = {f["id"]: f["properties"] for f in rate.json()["features"]}
        # two March visits, one found a hazard (the April one, with a hazard, is not March's)
        assert features[g[0]]["numerator"] == 1 and features[g[0]]["denominator"] == 2
        assert features[g[0]]["value"] == pytest.approx(0.5)
        assert features[g[5]]["value"] is None  # no visit: no rate, never 0 %

        per_1k = api.get(
            "/api/v1/choropleth",
            params={"parent": world.city, "level": "village", "metric": "patrol_visits_per_1k",
                    "format": "csv", **period},
        )  # fmt: skip
        assert per_1k.status_code == 200 and "patrol_visits_per_1k" in per_1k.text

        with session_scope(db_url) as session:  # new visits: the next request sees them
            patrols["record_visits"](session, [{**rows[0], "visited_at": at(4)}])
        again = api.get(
            f"/api/v1/units/{town}/children/metrics", params={"metric": "patrol_visits", **period}
        ).json()
        assert again["self"]["value"] == answer["self"]["value"] + 1

    forget_domain("patrol_visits")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        assert "patrol_visits" not in {m["id"] for m in api.get("/api/v1/metrics").json()}
