"""Importing monthly special-population counts: CSV, XLSX and JSON lines; one month of
one department per import; a re-import replaces the month and keeps the history; any
offending row refuses the file whole, every such row listed, nothing stored."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from api.cli import main
from api.db.populations import PopulationBatch, PopulationCount
from api.db.session import session_scope
from api.services.population_import import (
    PopulationImportError,
    import_populations,
    read_rows,
)

HEADER = "unit_code,group,registered,under_management,visited,lost_contact,newly_registered,left"
NOV = dt.date(2026, 11, 1)


def _csv(tmp_path: Path, rows: list[str], name: str = "nov.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _counts(url: str) -> tuple[int, int, int]:
    with session_scope(url) as s:
        current = s.scalar(
            select(func.coalesce(func.sum(PopulationCount.registered), 0)).where(
                PopulationCount.is_current.is_(True)
            )
        )
        rows = s.scalar(select(func.count()).select_from(PopulationCount))
        batches = s.scalar(select(func.count()).select_from(PopulationBatch))
    return int(current), int(rows), int(batches)


def test_import_then_reimport_replaces_the_month_and_keeps_history(db_url, world, tmp_path):
    g0, g1 = world.grids[0], world.grids[1]
    first = _csv(tmp_path, [f"{g0},community_correction,7,6,5,1,1,0", f"{g1},floating,300,,,,,"])
    with session_scope(db_url) as s:
        report = import_populations(s, first, NOV, "司法局")
    assert report.rows == 2 and report.units == 2 and report.replaced is None
    assert report.totals["community_correction"]["visited"] == 5
    assert "every row valid" in report.lines()[0]
    assert _counts(db_url) == (307, 2, 1)

    second = _csv(tmp_path, [f"{g0},community_correction,9,9,9,0,2,0"], "nov2.csv")
    with session_scope(db_url) as s:
        again = import_populations(s, second, NOV, "司法局")
        other = import_populations(s, first, NOV, "公安局")  # another department: kept apart
    assert again.replaced == report.batch_id and other.replaced is None
    assert _counts(db_url) == (9 + 307, 5, 3)
    with session_scope(db_url) as s:
        old = s.get(PopulationBatch, report.batch_id)
        assert old.replaced_by == again.batch_id and old.replaced_at is not None
        kept = s.scalars(
            select(PopulationCount.registered).where(PopulationCount.batch_id == old.id)
        ).all()
        assert sorted(kept) == [7, 300]  # the history keeps the replaced rows


def test_offending_rows_refuse_the_file_and_nothing_is_stored(db_url, world, tmp_path):
    g0 = world.grids[0]
    bad = _csv(
        tmp_path,
        [
            f"{g0},community_correction,7,6,5,1,1,0",  # fine
            "999999999999001,key_youth,1,1,0,0,0,0",  # unknown unit
            f"{world.villages[0]},key_youth,1,1,0,0,0,0",  # a village with grids: not a leaf
            f"{g0},key_youth,-3,0,0,0,0,0",  # negative
            f"{g0},severe_mental_disorder,8,4,6,0,0,0",  # visited above under management
            f"{g0},no_such_group,1,1,1,0,0,0",  # unknown group
            f"{g0},community_correction,1.5,1,1,0,0,0",  # not whole, and twice
        ],
    )
    with session_scope(db_url) as s, pytest.raises(PopulationImportError) as caught:
        import_populations(s, bad, NOV, "司法局")
    lines = {p.line for p in caught.value.problems}
    assert lines == {3, 4, 5, 6, 7, 8}
    text = "\n".join(map(str, caught.value.problems))
    for reason in (
        "unknown unit code",
        "negative",
        "visited (6) above under management (4)",
        "unknown group",
        "not a whole number",
        "appear twice",
    ):
        assert reason in text
    assert _counts(db_url) == (0, 0, 0)


@pytest.fixture
def sqlite_world(sqlite_template, tmp_path):
    import shutil

    from api.db.session import dispose_engines
    from tests.utils.world import build_tiny_world

    path = tmp_path / "w.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    with session_scope(url) as s:
        w = build_tiny_world(s)
    yield url, w
    dispose_engines()


def test_xlsx_and_json_lines_read_like_csv(tmp_path, sqlite_world):
    from openpyxl import Workbook

    url, w = sqlite_world
    book = Workbook()
    sheet = book.active
    sheet.append(["单位编码", "类别", "登记", "在管", "走访帮扶", "失联", "新增", "减少"])
    sheet.append([w.grids[0], "key_youth", 12, 10, 8, 1, 2, 1])
    sheet.append([w.grids[1], "rental_housing", 40, None, None, None, None, None])
    xlsx = tmp_path / "nov.xlsx"
    book.save(xlsx)
    jsonl = tmp_path / "nov.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps(
                {
                    "unit_code": w.grids[0],
                    "group": "key_youth",
                    "registered": 12,
                    "under_management": 10,
                    "visited": 8,
                    "lost_contact": 1,
                    "newly_registered": 2,
                    "left": 1,
                }
            )
            for _ in range(1)
        )
        + "\n"
        + json.dumps({"unit_code": w.grids[1], "group": "rental_housing", "registered": 40})
        + "\n",
        encoding="utf-8",
    )
    as_xlsx = [(r["unit_code"], r["group"], r.get("registered")) for _, r in read_rows(xlsx)]
    as_jsonl = [(r["unit_code"], r["group"], r.get("registered")) for _, r in read_rows(jsonl)]
    assert as_xlsx == as_jsonl
    with session_scope(url) as s:
        report = import_populations(s, xlsx, NOV, "综治办")
    assert report.rows == 2 and report.totals["rental_housing"]["registered"] == 40


def test_cli_prints_the_report_and_refuses_with_the_rows(tmp_path, sqlite_world):
    url, w = sqlite_world
    good = _csv(tmp_path, [f"{w.grids[0]},key_youth,12,10,8,1,2,1"])
    runner = CliRunner()
    args = ["import-populations", str(good), "--month", "2026-11", "--department", "团委"]
    ok = runner.invoke(main, [*args, "--database-url", url])
    assert ok.exit_code == 0, ok.output
    assert "every row valid" in ok.output and "key_youth" in ok.output
    again = runner.invoke(main, [*args, "--database-url", url])
    assert "replaced batch" in again.output
    bad = _csv(tmp_path, [f"{w.grids[0]},key_youth,1,2,3,0,0,0"], "bad.csv")
    refused = runner.invoke(
        main,
        [
            "import-populations",
            str(bad),
            "--month",
            "2026-11",
            "--department",
            "团委",
            "--database-url",
            url,
        ],
    )
    assert refused.exit_code == 2
    assert "line 2" in refused.output and "above under management" in refused.output
    month = runner.invoke(
        main,
        [
            "import-populations",
            str(good),
            "--month",
            "2026/11",
            "--department",
            "团委",
            "--database-url",
            url,
        ],
    )
    assert month.exit_code == 2 and "YYYY-MM" in month.output
