"""Point 22: the seed's rollup phase shows its progress like the cases phase: a bar that
counts the rollup tables filled."""

from __future__ import annotations

import shutil


def test_rollup_phase_has_a_progress_bar(sqlite_template, tmp_path, capsys) -> None:
    from api.db.session import dispose_engines
    from seed.build import seed_database

    path = tmp_path / "tiny.db"
    shutil.copy(sqlite_template, path)
    seed_database(f"sqlite:///{path}", preset="tiny", seed=1, progress=True)
    dispose_engines()
    err = capsys.readouterr().err
    assert "tiny:" in err and "cases" in err  # the cases' bar
    assert "tiny rollups: 100%" in err and "3/3" in err, err[-800:]
    assert "case_close_histogram" in err
