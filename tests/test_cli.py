"""The command line as a user meets it: the demo serves, errors are one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

ZHILI = [sys.executable, "-m", "api"]


def run(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ZHILI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_every_command_has_help() -> None:
    top = run("--help")
    assert top.returncode == 0
    for command in ("demo", "serve", "db", "user", "seed"):
        assert command in top.stdout
        assert run(command, "--help").returncode == 0


def test_bad_database_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("db", "upgrade", "--database-url", "mysql://nobody@nowhere/x")
    assert result.returncode == 2
    assert "unsupported database" in result.stderr
    assert "Traceback" not in result.stderr
    unreachable = run("db", "upgrade", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 2
    assert "cannot use the database" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = run("serve", "--database-url", f"sqlite:///{tmp_path / 'new.db'}")
    assert result.returncode == 2
    assert "zhili db upgrade" in result.stderr


def test_demo_creates_seeds_and_serves(tmp_path: Path) -> None:
    """The README's demo command: migrates, seeds, serves, prints a login that works."""
    port = free_port()
    db = tmp_path / "zhili.db"
    proc = subprocess.Popen(
        [*ZHILI, "demo", "--port", str(port), "--database-url", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},  # this tree's code
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, "".join(lines)
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "demo did not answer within 240 s"
                time.sleep(0.5)
        assert health.json()["status"] == "ok"
        assert db.exists()
        anonymous = httpx.get(f"{base}/dashboard/", timeout=10)
        assert anonymous.status_code in (302, 303, 307)
        assert "/dashboard/login" in anonymous.headers["location"]

        printed = "".join(lines)
        assert f"http://127.0.0.1:{port}/dashboard/" in printed
        password = re.search(r"user demo, password (\S+)", printed)
        token = re.search(r"demo admin token: (\S+)", printed)
        assert password and token, printed
        with httpx.Client(base_url=base, timeout=10) as browser:
            login = browser.post(
                "/api/v1/auth/login", json={"name": "demo", "password": password[1]}
            )
            assert login.status_code == 200, login.text
            page = browser.get("/dashboard/", follow_redirects=True)  # lands on its unit
            assert page.status_code == 200 and "_dash-config" in page.text
            assert "/dashboard/login" not in str(page.url)
        me = httpx.get(
            f"{base}/api/v1/auth/whoami",
            headers={"Authorization": f"Bearer {token[1]}"},
            timeout=10,
        )
        assert me.json()["name"] == "demo"
        # issue 26, point 21: the alert panels are not empty the first time, and 同比 shows
        # for a whole year (two full years of history)
        auth = {"Authorization": f"Bearer {token[1]}"}
        alerts = httpx.get(f"{base}/api/v1/alerts", headers=auth, timeout=30).json()
        assert alerts["count"] > 0, alerts
        root = httpx.get(f"{base}/api/v1/units", headers=auth, timeout=30).json()[0]["code"]
        yoy = httpx.get(
            f"{base}/api/v1/units/{root}/children/metrics",
            params={"metric": "caseload", "period": "2025", "compare": "yoy"},
            headers=auth,
            timeout=60,
        ).json()
        assert yoy["base_partial"] is False and yoy["self"]["change_pct"] is not None, yoy
    finally:
        proc.terminate()
        proc.wait(timeout=20)
