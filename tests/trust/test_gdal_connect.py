"""Point 15: the README's way of connecting GDAL (and so QGIS) to /ogc works with Debian's
GDAL 3.6: ``GDAL_HTTP_HEADERS="Authorization: Bearer <token>"`` and ``OAPIF:<url>/ogc``,
with a metric's figures from ``OAPIF:<url>/ogc/collections/<level>?metric=…&period=…``.
ogrinfo runs in its own process against the app served in a thread."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import LiveServer, token_for, unavailable

README = Path(__file__).parents[2] / "README.md"


def _ogrinfo(token: str, *args: str) -> str:
    ogrinfo = shutil.which("ogrinfo", path="/usr/bin")
    if ogrinfo is None:
        unavailable("Debian's GDAL is not installed (apt-get install -y gdal-bin)")
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
    run = subprocess.run([ogrinfo, *args], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_readme_says_how_gdal_and_qgis_connect() -> None:
    text = README.read_text(encoding="utf-8")
    assert 'GDAL_HTTP_HEADERS="Authorization: Bearer' in text
    assert "OAPIF:" in text and "QGIS" in text


def test_debian_ogrinfo_reads_the_collections_and_their_figures(trust_world) -> None:
    token = token_for(trust_world.url, "analyst", trust_world.city)
    with LiveServer(trust_world.settings) as server:
        layers = _ogrinfo(token, "-so", f"OAPIF:{server.url}/ogc")
        assert re.findall(r"^\d+: (\w+)", layers, re.M) == ["city", "town", "village", "grid"]
        town = _ogrinfo(
            token, "-al", "-geom=NO",
            f"OAPIF:{server.url}/ogc/collections/town?metric=resolution_rate&period=2026-Q3",
        )  # fmt: skip
    assert town.count("OGRFeature(town)") == 8
    assert "metric (String) = resolution_rate" in town
    assert re.search(r"value \(Real\) = 0\.\d+", town), town[:2000]
    assert "period_start (Date) = 2026/07/01" in town
