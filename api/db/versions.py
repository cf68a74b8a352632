"""Dataset version counters: caches and ETags key on them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api.db.models import DatasetVersion


def bump_version(session: Session, name: str) -> int:
    """Increment the counter of dataset ``name`` inside the caller's transaction (the row
    stays locked until it ends). One upsert: two first writers of a name on a fresh
    database both succeed, one after the other, instead of one failing on the key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    now = dt.datetime.now(dt.UTC)
    stmt = insert(DatasetVersion).values(name=name, version=1, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[DatasetVersion.name],
        set_={"version": DatasetVersion.version + 1, "updated_at": now},
    ).returning(DatasetVersion.version)
    return int(session.execute(stmt).scalar_one())


def get_version(session: Session, name: str) -> int:
    """The current counter of dataset ``name`` (0 if never written)."""
    value = session.scalar(select(DatasetVersion.version).where(DatasetVersion.name == name))
    return int(value or 0)
