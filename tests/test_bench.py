"""The benchmark suite runs end to end at the small preset, so that it cannot rot.

Speed is never asserted here (that is bench/'s job, at metro scale): this checks that
``python -m bench`` runs its sections against a real PostGIS world, writes RESULTS.md and
results.json, and that each section reports figures rather than an error.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.db.migrate import upgrade
from api.db.session import dispose_engines
from tests.conftest import PostgisServer

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

SECTIONS = ("geo", "api", "cube", "export")


@pytest.fixture
def small_postgis_url(postgis_server: PostgisServer) -> Iterator[str]:
    """A fresh PostGIS database holding the small preset."""
    from seed.build import seed_database

    name = postgis_server.create()
    url = postgis_server.url_for(name)
    upgrade(url)
    seed_database(url, preset="small", seed=1, progress=False)
    gc.collect()  # the bench copies this database: no connection may wait for the collector
    dispose_engines()
    yield url
    postgis_server.drop(name)


def test_bench_runs_at_the_small_preset(small_postgis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--preset",
            "small",
            "--database-url",
            small_postgis_url,
            "--only",
            ",".join(SECTIONS),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["preset"] == "small"
    for name in SECTIONS:
        section = figures["sections"][name]
        assert "error" not in section, (name, section)
    api = figures["sections"]["api"]
    assert api["children_metrics"] and all(r["median_ms"] > 0 for r in api["children_metrics"])
    assert api["map_numbers"] and all(r["median_ms"] > 0 for r in api["map_numbers"])
    assert isinstance(api["downloads_within_target"], bool)
    cube = figures["sections"]["cube"]
    assert cube["equal_to_a_full_read"] and cube["full_reads_while_catching_up"] == 0
    assert cube["extra_rows"] > 0
    export = figures["sections"]["export"]["levels"]
    for level in ("village", "grid"):
        assert export[level]["ogc_items"]["features"] == export[level]["tipg_items"]["features"]
        assert export[level]["ogc_items"]["features"] > 0
    text = out.read_text()
    for name in SECTIONS:
        assert f"## {name}" in text
