"""A real server in its own process for GDAL: GDAL's HTTP calls from pyogrio hold the GIL,
so a server thread in the test process could never answer them (the test would hang)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


@dataclass
class ServerProcess:
    url: str


@pytest.fixture
def server_process(db_url: str, world, tmp_path: Path) -> Iterator[ServerProcess]:
    """``uvicorn --factory api.app:app_factory`` on a free port over the test database."""
    port = free_port()
    env = {
        **os.environ,
        "ZHILI_DATABASE_URL": db_url,
        "ZHILI_CACHE_DIR": str(tmp_path / "cache"),
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.flush()
                raise RuntimeError((tmp_path / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 120 s")
            time.sleep(0.2)
        yield ServerProcess(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
