"""Reads from a PostgreSQL streaming replica (``ZHILI_READ_DATABASE_URL``), writes to the
primary (``ZHILI_DATABASE_URL``).

A read request (GET, HEAD, and the dashboard's callbacks) gets a ``ReplicaSession``: what it
reads (the figure engine's versions, change log and cube loads, maps, exports, case lists)
comes from the replica, while everything it writes (an ORM flush, an INSERT, UPDATE or
DELETE, a ``SELECT .. FOR UPDATE``, any text statement that is not a plain read) goes to
the primary in the same session. Who the caller is (users, tokens, permissions) and the
audit trail are always read on the primary: a token revoked or created a moment ago is
known at once, whatever the replica's lag. A replica is a copy a few milliseconds behind:
the figures it gives are those of a moment ago, and ``/api/v1/health`` says how far behind
(``replica_lag``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause

from api.db.session import get_engine, session_factory

# tables read on the primary even in a read session: identity and the audit trail
PRIMARY_TABLES = frozenset({"app_user", "api_token", "user_permission", "audit_log"})
# a text statement starting with one of these only reads
_READ_WORDS = ("select", "with", "show", "values", "explain", "table")


class ReplicaSession(Session):
    """A session that reads on the replica and writes on the primary (see the module)."""

    primary: Engine
    replica: Engine

    def get_bind(
        self, mapper: Any = None, *, clause: ClauseElement | None = None, **kw: Any
    ) -> Engine:
        """The primary for writes and for ``PRIMARY_TABLES``, the replica for other reads."""
        if self._flushing or _on_primary(mapper, clause):
            return self.primary
        return self.replica


def _on_primary(mapper: Any, clause: ClauseElement | None) -> bool:
    if isinstance(mapper, Mapper) and mapper.local_table.name in PRIMARY_TABLES:
        return True
    if clause is None:
        return False
    if getattr(clause, "is_dml", False) or getattr(clause, "_for_update_arg", None) is not None:
        return True  # INSERT, UPDATE, DELETE; SELECT .. FOR UPDATE locks rows to change them
    if isinstance(clause, TextClause):
        return not clause.text.lstrip().lower().startswith(_READ_WORDS)
    return False


def read_session(url: str, read_url: str | None) -> Session:
    """A session for a request that only reads: on the replica ``read_url`` when it is
    set (a ``ReplicaSession`` writing on ``url``), else a plain session on ``url``."""
    if not read_url:
        return session_factory(url)()
    session = ReplicaSession(expire_on_commit=False)
    session.primary, session.replica = get_engine(url), get_engine(read_url)
    return session


def primary_engine(session: Session) -> Engine:
    """The engine that ``session`` writes on (its only engine when it is not a
    ``ReplicaSession``)."""
    if isinstance(session, ReplicaSession):
        return session.primary
    return session.get_bind().engine


def _lsn(value: str | None) -> int | None:
    """A WAL position ``X/Y`` as a byte offset."""
    if not value:
        return None
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def replica_lag(primary: Engine, replica: Engine) -> dict:
    """How far the replica is behind the primary: ``lag_bytes`` of WAL the primary has
    written that the replica has not replayed; ``lag_seconds``, 0 when it has replayed all
    it received and the primary's position, else the age of the last transaction it
    replayed; ``last_replay_at`` that transaction's commit time. ``status`` is
    ``unavailable`` (with the reason) when the replica cannot be asked, ``not_a_replica``
    when the read database is not in recovery (a plain copy that nothing updates)."""
    try:
        with replica.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT pg_is_in_recovery() AS in_recovery, "
                    "pg_last_wal_receive_lsn()::text AS received, "
                    "pg_last_wal_replay_lsn()::text AS replayed, "
                    "pg_last_xact_replay_timestamp() AS replayed_at, "
                    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused, "
                    "now() AS now"
                )
            ).one()
    except Exception as exc:  # down, refused, not PostgreSQL
        return {"status": "unavailable", "error": type(exc).__name__}
    if not row.in_recovery:
        return {"status": "not_a_replica"}
    try:
        with primary.connect() as conn:
            written = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
    except Exception as exc:
        return {"status": "primary_unavailable", "error": type(exc).__name__}
    at, replayed = _lsn(written), _lsn(row.replayed)
    lag_bytes = max(0, at - replayed) if at is not None and replayed is not None else None
    if lag_bytes == 0:
        seconds: float | None = 0.0
    elif row.replayed_at is not None:
        seconds = max(0.0, (row.now - row.replayed_at).total_seconds())
    else:
        seconds = None
    replayed_at: dt.datetime | None = row.replayed_at
    return {
        "status": "paused" if row.paused else "streaming",
        "lag_bytes": lag_bytes,
        "lag_seconds": seconds,
        "last_replay_at": replayed_at.isoformat() if replayed_at else None,
        "replay_lsn": row.replayed,
        "primary_lsn": written,
    }
