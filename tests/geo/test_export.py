"""Exports: RFC 7946 GeoJSON (validated, read back by GDAL), CSV for Excel, GeoPackage."""

from __future__ import annotations

import csv
import io

import geojson_validator
import geopandas as gpd
import numpy as np
import orjson
import pyogrio
import pytest
import shapely

from geo.export import export_bytes
from tests.geo.test_display import assert_rfc7946


@pytest.fixture
def villages(small_city) -> gpd.GeoDataFrame:
    """Villages with metric columns: counts, a rate with a missing value, Chinese names."""
    units = [u for u in small_city if u.level == "village"]
    rng = np.random.default_rng(3)
    rate = rng.uniform(0, 1, len(units))
    rate[0] = np.nan  # too few cases for a rate
    return gpd.GeoDataFrame(
        {
            "code": [u.code for u in units],
            "name": [u.name for u in units],
            "caseload": rng.integers(0, 500, len(units)),
            "resolution_rate": rate,
        },
        geometry=[u.geom for u in units],
        crs=4326,
    )


def test_geojson_export_is_rfc7946_and_reads_back_the_same(villages, tmp_path):
    body = export_bytes(villages, "geojson", "village")
    collection = orjson.loads(body)
    assert_rfc7946(collection)
    west, south, east, north = collection["bbox"]
    xy = np.array(
        [
            p
            for f in collection["features"]
            for poly in f["geometry"]["coordinates"]
            for ring in poly
            for p in ring
        ]
    )
    assert [west, south, east, north] == [*xy.min(axis=0), *xy.max(axis=0)]
    assert collection["features"][0]["properties"]["resolution_rate"] is None

    path = tmp_path / "villages.geojson"
    path.write_bytes(body)
    assert geojson_validator.validate_structure(path, check_crs=True) == {}
    assert geojson_validator.validate_geometries(path)["invalid"] == {}
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326
    assert list(back["code"]) == list(villages["code"])
    assert list(back["name"]) == list(villages["name"])
    assert list(back["caseload"]) == list(villages["caseload"])
    np.testing.assert_allclose(back["resolution_rate"], villages["resolution_rate"], equal_nan=True)
    # geometries equal up to the 6-decimal rounding (≈ 0.1 m)
    distance = shapely.hausdorff_distance(back.geometry.to_numpy(), villages.geometry.to_numpy())
    assert distance.max() < 1e-6


def test_geojson_export_reprojects_to_wgs84(villages):
    projected = villages.to_crs(3857)
    collection = orjson.loads(export_bytes(projected, "geojson", "village"))
    first = shapely.geometry.shape(collection["features"][0]["geometry"])
    assert shapely.hausdorff_distance(first, villages.geometry.iloc[0]) < 1e-6


def test_csv_export_opens_in_excel_with_wkt_and_a_point_inside(villages):
    body = export_bytes(villages, "csv", "village")
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["code"] for r in rows] == list(villages["code"])
    assert rows[0]["name"] == villages["name"].iloc[0]
    assert rows[0]["resolution_rate"] == ""
    for row, geom in zip(rows, villages.geometry, strict=True):
        back = shapely.from_wkt(row["wkt"])
        assert shapely.hausdorff_distance(back, geom) < 1e-6
        point = shapely.Point(float(row["lon"]), float(row["lat"]))
        assert geom.buffer(1e-6).contains(point)


def test_geopackage_export_reads_back_with_the_layer_name(villages, tmp_path):
    body = export_bytes(villages, "gpkg", "village_caseload")
    path = tmp_path / "out.gpkg"
    path.write_bytes(body)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["village_caseload"]
    back = pyogrio.read_dataframe(path, layer="village_caseload")
    assert back.crs.to_epsg() == 4326
    assert list(back["code"]) == list(villages["code"])
    assert list(back["caseload"]) == list(villages["caseload"])
    assert shapely.equals(back.geometry.to_numpy(), villages.geometry.to_numpy()).all()


def test_unknown_format_is_refused(villages):
    with pytest.raises(ValueError, match="geojson, csv, gpkg"):
        export_bytes(villages, "shp", "village")


def test_clockwise_input_comes_out_counter_clockwise_after_rounding(villages):
    clockwise = villages.copy()
    clockwise["geometry"] = shapely.orient_polygons(villages.geometry.to_numpy(), exterior_cw=True)
    collection = orjson.loads(export_bytes(clockwise, "geojson", "village"))
    assert_rfc7946(collection)  # exteriors counter-clockwise, holes clockwise, 6 decimals
