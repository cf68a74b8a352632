"""Liveness, database kind, schema revision, and the read replica's lag when there is one."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.db.migrate import current_revision, head_revision
from api.db.replica import ReplicaSession, primary_engine, replica_lag
from api.deps import SessionDep
from api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: SessionDep) -> dict:
    """Is the server up, which database does it use, and is its schema current? With a
    read replica (``ZHILI_READ_DATABASE_URL``): how far behind the primary it is
    (``replica``: ``lag_bytes``, ``lag_seconds``, ``status``; docs/deploy.md). The status
    is ``replica_unavailable`` when the replica cannot be asked: the figures cannot be read."""
    replica = session.replica if isinstance(session, ReplicaSession) else None
    engine = primary_engine(session)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        revision = current_revision(engine)
    except Exception as exc:  # the database is down or unreachable
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from exc
    dialect = engine.dialect.name
    postgis = None
    if dialect == "postgresql":
        with engine.connect() as conn:
            postgis = conn.execute(text("select postgis_lib_version()")).scalar()
    head = head_revision()
    out = {
        "status": "ok" if revision == head else "schema_outdated",
        "database": dialect,
        "postgis": postgis,
        "schema_revision": revision,
        "schema_head": head,
    }
    if replica is not None:
        out["replica"] = lag = replica_lag(engine, replica)
        if out["status"] == "ok" and lag["status"] in ("unavailable", "not_a_replica"):
            out["status"] = f"replica_{lag['status']}"
    return out
