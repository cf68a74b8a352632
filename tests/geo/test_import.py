"""Import of messy boundary files: the validation report, refusal, versions, ragged leaves.

The messy fixture is built here from shapely geometries and written with pyogrio: a city
(GeoJSON, WGS84), its towns (GeoPackage, CGCS2000 EPSG:4490) and villages (Shapefile,
Web Mercator EPSG:3857) with a self-intersection, a child poking out of its parent, an
overlap, a gap, an islet, an unknown parent, and a 街道 with no villages.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pyproj
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import func, select

from api.cli import main
from api.db.models import AdminUnit, UnitAncestry
from api.db.session import session_scope
from api.services.boundaries import import_boundaries
from api.services.display import display_layer
from api.services.locate import point_locator
from api.services.units import level_depths
from geo.importer import ImportRefused

GEOD = pyproj.Geod(ellps="WGS84")
CITY, T1, T2, T3 = "330100", "330100001", "330100002", "330100003"
V1, V2, V3, V4, V5 = "330100001001", "330100001002", "330100002001", "330100002002", "330199999001"
OVERLAP = box(120.1, 30.098, 120.18, 30.1)
GAP = box(120.18, 30.1, 120.2, 30.2)


def geodesic_area(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def bowtie_square(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A square whose top edge crosses itself (a self-intersecting ring)."""
    w, h = x1 - x0, y1 - y0
    return Polygon(
        [
            (x0, y0),
            (x1, y0),
            (x1, y1),
            (x0 + 0.6 * w, y1),
            (x0 + 0.4 * w, y1 - 0.1 * h),
            (x0 + 0.6 * w, y1 - 0.1 * h),
            (x0 + 0.4 * w, y1),
            (x0, y1),
        ]
    )


VILLAGES = {
    V1: ("东镇南村", T1, 1200, bowtie_square(120.0, 30.0, 120.1, 30.1)),
    V2: (  # with an islet just off the town
        "东镇北村",
        T1,
        900,
        MultiPolygon([box(120.0, 30.1, 120.1, 30.2), box(120.05, 30.201, 120.056, 30.207)]),
    ),
    V3: ("西镇南村", T2, 800, box(120.1, 29.99, 120.2, 30.1)),  # pokes out of its town
    V4: ("西镇北村", T2, 700, box(120.1, 30.098, 120.18, 30.2)),  # overlaps V3, leaves a gap
    V5: ("无主村", "330199999", 100, box(120.2, 30.0, 120.25, 30.05)),  # unknown parent
}


def write(frame: gpd.GeoDataFrame, path: Path, crs: int) -> Path:
    frame.to_crs(crs).to_file(path, engine="pyogrio")
    return path


def villages_frame(codes) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": list(codes),
            "name": [VILLAGES[c][0] for c in codes],
            "parent": [VILLAGES[c][1] for c in codes],
            "pop": [VILLAGES[c][2] for c in codes],
        },
        geometry=[VILLAGES[c][3] for c in codes],
        crs=4326,
    )


@pytest.fixture
def messy(tmp_path: Path) -> dict[str, Path]:
    city = gpd.GeoDataFrame(
        {"adcode": [CITY], "name": ["测试市"]}, geometry=[box(120.0, 30.0, 120.3, 30.2)], crs=4326
    )
    towns = gpd.GeoDataFrame(
        {"code": [T1, T2, T3], "name": ["东镇", "西镇", "南街道"], "parent": [CITY] * 3},
        geometry=[
            box(120.0, 30.0, 120.1, 30.2),
            box(120.1, 30.0, 120.2, 30.2),
            box(120.2, 30.0, 120.3, 30.2),
        ],
        crs=4326,
    )
    return {
        "city": write(city, tmp_path / "city.geojson", 4326),
        "towns": write(towns, tmp_path / "towns.gpkg", 4490),
        "villages_all": write(villages_frame(VILLAGES), tmp_path / "villages_all.shp", 3857),
        "villages": write(villages_frame([V1, V2, V3, V4]), tmp_path / "villages.shp", 3857),
    }


def import_levels(url: str, messy: dict[str, Path]) -> None:
    since = dt.date(2025, 1, 1)
    with session_scope(url) as session:
        import_boundaries(
            session,
            messy["city"],
            level="city",
            code_field="adcode",
            name_field="name",
            valid_from=since,
        )
        import_boundaries(  # no parent field: parents found by area
            session,
            messy["towns"],
            level="town",
            code_field="code",
            name_field="name",
            valid_from=since,
        )


def count_units(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(AdminUnit))


