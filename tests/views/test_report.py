"""The monthly report (月报): a PDF rendered offline by Chromium, read back with pdftotext
(poppler-utils); in scope; bad input refused."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.browser]


def pdf_text(pdf: bytes, tmp_path, page: int = 1) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is not installed (apt-get install poppler-utils)")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"]
    return subprocess.run(args, capture_output=True, check=True, text=True).stdout


def test_monthly_report_of_a_town(views_app, town, tmp_path) -> None:
    from api.db.session import session_scope
    from api.services.units import get_unit

    with session_scope(town.url) as session:
        east, west = get_unit(session, town.east).name, get_unit(session, town.west).name
    with town.client(views_app, "official@east") as c:
        r = c.get("/api/v1/reports/monthly", params={"unit": town.east, "month": "2026-09"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
        first = pdf_text(r.content, tmp_path)
        assert f"{east} 综治工作月报 · 2026-09" in first
        for words in ("主要指标", "同比", "环比", "案件量", "办结率", "分布地图"):
            assert words in first
        assert west not in r.content.decode("latin-1") and west not in first
        assert (
            c.get(
                "/api/v1/reports/monthly", params={"unit": town.west, "month": "2026-09"}
            ).status_code
            == 404
        )
        bad = c.get("/api/v1/reports/monthly", params={"month": "2026-13"})
        assert bad.status_code == 400 and "YYYY-MM" in bad.json()["message"]
