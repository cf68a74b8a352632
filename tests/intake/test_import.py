"""``zhili import-cases``: GB18030 / UTF-8 CSV and JSON lines, header mapping, error file,
good rows land, re-running is a no-op."""

from __future__ import annotations

import csv
import datetime as dt

import orjson
from click.testing import CliRunner
from sqlalchemy import func, select

from api.cli import main
from api.db.models import Case
from api.db.session import session_scope
from tests.intake.conftest import assert_rollups_equal_recount, rollup_rows

HEADER = [
    *("案件号", "来源", "类别", "渠道", "发生时间"),
    *("经度", "纬度", "投诉人", "联系电话", "事件描述"),
]


def gb_rows() -> list[list[str]]:
    """Rows 2..9 of the file (line 1 is the header); which are bad is known by construction."""
    return [
        [
            "A1",
            "老系统",
            "劳资纠纷",
            "12345热线",
            "2025/03/05 14:22",
            "121.02",
            "31.45",
            "张三",
            "13800000001",
            "拖欠工资",
        ],
        [
            "A2",
            "老系统",
            "邻里纠纷",
            "来访",
            "2025-03-06 09:00:00",
            "121.15",
            "31.55",
            "李四",
            "13800000002",
            "噪音",
        ],
        [
            "A3",
            "老系统",
            "外星人",
            "来访",
            "2025-03-06 09:00:00",
            "121.15",
            "31.55",
            "王五",
            "13800000003",
            "",
        ],  # unknown category
        ["A4", "老系统", "物业纠纷", "来访", "昨天", "121.15", "31.55", "", "", ""],  # bad time
        [
            "A5",
            "老系统",
            "物业纠纷",
            "来访",
            "2025-03-07 10:00",
            "116.40",
            "39.90",
            "",
            "",
            "",
        ],  # Beijing: outside the city
        [
            "A6",
            "老系统",
            "物业纠纷",
            "网格巡查",
            "2025-03-07 10:00",
            "121.25",
            "31.50",
            "",
            "",
            "长" * 2001,
        ],  # description too long
        [
            "A1",
            "老系统",
            "婚姻家庭纠纷",
            "来访",
            "2025-03-08 10:00",
            "121.02",
            "31.45",
            "",
            "",
            "",
        ],  # duplicate of line 2
        [
            "A7",
            "老系统",
            "安全隐患",
            "网格巡查",
            "2025-03-09T08:00:00+08:00",
            "121.05",
            "31.52",
            "",
            "",
            "井盖缺失",
        ],
    ]


