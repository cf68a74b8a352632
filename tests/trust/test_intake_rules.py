"""Point 18: a case filed against a unit with units below it (a town) is refused, naming
the levels that take cases, through the API and through ``zhili import-cases``."""

from __future__ import annotations

import orjson
from click.testing import CliRunner
from sqlalchemy import func, select

from api.cli import main
from api.db.models import Case
from api.db.session import session_scope
from tests.intake.conftest import case


def _count(db_url: str) -> int:
    with session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(Case))


def test_a_case_against_a_town_or_city_is_refused_naming_the_levels_that_take_cases(
    writer, db_url, world
) -> None:
    items = [
        case(lon=None, lat=None, unit_code=world.towns[0]),  # 东镇: villages, then grids
        case(lon=None, lat=None, unit_code=world.towns[1]),  # 西镇: one village without grids
        case(lon=None, lat=None, unit_code=world.villages[0]),  # a village with grids
        case(lon=None, lat=None, unit_code=world.leaf_town),  # a 街道 with nothing below
        case(lon=None, lat=None, unit_code=world.grids[0]),
    ]
    body = writer.post("/api/v1/cases", json=items).json()
    statuses = [i["status"] for i in body["items"]]
    assert statuses == ["rejected", "rejected", "rejected", "created", "created"], body
    east, west, village = (i["reason"] for i in body["items"][:3])
    assert "levels that take cases here are grid (网格)" in east, east
    assert "village (村/社区) or grid (网格)" in west, west
    assert world.towns[0] in east and "town" in east
    assert "grid" in village and world.villages[0] in village
    assert _count(db_url) == 2


def test_import_refuses_a_town_code_too(db_url, world, tmp_path) -> None:
    lines = [
        orjson.dumps({**case(lon=None, lat=None, unit_code=world.towns[0])}).decode(),
        orjson.dumps({**case(lon=None, lat=None, unit_code=world.grids[1])}).decode(),
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errors = tmp_path / "bad.csv"
    result = CliRunner().invoke(
        main,
        ["import-cases", str(path), "--errors", str(errors), "--quiet", "--database-url", db_url],
    )
    assert result.exit_code == 1, result.output
    assert "1 created" in result.output and "1 rejected" in result.output, result.output
    assert "levels that take cases" in errors.read_text(encoding="utf-8-sig")
    assert _count(db_url) == 1
