"""Time-versioned boundaries: a village merged mid-year. Its grids move to the surviving
village on the day of the merger; each case counts under the unit its grid belonged to on
the day it was reported, and children always add up to their parent."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import AdminUnit
from api.db.session import session_scope
from api.db.versions import bump_version
from api.engine.cube import forget_states
from api.engine.rollup import CaseSnapshot, apply_case_changes
from api.services.units import UnitRecord, supersede_units
from tests.conftest import token_for
from tests.engine.cases import insert_cases, random_cases
from tests.engine.expected import day

MERGER = dt.date(2025, 7, 1)
YEAR = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))


@pytest.fixture
def merged(db_url: str, world):
    """Village 2 of the east town merged into village 1 on 2025-07-01; 400 cases in
    2025 on the east town's grids, each on the grid version valid on its day."""
    forget_states()
    town = world.towns[0]
    kept, gone = world.villages[0], world.villages[1]
    moved = [g for g in world.grids if world.parent[g] == gone]
    with session_scope(db_url) as session:
        old_ids = {
            u.code: u.id
            for u in session.scalars(select(AdminUnit).where(AdminUnit.parent_code == gone))
        }
        olds = {
            u.code: u for u in session.scalars(select(AdminUnit).where(AdminUnit.code.in_(moved)))
        }
        supersede_units(
            session,
            [
                UnitRecord(g, olds[g].name, "grid", kept, olds[g].geom,
                           population=olds[g].population, valid_from=MERGER)
                for g in moved
            ],
        )  # fmt: skip
        session.scalars(select(AdminUnit).where(AdminUnit.code == gone)).one().valid_to = MERGER
        bump_version(session, "boundaries")
        session.flush()
        current = {
            u.code: u.id
            for u in session.scalars(select(AdminUnit).where(AdminUnit.valid_to.is_(None)))
        }
        grids = [g for g in world.grids if world.parent[g] in (kept, gone)]
        cases = random_cases(
            {g: current[g] for g in grids}, 400, dt.date(2025, 1, 1), dt.date(2025, 12, 31), 21
        )
        rows = insert_cases(session, current, cases)
        for case, row in zip(cases, rows, strict=True):
            if case["leaf_code"] in moved and day(case["reported_at"]) < MERGER:
                row.leaf_unit_id = old_ids[case["leaf_code"]]
        session.flush()
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    return town, kept, gone, moved, cases


def count(cases, codes, start: dt.date, end: dt.date, before_merger: bool | None = None):
    out = 0
    for c in cases:
        d = day(c["reported_at"])
        in_time = before_merger is None or (d < MERGER) == before_merger
        if c["leaf_code"] in codes and start <= d <= end and in_time:
            out += 1
    return out


def test_merged_village_counts_under_its_unit_of_the_day(app, db_url, world, merged) -> None:
    town, kept, gone, moved, cases = merged
    own = [g for g in world.grids if world.parent[g] == kept]
    year = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    token = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:

        def figures(code: str, **params) -> dict:
            r = api.get(f"/api/v1/units/{code}/children/metrics", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            return {row["code"]: row["value"] for row in [*body["children"], body["self"]]}

        both = figures(town, metric="caseload", period="2025")
        assert both[gone] == count(cases, moved, *year, before_merger=True) > 0
        assert both[kept] == count(cases, own, *year) + count(
            cases, moved, *year, before_merger=False
        )
        assert both[town] == len(cases) == both[gone] + both[kept]
        # after the merger the retired village is no longer a child
        h2 = figures(town, metric="caseload", start="2025-07-01", end="2025-12-31")
        assert gone not in h2
        assert h2[kept] == h2[town] == count(cases, own + moved, MERGER, year[1])
        # a moved grid under the surviving village counts only its cases since the merger
        grid = moved[0]
        under_kept = figures(kept, metric="caseload", period="2025")
        assert under_kept[grid] == count(cases, [grid], *year, before_merger=False)
        assert sum(v for k, v in under_kept.items() if k != kept) == under_kept[kept]
        # the map shows today's villages; the surviving one carries its own year
        geo = api.get(
            "/api/v1/choropleth",
            params={"parent": town, "level": "village", "metric": "caseload", "period": "2025"},
        ).json()
        values = {f["id"]: f["properties"]["value"] for f in geo["features"]}
        assert values == {kept: both[kept]}


def test_a_retired_village_keeps_its_history(app, db_url, world, merged) -> None:
    """The merged village is no longer current, but its page and its past figures are
    still there for whoever may see its town; outside the town it does not exist."""
    town, _kept, gone, moved, cases = merged
    token = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        unit = api.get(f"/api/v1/units/{gone}")
        assert unit.status_code == 200, unit.text
        assert unit.json()["current"] is False
        assert [a["code"] for a in unit.json()["ancestors"]][-1] == town
        series = api.get(
            f"/api/v1/units/{gone}/timeseries",
            params={"metric": "caseload", "start": "2025-01-01", "end": "2025-12-31"},
        )
        assert series.status_code == 200, series.text
        by_month = {p["start"][:7]: p["value"] for p in series.json()["points"]}
        assert sum(by_month.values()) == count(cases, moved, *YEAR, before_merger=True) > 0
        assert all(by_month[m] == 0 for m in by_month if m >= "2025-07")
    other_town = next(t for t in world.towns if t != town)
    outsider = token_for(db_url, "admin", other_town)
    with TestClient(app, headers={"Authorization": f"Bearer {outsider}"}) as api:
        assert api.get(f"/api/v1/units/{gone}").status_code == 404