def test_a_file_with_an_unknown_parent_is_refused_whole(db_url, messy):
    import_levels(db_url, messy)
    before = count_units(db_url)
    with pytest.raises(ImportRefused) as refused, session_scope(db_url) as session:
        import_boundaries(
            session,
            messy["villages_all"],
            level="village",
            code_field="code",
            name_field="name",
            parent_field="parent",
        )
    errors = refused.value.report.errors
    assert [(p.kind, p.code, p.other_code) for p in errors] == [("unknown_parent", V5, "330199999")]
    assert count_units(db_url) == before == 4  # nothing of the village file was written


def test_messy_file_report_and_usable_hierarchy(db_url, messy):
    import_levels(db_url, messy)
    with session_scope(db_url) as session:
        report = import_boundaries(
            session,
            messy["villages"],
            level="village",
            code_field="code",
            name_field="name",
            parent_field="parent",
            population_field="pop",
            valid_from=dt.date(2026, 1, 1),
        )
    assert report.written and report.created == 4 and not report.errors
    assert "3857" in report.source_crs
    found = {(p.kind, p.code): p for p in report.problems}
    severities = {key: p.severity for key, p in found.items()}
    assert severities[("invalid_geometry", V1)] == "warning"
    assert "Self-intersection" in found[("invalid_geometry", V1)].message
    assert severities[("multipart", V2)] == "info"  # the islet
    assert severities[("no_children", T3)] == "info"  # the 街道 with no villages
    assert [p.code for p in report.problems if p.kind == "no_children"] == [T3]
    # V3 pokes out of its town: its share outside, computed on the ellipsoid
    v3 = VILLAGES[V3][3]
    share = geodesic_area(box(120.1, 29.99, 120.2, 30.0)) / geodesic_area(v3)
    assert severities[("outside_parent", V3)] == "warning"
    assert found[("outside_parent", V3)].share == pytest.approx(share, rel=0.01)
    # the islet leaves V2 a little outside its parent: reported, harmless
    assert severities[("outside_parent", V2)] == "info"
    overlap = found[("overlap", V3)]
    assert overlap.other_code == V4 and overlap.severity == "warning"
    assert overlap.area_m2 == pytest.approx(geodesic_area(OVERLAP), rel=0.01)
    assert OVERLAP.contains(shapely.Point(overlap.lon, overlap.lat))
    gap = found[("gap", T2)]
    assert gap.severity == "warning"
    assert gap.area_m2 == pytest.approx(geodesic_area(GAP), rel=0.01)
    assert GAP.contains(shapely.Point(gap.lon, gap.lat))
    # the repaired bow-tie leaves two small triangles of T1 uncovered: reported as notes
    bowtie = box(120.04, 30.09, 120.06, 30.1).buffer(1e-7)
    t1_gaps = [p for p in report.problems if p.kind == "gap" and p.code == T1]
    assert len(t1_gaps) == 2
    assert all(p.severity == "info" and bowtie.contains(p.geom) for p in t1_gaps)

    # the hierarchy is usable: ancestry, a 街道 with no villages as its own leaf
    with session_scope(db_url) as session:
        ancestors = set(
            session.scalars(
                select(UnitAncestry.ancestor_code)
                .join(AdminUnit, AdminUnit.id == UnitAncestry.unit_id)
                .where(AdminUnit.code == V3)
            )
        )
        assert ancestors == {V3, T2, CITY}
        stored = session.scalar(select(AdminUnit).where(AdminUnit.code == V1))
        assert stored.geom.geom_type == "MultiPolygon" and stored.geom.is_valid
        assert stored.population == 1200 and stored.area_km2 > 0
        located = point_locator(session).locate(
            np.array([120.05, 120.25, 120.19]), np.array([30.05, 30.1, 30.15])
        )
        assert list(located.leaf_code) == [V1, T3, T2]  # T2: the gap falls back to the town
        assert T3 in display_layer(session, "village").codes


