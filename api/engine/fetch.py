"""Integer query results as numpy arrays: PostgreSQL's COPY (CSV, parsed by pandas), ten
times faster than rows through the driver at metro scale; plain rows elsewhere."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session


def fetch_ints(session: Session, sql: str, ncols: int, binds: dict | None = None) -> np.ndarray:
    """Rows of an all-integer query as an int64 array of ``ncols`` columns."""
    if session.get_bind().dialect.name == "postgresql" and not binds:
        raw = session.connection().connection.dbapi_connection
        buf = io.BytesIO()
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
        if buf.getbuffer().nbytes == 0:
            return np.zeros((0, ncols), dtype=np.int64)
        buf.seek(0)
        return pd.read_csv(buf, header=None, dtype=np.int64).to_numpy()
    rows = session.execute(text(sql), binds or {}).all()
    if not rows:
        return np.zeros((0, ncols), dtype=np.int64)
    # plain tuples: numpy probes each Row for array attributes, a failed key lookup each
    return np.asarray([tuple(r) for r in rows], dtype=np.int64)
