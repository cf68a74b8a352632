"""Dataset version counters: caches and ETags key on them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import DatasetVersion


def bump_version(session: Session, name: str) -> int:
    """Increment the counter of dataset ``name`` inside the caller's transaction."""
    row = session.get(DatasetVersion, name, with_for_update=True)
    now = dt.datetime.now(dt.UTC)
    if row is None:
        row = DatasetVersion(name=name, version=1, updated_at=now)
        session.add(row)
    else:
        row.version += 1
        row.updated_at = now
    session.flush()
    return row.version


def get_version(session: Session, name: str) -> int:
    """The current counter of dataset ``name`` (0 if never written)."""
    value = session.scalar(select(DatasetVersion.version).where(DatasetVersion.name == name))
    return int(value or 0)
