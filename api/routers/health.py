"""Liveness, database kind and schema revision."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.db.migrate import current_revision, head_revision
from api.deps import SessionDep
from api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: SessionDep) -> dict:
    """Is the server up, which database does it use, and is its schema current?"""
    try:
        session.execute(text("select 1"))
        engine = session.get_bind()
        revision = current_revision(engine)
    except Exception as exc:  # the database is down or unreachable
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from exc
    dialect = engine.dialect.name
    postgis = None
    if dialect == "postgresql":
        postgis = session.execute(text("select postgis_lib_version()")).scalar()
    head = head_revision()
    return {
        "status": "ok" if revision == head else "schema_outdated",
        "database": dialect,
        "postgis": postgis,
        "schema_revision": revision,
        "schema_head": head,
    }
