"""``zhili import-events``: CSV (Chinese headers) and JSON lines through the event intake;
bad rows listed with line and reason, good rows land, a re-run changes nothing, a later
file with on-scene times is a late update."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from api.cli import main
from api.db.events import DispatchEvent, EventRollupDaily
from api.db.session import session_scope
from api.engine import EVENTS, rebuild


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_csv_and_json_lines_import(db_url, world, tmp_path) -> None:
    csv_path = tmp_path / "events.csv"
    csv_path.write_text(
        "警情编号,警情类别,接警时间,出警时间,处警力量,经度,纬度,报警人电话\n"
        "A1,求助,2026-03-05 10:00:00,2026-03-05 10:02:00,police,121.02,31.45,13800000000\n"
        "A2,traffic,2026-03-05 11:00:00,2026-03-05 10:59:00,police,121.02,31.45,1\n"
        "A3,help,2026-03-05 12:00:00,,army,121.02,31.45,1\n"
        "A4,help,2026-03-05 12:00:00,,volunteer,116.4,39.9,1\n"
        "A5,crime,2026/03/06 08:00,,grid_patrol,121.12,31.55,1\n",
        encoding="gb18030",
    )
    runner = CliRunner()
    args = ["import-events", str(csv_path), "--source", "110", "--quiet",
            "--database-url", db_url]  # fmt: skip
    first = runner.invoke(main, args)
    assert first.exit_code == 1, first.output
    assert "5 rows: 2 created, 0 updated, 0 unchanged, 3 rejected" in first.output
    errors = (tmp_path / "events.csv.errors.csv").read_text(encoding="utf-8-sig")
    assert "timestamps out of order" in errors and "unknown force" in errors
    assert "outside every unit" in errors and "报警人电话" not in errors
    again = runner.invoke(main, args)
    assert "0 created, 0 updated, 2 unchanged, 3 rejected" in again.output

    late = tmp_path / "late.jsonl"
    late.write_text(
        json.dumps({"source": "110", "external_id": "A1", "on_scene_at": "2026-03-05T10:04:00"})
        + "\n",
        encoding="utf-8",
    )
    done = runner.invoke(main, ["import-events", str(late), "--quiet", "--database-url", db_url])
    assert done.exit_code == 0, done.output
    assert "1 updated" in done.output
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(DispatchEvent)) == 2
        a1 = session.scalar(select(DispatchEvent).where(DispatchEvent.external_id == "A1"))
        assert a1.on_scene_at is not None and a1.type == "help"
        kept = set(session.execute(select(EventRollupDaily)).all())
        rebuild(session, EVENTS)
        assert set(session.execute(select(EventRollupDaily)).all()) == kept
