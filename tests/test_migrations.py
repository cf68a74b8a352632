"""Alembic builds the schema from empty on both databases, and it matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from api.db.migrate import downgrade, upgrade
from api.db.models import Base
from api.db.session import dispose_engines, get_engine


def schema_diff(url: str) -> list:
    with get_engine(url).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _include(conn.dialect.name)}
        )
        return compare_metadata(ctx, Base.metadata)


def _include(dialect: str):
    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table" and reflected and compare_to is None:
            return name in Base.metadata.tables
        ddl_if = getattr(obj, "_ddl_if", None)
        if type_ == "index" and not reflected and ddl_if is not None and ddl_if.dialect:
            return ddl_if.dialect == dialect
        return True

    return include


def test_upgrade_downgrade_upgrade_and_no_drift(empty_db_url: str, db_kind: str) -> None:
    upgrade(empty_db_url)
    tables = set(inspect(get_engine(empty_db_url)).get_table_names())
    assert {
        "admin_level",
        "admin_unit",
        "unit_ancestry",
        "case",
        "case_rollup_daily",
        "grid_worker",
        "facility",
        "audit_log",
        "app_user",
        "alert",
    } <= tables
    dispose_engines()
    downgrade(empty_db_url, "base")
    dispose_engines()
    left = set(inspect(get_engine(empty_db_url)).get_table_names()) & set(Base.metadata.tables)
    assert left == set()
    dispose_engines()
    upgrade(empty_db_url)
    dispose_engines()
    assert schema_diff(empty_db_url) == []
    if db_kind == "postgis":
        indexes = inspect(get_engine(empty_db_url)).get_indexes("admin_unit")
        assert any(ix["name"] == "ix_admin_unit_geom" for ix in indexes)
