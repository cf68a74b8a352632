"""An import that stops half-way still ends with its summary: what was stored before the
failure (every chunk committed, none of the failed one), exit code 3 and the reason; the
rollups equal a recount; the same file run again finishes it. Real failures, no mocks: a
row the database refuses (a constraint the validator knows nothing of) and the import's
database connection terminated by the server (``pg_terminate_backend``) mid-import."""

from __future__ import annotations

import csv
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from api.db.models import Case
from api.db.session import session_scope
from tests.intake.conftest import assert_rollups_equal_recount
from tests.intake.test_import import run

HEADER = ["source", "external_id", "category", "channel", "reported_at", "lon", "lat", "描述"]


def write_rows(path, n: int, boom: int | None = None) -> None:
    """``n`` valid cases in the tiny world; row ``boom`` (0-based) described as "boom"."""
    points = [("121.02", "31.45"), ("121.15", "31.55"), ("121.05", "31.52"), ("121.08", "31.47")]
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(n):
            lon, lat = points[i % len(points)]
            when = f"2025-03-{1 + i % 20:02d} 09:{i % 60:02d}"
            text_ = "boom" if i == boom else f"d{i}"
            out.writerow(["s1", f"Q{i:05d}", "neighbour", "online", when, lon, lat, text_])


def stored_count(db_url: str) -> int:
    with session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(Case))


def told(output: str) -> dict[str, int]:
    """The counts of the summary line printed after a stop."""
    line = next(x for x in output.splitlines() if x.startswith("stored before the import"))
    rows, rest = line.split(": ", 1)[1].split(" rows: ")
    counts = {k: int(v) for v, k in (part.split() for part in rest.split(", "))}
    return {"rows": int(rows), **counts}


def refuse_boom(db_url: str) -> None:
    """A rule of the database the validator knows nothing of: no case described "boom"."""
    with session_scope(db_url) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text(
                    'ALTER TABLE "case" ADD CONSTRAINT ck_test_no_boom '
                    "CHECK (description IS DISTINCT FROM 'boom') NOT VALID"
                )
            )
        else:
            session.execute(
                text(
                    'CREATE TRIGGER test_no_boom BEFORE INSERT ON "case" '
                    "WHEN NEW.description = 'boom' "
                    "BEGIN SELECT RAISE(ABORT, 'no boom allowed'); END"
                )
            )


def allow_boom(db_url: str) -> None:
    with session_scope(db_url) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text('ALTER TABLE "case" DROP CONSTRAINT ck_test_no_boom'))
        else:
            session.execute(text("DROP TRIGGER test_no_boom"))


def test_a_row_the_database_refuses_stops_the_import_with_what_was_stored(
    db_url, world, tmp_path, monkeypatch
):
    import api.services.case_import as case_import

    monkeypatch.setattr(case_import, "CHUNK_ROWS", 5)
    path = tmp_path / "boom.csv"
    write_rows(path, 30, boom=17)  # the fourth chunk (rows 15..19) fails
    refuse_boom(db_url)
    result = run(db_url, str(path), "--writers", "2")
    assert result.exit_code == 3, result.output
    assert "Error: the import stopped" in result.output
    assert "ck_test_no_boom" in result.output or "no boom allowed" in result.output
    assert "Traceback" not in result.output
    counts = told(result.output)
    # chunks 1-3 stored; with two writers the fifth may have been in flight and stored too
    assert counts["created"] in (15, 20), result.output
    assert counts["rows"] == counts["created"] == stored_count(db_url)
    assert_rollups_equal_recount(db_url)

    allow_boom(db_url)
    again = run(db_url, str(path), "--writers", "2")
    assert again.exit_code == 0, again.output
    assert f"30 rows: {30 - counts['created']} created, 0 updated" in again.output
    assert stored_count(db_url) == 30
    assert_rollups_equal_recount(db_url)


@pytest.mark.postgis
@pytest.mark.parametrize("db_kind", ["postgis"], indirect=True)
def test_the_connection_terminated_mid_import_stops_it_with_what_was_stored(
    db_url, world, tmp_path, monkeypatch
):
    """A writer's connection is terminated by the server (pg_terminate_backend, as a DBA or
    a failover does) while it stores a chunk: the import stops with its summary."""
    import api.services.case_import as case_import

    monkeypatch.setattr(case_import, "CHUNK_ROWS", 200)
    path = tmp_path / "many.csv"
    write_rows(path, 4_000)
    admin = create_engine(db_url.replace("+psycopg", ""), isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    def kill_a_writer() -> None:
        """Once a chunk is stored, terminate a connection busy storing the next."""
        deadline = time.monotonic() + 60
        with admin.connect() as conn:
            while not killed and time.monotonic() < deadline:
                if conn.scalar(text('SELECT count(*) FROM "case"')):
                    pids = conn.scalars(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() AND state IN "
                            "('active', 'idle in transaction') AND xact_start IS NOT NULL"
                        )
                    ).all()
                    for pid in pids[:1]:
                        if conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid}):
                            killed.append(pid)
                time.sleep(0.005)

    killer = threading.Thread(target=kill_a_writer)
    killer.start()
    try:
        result = run(db_url, str(path), "--writers", "2")
    finally:
        killer.join()
        admin.dispose()
    assert killed, "no writer was caught storing a chunk"
    assert result.exit_code == 3, result.output
    assert "Error: the import stopped" in result.output and "Traceback" not in result.output
    counts = told(result.output)
    assert 0 < counts["created"] < 4_000
    assert counts["rows"] == counts["created"] == stored_count(db_url)
    assert_rollups_equal_recount(db_url)

    again = run(db_url, str(path), "--writers", "2")
    assert again.exit_code == 0, again.output
    assert f"4000 rows: {4_000 - counts['created']} created, 0 updated" in again.output
    assert stored_count(db_url) == 4_000
