"""Portable column types: one geometry type for PostGIS and SQLite, UTC-aware timestamps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import shapely
from geoalchemy2 import Geometry, WKBElement
from shapely.geometry.base import BaseGeometry
from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

WGS84 = 4326


class GeometryType(TypeDecorator):
    """A WGS84 geometry that Python code always sees as a shapely object.

    PostgreSQL: PostGIS ``geometry(<kind>, 4326)`` (indexes are declared on the table).
    Elsewhere (SQLite): the geometry's WKB in a BLOB.
    """

    impl = LargeBinary
    cache_ok = True
    # Read by geoalchemy2's DDL hooks: the GiST index is declared on the table instead.
    spatial_index = False
    use_N_D_index = False

    def __init__(self, geometry_type: str = "MULTIPOLYGON", srid: int = WGS84) -> None:
        super().__init__()
        self.geometry_type = geometry_type
        self.srid = srid

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # geoalchemy2's DDL hooks ask with dialect None: we declare our indexes ourselves.
        if dialect is not None and dialect.name == "postgresql":
            return dialect.type_descriptor(
                Geometry(self.geometry_type, srid=self.srid, spatial_index=False)
            )
        return LargeBinary() if dialect is None else dialect.type_descriptor(LargeBinary())

    def bind_expression(self, bindvalue):
        return bindvalue

    def column_expression(self, col):
        return col

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return shapely.to_wkb(shapely.set_srid(value, self.srid), hex=True, include_srid=True)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            value = value.data
        if isinstance(value, memoryview):
            value = value.tobytes()
        geom = shapely.from_wkb(value)
        return shapely.set_srid(geom, 0) if shapely.get_srid(geom) else geom


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned time-zone aware (SQLite loses the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone (UTCDateTime stores UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