def test_reimport_changes_nothing_and_a_new_version_closes_the_old(db_url, messy, tmp_path):
    import_levels(db_url, messy)
    options = dict(level="village", code_field="code", name_field="name", parent_field="parent")
    with session_scope(db_url) as session:
        import_boundaries(session, messy["villages"], valid_from=dt.date(2026, 1, 1), **options)
    with session_scope(db_url) as session:
        again = import_boundaries(session, messy["villages"], **options)
    assert (again.created, again.changed, again.unchanged) == (0, 0, 4)
    assert count_units(db_url) == 8

    fixed = villages_frame([V3, V4])
    fixed.loc[fixed.code == V4, "geometry"] = box(120.1, 30.1, 120.2, 30.2)
    fixed.loc[fixed.code == V3, "geometry"] = box(120.1, 30.0, 120.2, 30.1)
    path = write(fixed, tmp_path / "fixed.fgb", 4490)
    with session_scope(db_url) as session:
        report = import_boundaries(session, path, valid_from=dt.date(2027, 1, 1), **options)
        assert report.changed == 2 and not any(
            p.kind in ("gap", "overlap") for p in report.problems
        )
    with session_scope(db_url) as session:
        versions = session.execute(
            select(AdminUnit.valid_from, AdminUnit.valid_to)
            .where(AdminUnit.code == V4)
            .order_by(AdminUnit.valid_from)
        ).all()
        assert versions == [(dt.date(2026, 1, 1), dt.date(2027, 1, 1)), (dt.date(2027, 1, 1), None)]
        new_id = session.scalar(
            select(AdminUnit.id).where(AdminUnit.code == V4, AdminUnit.valid_to.is_(None))
        )
        chain = set(
            session.scalars(
                select(UnitAncestry.ancestor_code).where(UnitAncestry.unit_id == new_id)
            )
        )
        assert chain == {V4, T2, CITY}
        gap_point = (np.array([120.19]), np.array([30.15]))
        assert point_locator(session).locate(*gap_point).leaf_code[0] == V4
        old = point_locator(session, on=dt.date(2026, 6, 1)).locate(*gap_point)
        assert old.leaf_code[0] == T2


@pytest.mark.parametrize(
    ("codes", "kind"),
    [(["330100001001", "330100001001"], "duplicate_code"), (["330100001001", ""], "empty_code")],
)
def test_empty_and_duplicate_codes_are_errors(db_url, messy, tmp_path, codes, kind):
    import_levels(db_url, messy)
    frame = gpd.GeoDataFrame(
        {"code": codes, "name": ["甲村", "乙村"]},
        geometry=[box(120.0, 30.0, 120.05, 30.1), box(120.05, 30.0, 120.1, 30.1)],
        crs=4326,
    )
    path = write(frame, tmp_path / "bad.geojson", 4326)
    with pytest.raises(ImportRefused) as refused, session_scope(db_url) as session:
        import_boundaries(session, path, level="village", code_field="code", name_field="name")
    assert kind in {p.kind for p in refused.value.report.errors}


def test_cli_refuses_with_exit_2_and_writes_the_report(db_url, messy, tmp_path):
    import_levels(db_url, messy)
    out = tmp_path / "problems.geojson"
    args = [
        "import-boundaries",
        str(messy["villages_all"]),
        "--level=village",
        "--code-field=code",
        "--name-field=name",
        "--parent-field=parent",
        f"--report-geojson={out}",
        "--no-cache",
        f"--database-url={db_url}",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "unknown_parent" in result.output and "Traceback" not in result.output
    spots = orjson.loads(out.read_bytes())["features"]
    assert {f["properties"]["kind"] for f in spots} >= {"unknown_parent", "overlap", "gap"}
    assert count_units(db_url) == 4

    ok = CliRunner().invoke(main, [*args[:1], str(messy["villages"]), *args[2:]])
    assert ok.exit_code == 0, ok.output
    assert "imported: 4 new" in ok.output
    bad_level = CliRunner().invoke(main, [*args[:2], "--level=county", *args[3:]])
    assert bad_level.exit_code == 2 and "unknown level 'county'" in bad_level.output
    bad_field = CliRunner().invoke(main, [*args[:3], "--code-field=adcode", *args[4:]])
    assert bad_field.exit_code == 2 and "is not a field" in bad_field.output


def test_the_seed_world_reimports_unchanged(db_url, world, tmp_path):
    with session_scope(db_url) as session:
        villages = session.scalars(
            select(AdminUnit).where(AdminUnit.level == "village", AdminUnit.valid_to.is_(None))
        ).all()
        frame = gpd.GeoDataFrame(
            {
                "code": [v.code for v in villages],
                "name": [v.name for v in villages],
                "parent": [v.parent_code for v in villages],
                "population": [v.population for v in villages],
            },
            geometry=[v.geom for v in villages],
            crs=4326,
        )
    path = write(frame, tmp_path / "seed_villages.gpkg", 4326)
    with session_scope(db_url) as session:
        report = import_boundaries(
            session,
            path,
            level="village",
            code_field="code",
            name_field="name",
            parent_field="parent",
            population_field="population",
        )
    assert (report.created, report.changed, report.unchanged) == (0, 0, len(world.villages))
    assert not [p for p in report.problems if p.severity != "info"]


def test_a_hole_between_units_is_a_gap_but_a_lake_is_not(db_url, tmp_path):
    lake = box(120.02, 30.02, 120.04, 30.04)
    ring = box(120.1, 30.0, 120.3, 30.2).difference(box(120.15, 30.05, 120.25, 30.15))
    frame = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "name": ["湖市", "环市", "外市"]},
        geometry=[
            box(120.0, 30.0, 120.1, 30.2).difference(lake),  # its own lake: not a gap
            ring,
            box(120.16, 30.06, 120.24, 30.14),  # sits in B's hole, leaving a moat
        ],
        crs=4326,
    )
    path = write(frame, tmp_path / "cities.geojson", 4326)
    with session_scope(db_url) as session:
        report = import_boundaries(
            session, path, level="city", code_field="code", name_field="name", dry_run=True
        )
    gaps = [p for p in report.problems if p.kind == "gap"]
    moat = box(120.15, 30.05, 120.25, 30.15).difference(box(120.16, 30.06, 120.24, 30.14))
    assert len(gaps) == 1
    assert gaps[0].area_m2 == pytest.approx(geodesic_area(moat), rel=0.01)
    assert not report.written and count_units(db_url) == 0


