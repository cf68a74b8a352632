"""Point 11 (API part): every map download names its file (unit, level, metric, period,
extension), through the API and ``zhili export`` into a folder."""

from __future__ import annotations

from click.testing import CliRunner

from api.cli import main


def test_each_format_carries_a_file_name(trust_client, trust_world) -> None:
    params = {"metric": "caseload", "parent": trust_world.city, "period": "2026-10"}
    stem = f"{trust_world.city}_town_caseload_2026-10-01_2026-10-31"
    for fmt in ("geojson", "csv", "gpkg"):
        r = trust_client.get("/api/v1/choropleth", params={**params, "format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == f'attachment; filename="{stem}.{fmt}"'


def test_export_into_a_folder_names_the_file_alike(trust_world, tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        ["export", "--level", "town", "--metric", "resolution_rate", "--period", "2026-Q3",
         "--format", "csv", "-o", str(tmp_path), "--database-url", trust_world.url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    name = f"{trust_world.city}_town_resolution_rate_2026-07-01_2026-09-30.csv"
    assert (tmp_path / name).stat().st_size > 100, result.output
