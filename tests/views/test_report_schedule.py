"""Monthly reports on a schedule: an admin picks units (in their jurisdiction only), and
``zhili report run-scheduled`` renders each one's report into the data folder, keeping
those already made."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from api.cli import main
from api.services.report_schedule import last_month
from tests.views.test_report import pdf_text

pytestmark = [pytest.mark.browser]


def test_the_server_runs_the_schedule_when_asked(town, tmp_path) -> None:
    """``ZHILI_REPORT_SCHEDULE=true``: a task starts with the app and stops with it."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    settings = town.settings.model_copy(update={"report_schedule": True, "data_dir": tmp_path})
    app = create_app(settings, with_dashboard=False)
    with TestClient(app) as c:
        assert c.get("/api/v1/health").status_code == 200
        task = app.state.report_task
        assert task is not None and not task.done()
    assert task.done() or task.cancelling()  # stopped with the app
    off = create_app(town.settings, with_dashboard=False)
    with TestClient(off):
        assert off.state.report_task is None  # off by default


def test_schedule_then_run(views_app, town, tmp_path) -> None:
    admin = town.client(views_app, "admin@city")
    r = admin.put("/api/v1/reports/schedule", json={"units": [town.east, town.city]})
    assert r.status_code == 200, r.text
    assert [u["unit"] for u in r.json()["units"]] == sorted([town.east, town.city])
    east = town.client(views_app, "admin@east")
    assert [u["unit"] for u in east.get("/api/v1/reports/schedule").json()["units"]] == [
        town.east
    ]  # only their own jurisdiction
    refused = east.put("/api/v1/reports/schedule", json={"units": [town.west]})
    assert refused.status_code == 404 and "jurisdiction" in refused.json()["message"]
    assert (
        town.client(views_app, "official@east").get("/api/v1/reports/schedule").status_code == 403
    )
    # the town's admin clears their own pick; the city's stays
    assert east.put("/api/v1/reports/schedule", json={"units": []}).status_code == 200
    assert [u["unit"] for u in admin.get("/api/v1/reports/schedule").json()["units"]] == [town.city]

    data = tmp_path / "data"
    args = ["report", "run-scheduled", "--month", "2026-09", "--data-dir", str(data)]
    args += ["--database-url", town.url]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    pdf = data / "reports" / town.city / "2026-09.pdf"
    assert run.output.startswith("written") and str(pdf) in run.output
    assert "2026" in pdf_text(pdf.read_bytes(), tmp_path)
    again = CliRunner().invoke(main, args)  # safe to repeat: the report is kept
    assert again.exit_code == 0 and again.output.startswith("kept")
    bad = CliRunner().invoke(main, [*args[:3], "2026-13", *args[4:]])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert last_month(dt.date(2026, 1, 15)) == "2025-12"