def test_points_are_not_boundaries(db_url, messy, tmp_path):
    import_levels(db_url, messy)
    frame = gpd.GeoDataFrame(
        {"code": ["330100001001"], "name": ["点村"]},
        geometry=[shapely.Point(120.05, 30.05)],
        crs=4326,
    )
    path = write(frame, tmp_path / "points.geojson", 4326)
    with pytest.raises(ImportRefused) as refused, session_scope(db_url) as session:
        import_boundaries(session, path, level="village", code_field="code", name_field="name")
    assert [p.kind for p in refused.value.report.errors] == ["not_a_polygon"]
    assert count_units(db_url) == 4


def test_cli_json_report_dry_run_and_a_stricter_threshold(db_url, messy):
    import_levels(db_url, messy)
    args = [
        "import-boundaries",
        str(messy["villages"]),
        "--level=village",
        "--code-field=code",
        "--name-field=name",
        "--parent-field=parent",
        "--no-cache",
        f"--database-url={db_url}",
    ]
    dry = CliRunner().invoke(main, [*args, "--dry-run", "--report-json"])
    assert dry.exit_code == 0, dry.output
    report = orjson.loads(dry.stdout)  # stdout holds the JSON alone
    assert (report["written"], report["errors"], report["features"]) == (False, 0, 4)
    severity = {(p["kind"], p["code"]): p["severity"] for p in report["problems"]}
    assert severity[("invalid_geometry", V1)] == "warning"
    assert severity[("outside_parent", V3)] == "warning"
    assert severity[("overlap", V3)] == "warning"
    assert severity[("gap", T2)] == "warning"
    gap = next(p for p in report["problems"] if (p["kind"], p["code"]) == ("gap", T2))
    assert GAP.contains(shapely.Point(gap["lon"], gap["lat"]))
    assert count_units(db_url) == 4  # a dry run writes nothing

    # V3 has about 10% of its area outside its town: an error once the limit is 5%
    strict = CliRunner().invoke(main, [*args, "--max-outside-share=0.05"])
    assert strict.exit_code == 2 and "Traceback" not in strict.output
    errors = [line for line in strict.output.splitlines() if line.strip().startswith("error")]
    assert len(errors) == 1 and "outside_parent" in errors[0] and V3 in errors[0]
    assert count_units(db_url) == 4


def test_a_dry_run_on_an_empty_database_writes_not_even_the_levels(db_url, messy):
    with session_scope(db_url) as session:
        assert level_depths(session) == {}
        report = import_boundaries(
            session,
            messy["city"],
            level="city",
            code_field="adcode",
            name_field="name",
            dry_run=True,
        )
    assert not report.written and report.features == 1
    with session_scope(db_url) as session:
        assert level_depths(session) == {}
    assert count_units(db_url) == 0


def test_a_projected_file_without_a_crs_is_refused_with_the_fix(db_url, messy, tmp_path):
    villages = villages_frame([V1, V2])
    path = write(villages, tmp_path / "no_prj.shp", 3857)
    path.with_suffix(".prj").unlink()
    with pytest.raises(ValueError, match=r"no CRS.*EPSG:4490"), session_scope(db_url) as session:
        import_boundaries(session, path, level="city", code_field="code", name_field="name")
    assert count_units(db_url) == 0
