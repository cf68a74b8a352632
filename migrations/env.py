"""Alembic environment: runs against the URL in the config (see api.db.migrate)."""

from __future__ import annotations

import geoalchemy2  # noqa: F401  (registers the PostGIS geometry type for reflection)
from alembic import context

import api.db.events  # noqa: F401  (the dispatch events' tables)
from api.db.models import Base
from api.db.session import get_engine
from api.settings import get_settings

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Compare only our own tables (PostGIS brings spatial_ref_sys and friends)."""
    if type_ == "table" and reflected and compare_to is None:
        return name in target_metadata.tables
    if type_ == "index" and not reflected:
        # Indexes declared for one dialect only (the GiST index) are not expected elsewhere.
        ddl_if = getattr(obj, "_ddl_if", None)
        if ddl_if is not None and ddl_if.dialect:
            return ddl_if.dialect == context.get_context().dialect.name
    return True


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = get_engine(config.get_main_option("sqlalchemy.url") or get_settings().database_url)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
