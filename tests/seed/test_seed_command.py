"""``zhili seed`` as a user runs it: it builds the same world as the library, refuses bad
input with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.seed.test_determinism import world_hash

ZHILI = [sys.executable, "-m", "api"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ZHILI_DATABASE_URL"}
    return subprocess.run([*ZHILI, *args], capture_output=True, text=True, timeout=300, env=env)


def test_seed_small_builds_the_same_world_every_time(tmp_path: Path, small_world_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    result = run("seed", "--preset", "small", "--seed", "1", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "towns: 8" in result.stdout.replace("  ", "")
    assert world_hash(url) == world_hash(small_world_url)  # byte for byte, at full size


def test_seed_refuses_a_database_with_a_world(small_world_url: str) -> None:
    result = run("seed", "--preset", "small", "--database-url", small_world_url)
    assert result.returncode == 2
    assert "already has units" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_refuses_an_unknown_preset(tmp_path: Path) -> None:
    result = run("seed", "--preset", "huge", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2
    assert "huge" in result.stderr and "small" in result.stderr
    assert not (tmp_path / "x.db").exists()