def write_csv(path, rows, encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        out.writerows(rows)


def run(db_url: str, *args: str):
    return CliRunner().invoke(main, ["import-cases", *args, "--quiet", "--database-url", db_url])


def stored(db_url: str) -> dict[str, Case]:
    with session_scope(db_url) as session:
        return {c.external_id: c for c in session.scalars(select(Case))}


def test_a_gb18030_csv_with_chinese_headers_imports_and_reruns_as_a_no_op(db_url, world, tmp_path):
    path = tmp_path / "legacy.csv"
    write_csv(path, gb_rows(), "gb18030")
    with path.open("rb") as fh:  # really not UTF-8
        raw = fh.read()
    try:
        raw.decode("utf-8")
        raise AssertionError("the file should not decode as UTF-8")
    except UnicodeDecodeError:
        pass
    maps = ["--map", "案件号=external_id", "--map", "发生时间=reported_at"]
    result = run(db_url, str(path), *maps)
    assert result.exit_code == 1, result.output
    assert "8 rows: 3 created, 0 updated, 0 unchanged, 5 rejected" in result.output
    assert "投诉人" in result.output and "联系电话" in result.output  # ignored, said so

    with (tmp_path / "legacy.csv.errors.csv").open(encoding="utf-8-sig") as fh:
        errors = list(csv.DictReader(fh))
    assert [(int(e["line"]), e["external_id"]) for e in errors] == [
        (4, "A3"),
        (5, "A4"),
        (6, "A5"),
        (7, "A6"),
        (8, "A1"),
    ]
    reasons = [e["reason"] for e in errors]
    assert "unknown category '外星人'" in reasons[0]
    assert "'昨天' is not a date-time" in reasons[1]
    assert "outside every unit" in reasons[2]
    assert "2,001 characters" in reasons[3]
    assert "duplicate of line 2" in reasons[4]

    cases = stored(db_url)
    assert sorted(cases) == ["A1", "A2", "A7"]
    a1 = cases["A1"]
    assert (a1.source, a1.category, a1.channel) == ("老系统", "labour", "hotline_12345")
    assert a1.reported_at == dt.datetime(2025, 3, 5, 6, 22, tzinfo=dt.UTC)
    assert cases["A7"].reported_at == dt.datetime(2025, 3, 9, 0, 0, tzinfo=dt.UTC)
    assert a1.grid_code == world.grids[0]
    for c in cases.values():  # the complainant columns went nowhere
        assert "张三" not in repr(c.__dict__) and "1380000" not in repr(c.__dict__)
    assert_rollups_equal_recount(db_url)

    with session_scope(db_url) as session:
        before = rollup_rows(session)
    again = run(db_url, str(path), *maps)
    assert "8 rows: 0 created, 0 updated, 3 unchanged, 5 rejected" in again.output
    with session_scope(db_url) as session:
        assert rollup_rows(session) == before
        assert session.scalar(select(func.count()).select_from(Case)) == 3


def test_utf8_bom_csv_and_json_lines_import(db_url, world, tmp_path):
    path = tmp_path / "bom.csv"
    write_csv(path, gb_rows()[:2], "utf-8-sig")
    result = run(db_url, str(path), "--map", "案件号=external_id", "--map", "发生时间=reported_at")
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output

    lines = [
        orjson.dumps(
            {
                "source": "gridapp",
                "external_id": "J1",
                "category": "safety_hazard",
                "channel": "grid_patrol",
                "reported_at": "2025-04-01T08:00:00",
                "unit_code": world.grids[1],
                "姓名": "赵六",
            }
        ).decode(),
        "{not json",
        orjson.dumps(
            {
                "source": "gridapp",
                "external_id": "J2",
                "category": "traffic",
                "channel": "online",
                "reported_at": "2025-04-01T08:00:00",
                "lon": 121.02,
                "lat": 31.45,
                "crs": "gcj02",
            }
        ).decode(),
        orjson.dumps(
            {
                "source": "gridapp",
                "external_id": "J3",
                "category": "traffic",
                "channel": "online",
                "reported_at": "2025-04-01T08:00:00",
                "lon": "NaN",
                "lat": 31.45,
            }
        ).decode(),
    ]
    wrong = {"source": "gridapp", "category": "traffic", "channel": "online", "lat": 31.45}
    wrong["reported_at"] = "2025-04-01T08:00:00"
    lines += [
        orjson.dumps({**wrong, "external_id": "J4", "lon": True}).decode(),
        orjson.dumps({**wrong, "external_id": "J5", "lon": 121.02, "reported_at": 1.7e9}).decode(),
        '{"source": "gridapp", "external_id": "J6", "lon": Infinity, "lat": 31.45}',
    ]
    jpath = tmp_path / "cases.jsonl"
    jpath.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(db_url, str(jpath), "--errors", str(tmp_path / "bad.csv"))
    assert result.exit_code == 1, result.output
    assert "7 rows: 2 created" in result.output and "5 rejected" in result.output
    with (tmp_path / "bad.csv").open(encoding="utf-8-sig") as fh:
        errors = list(csv.DictReader(fh))
    assert [int(e["line"]) for e in errors] == [2, 4, 5, 6, 7]
    assert "not JSON" in errors[0]["reason"] and "finite" in errors[1]["reason"]
    assert "lon True is not a finite number" in errors[2]["reason"]
    assert "is not a date-time" in errors[3]["reason"]
    assert "lon 'inf'" in errors[4]["reason"] or "finite" in errors[4]["reason"]
    cases = stored(db_url)
    assert cases["J1"].grid_code == world.grids[1] and cases["J1"].lon is None
    assert cases["J2"].lon < 121.02  # converted from GCJ-02
    assert_rollups_equal_recount(db_url)


def test_unusable_files_and_options_exit_2_and_store_nothing(db_url, world, tmp_path):
    path = tmp_path / "nosource.csv"
    path.write_text(
        "external_id,category,channel,reported_at,lon,lat\n"
        "X1,traffic,online,2025-04-01 08:00,121.02,31.45\n",
        encoding="utf-8",
    )
    result = run(db_url, str(path))
    assert result.exit_code == 2 and "--source" in result.output
    result = run(db_url, str(path), "--map", "lon=longitude", "--source", "x")
    assert result.exit_code == 2 and "unknown field" in result.output
    result = run(db_url, str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and "no file" in result.output
    legacy = tmp_path / "legacy.csv"
    write_csv(legacy, gb_rows(), "gb18030")
    result = run(db_url, str(legacy), "--encoding", "utf-8", "--source", "x")
    assert result.exit_code == 2 and "--encoding" in result.output, result.output
    assert stored(db_url) == {}
    result = run(db_url, str(path), "--source", "legacy")
    assert result.exit_code == 0 and "1 created" in result.output, result.output


def test_chunks_stored_by_parallel_writers_keep_file_order_and_a_rerun_ends_the_same(
    db_url, world, tmp_path, monkeypatch
):
    """Many small chunks, two writers (PostgreSQL; SQLite has one): bad rows listed by line,
    a case repeated in the next chunk ends as its last line says, the rollups equal a
    recount, and the same file again ends where it was."""
    import api.services.case_import as case_import

    monkeypatch.setattr(case_import, "CHUNK_ROWS", 4)
    categories = ["neighbour", "family", "labour", "property", "traffic"]
    points = [("121.02", "31.45"), ("121.15", "31.55"), ("121.05", "31.52"), ("121.08", "31.47")]
    rows = []
    for i in range(30):
        lon, lat = points[i % len(points)]
        day = dt.date(2025, 3, 1) + dt.timedelta(days=i % 7)
        when = f"{day} 09:{i:02d}"
        rows.append(["s1", f"P{i:03d}", categories[i % 5], "online", when, lon, lat, f"d{i}"])
    rows[5][2] = "外星人"  # line 7: unknown category
    rows[9][1] = "P008"  # line 11: same chunk as line 10 (P008): a duplicate, rejected
    rows[13] = [*rows[11][:2], "traffic", *rows[11][3:]]  # line 15 re-sends line 13's P011
    rows[20][7] = "第一行\r\n第二行\t\\"  # COPY's special characters (Windows line end)
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["source", "external_id", "category", "channel", "reported_at", "lon", "lat", "描述"]
        )
        out.writerows(rows)

    result = run(db_url, str(path), "--writers", "2")
    assert result.exit_code == 1, result.output
    assert "30 rows: 27 created, 1 updated, 0 unchanged, 2 rejected" in result.output
    with (tmp_path / "many.csv.errors.csv").open(encoding="utf-8-sig") as fh:
        errors = [(int(e["line"]), e["external_id"]) for e in csv.DictReader(fh)]
    assert errors == [(7, "P005"), (11, "P008")]
    cases = stored(db_url)
    assert len(cases) == 27
    assert cases["P011"].category == "traffic"  # the later line won
    assert cases["P020"].description == "第一行\r\n第二行\t\\"
    assert_rollups_equal_recount(db_url)

    with session_scope(db_url) as session:
        before = rollup_rows(session)
    # P011 goes back and forth (lines 13, 15), as in a serial run
    again = run(db_url, str(path), "--writers", "2")
    assert "30 rows: 0 created, 2 updated, 26 unchanged, 2 rejected" in again.output
    assert stored(db_url)["P011"].category == "traffic"
    with session_scope(db_url) as session:
        assert rollup_rows(session) == before
        assert session.scalar(select(func.count()).select_from(Case)) == 27
