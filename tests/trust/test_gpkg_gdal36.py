"""Point 12: the GeoPackage download is version 1.3, which Debian's GDAL 3.6 (QGIS LTR)
reads cleanly: its ``ogrinfo`` prints no "may only be partially supported" warning."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

from tests.conftest import unavailable


def test_debian_ogrinfo_reads_the_geopackage_cleanly(trust_client, trust_world, tmp_path):
    ogrinfo = shutil.which("ogrinfo", path="/usr/bin")
    if ogrinfo is None:
        unavailable("Debian's GDAL is not installed (apt-get install -y gdal-bin)")
    r = trust_client.get(
        "/api/v1/choropleth",
        params={"parent": trust_world.city, "metric": "caseload", "format": "gpkg"},
    )
    path = tmp_path / "map.gpkg"
    path.write_bytes(r.content)
    with sqlite3.connect(path) as db:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    assert app_id == 0x47504B47 and version in (10200, 10300), (hex(app_id), version)
    run = subprocess.run(
        [ogrinfo, "-so", "-al", str(path)], capture_output=True, text=True, timeout=60
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "partially supported" not in out and "Warning" not in out, out
    assert "Feature Count: 8" in out, out
