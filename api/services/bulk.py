"""Bulk writing inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

``copy_rows`` takes plain Python rows (datetimes UTC-aware). ``copy_columns`` takes numpy
columns and never builds a Python object per value on PostgreSQL's side of the work: the
seed writes millions of cases through it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from itertools import islice

import numpy as np
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

CHUNK_ROWS = 20_000
_NULL = "\\N"


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _driver_connection(session: Session):
    return session.connection().connection.driver_connection


def _copy_sql(table: Table, columns: list[str]) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'COPY "{table.name}" ({cols}) FROM STDIN'


def copy_rows(session: Session, table: Table, columns: list[str], rows: Iterable[tuple]) -> int:
    """Write rows fast inside the caller's transaction: COPY on PostgreSQL (psycopg 3
    ``cursor.copy``), executemany on SQLite. Returns the row count."""
    if _dialect(session) == "postgresql":
        count = 0
        with (
            _driver_connection(session).cursor() as cur,
            cur.copy(_copy_sql(table, columns)) as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    count = 0
    stmt = insert(table)
    it = iter(rows)
    while batch := list(islice(it, CHUNK_ROWS)):
        session.execute(stmt, [dict(zip(columns, row, strict=True)) for row in batch])
        count += len(batch)
    return count


# ------------------------------------------------------------------ columns


def _null_mask(values: np.ndarray) -> np.ndarray | None:
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.getmaskarray(values)
    if values.dtype.kind == "M":
        return np.isnat(values)
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([v is None for v in values], bool)
    return None


def _escape(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _text_cells(values: np.ndarray) -> list[str]:
    """One column as COPY text cells (``\\N`` for NULL). Text is escaped only when the
    column holds one of COPY's special characters (backslash, tab, newline, return):
    one scan of the joined column, not one per cell."""
    mask = _null_mask(values)
    data = np.ma.getdata(values)
    kind = data.dtype.kind
    if kind == "M":
        whole = (data.astype("datetime64[s]") == data) | np.isnat(data)
        unit = "s" if whole.all() else "us"
        cells = np.datetime_as_string(data, unit=unit, timezone="UTC").tolist()
    elif kind == "b":
        cells = np.where(data, "t", "f").tolist()
    elif kind in "iuf":
        cells = data.astype("U").tolist()
    elif kind == "S":
        cells = np.char.decode(data, "utf-8").tolist()
    elif kind == "U":
        cells = data.tolist()
    else:
        cells = ["" if v is None else v if type(v) is str else str(v) for v in data.tolist()]
    if kind not in "Mbiuf":
        blob = "".join(cells)
        if "\\" in blob or "\t" in blob or "\n" in blob or "\r" in blob:
            cells = [_escape(c) for c in cells]
    if mask is not None and mask.any():
        for i in np.flatnonzero(mask).tolist():
            cells[i] = _NULL
    return cells


def _sqlite_cells(values: np.ndarray) -> list:
    """One column as values SQLite stores the way SQLAlchemy's types would."""
    mask = _null_mask(values)
    data = np.ma.getdata(values)
    kind = data.dtype.kind
    if kind == "M":
        # SQLAlchemy's SQLite DATETIME storage: 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC)
        cells = np.char.replace(np.datetime_as_string(data, unit="us"), "T", " ")
    elif kind == "S":
        cells = np.char.decode(data, "utf-8")
    else:
        cells = data
    out = cells.tolist()
    if mask is not None and mask.any():
        for i in np.flatnonzero(mask):
            out[i] = None
    return out


def copy_columns(session: Session, table: Table, columns: Mapping[str, np.ndarray]) -> int:
    """Write equally long numpy columns as rows, inside the caller's transaction.

    NULL is a masked value, NaT (datetime64, taken as UTC) or NaN; strings may be ``U``
    arrays or ``S`` (UTF-8 bytes). Returns the row count.
    """
    return copy_column_chunks(session, table, [columns])


def copy_column_chunks(
    session: Session,
    table: Table,
    chunks: Iterable[Mapping[str, np.ndarray]],
    on_chunk: Callable[[int], object] | None = None,
) -> int:
    """Write a stream of column chunks (as ``copy_columns``; the same columns in each).

    On PostgreSQL one COPY takes the whole stream, sent by a writer thread, so the server
    stores one chunk while the next is being made. ``on_chunk(rows)`` follows each chunk
    (a progress bar). Returns the row count.
    """
    total = 0
    postgres = _dialect(session) == "postgresql"
    copy = None
    with ExitStack() as stack:
        for columns in chunks:
            names = list(columns)
            arrays = [np.asanyarray(columns[c]) for c in names]
            count = len(arrays[0]) if arrays else 0
            if any(len(a) != count for a in arrays):
                raise ValueError("columns of different lengths")
            if count == 0:
                continue
            if postgres:
                if copy is None:
                    cur = stack.enter_context(_driver_connection(session).cursor())
                    copy = stack.enter_context(
                        cur.copy(_copy_sql(table, names), writer=QueuedLibpqWriter(cur))
                    )
                for start in range(0, count, CHUNK_ROWS * 5):
                    cols = [_text_cells(a[start : start + CHUNK_ROWS * 5]) for a in arrays]
                    lines = map("\t".join, zip(*cols, strict=True))
                    copy.write(("\n".join(lines) + "\n").encode())
            else:
                _sqlite_insert(session, table, names, arrays, count)
            total += count
            if on_chunk is not None:
                on_chunk(count)
    return total


def _sqlite_insert(session: Session, table: Table, names: list[str], arrays, count: int) -> None:
    cols_sql = ", ".join(f'"{c}"' for c in names)
    marks = ", ".join("?" for _ in names)
    cursor = _driver_connection(session).cursor()
    try:
        for start in range(0, count, CHUNK_ROWS):
            cols = [_sqlite_cells(a[start : start + CHUNK_ROWS]) for a in arrays]
            cursor.executemany(
                f'INSERT INTO "{table.name}" ({cols_sql}) VALUES ({marks})',
                zip(*cols, strict=True),
            )
    finally:
        cursor.close()


@contextmanager
def bulk_loading(session: Session, *tables: Table) -> Iterator[None]:
    """Load ``tables`` in bulk: drop their plain (non-unique) indexes and, on PostgreSQL,
    their foreign keys, then build them again at the end, in the caller's transaction.

    Building an index or checking a foreign key once, set-based, is many times faster than
    keeping them up to date row by row. Keys and unique constraints stay in force; the
    foreign keys are validated when they come back, so bad rows still fail the load.
    """
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    indexes = sorted(
        (i for t in tables for i in t.indexes if not i.unique), key=lambda i: i.name or ""
    )
    foreign_keys: list[tuple[str, str, str]] = []
    if postgres:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        for table in tables:
            rows = conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname"
                ),
                {"t": f'"{table.name}"'},
            ).all()
            foreign_keys += [(table.name, name, definition) for name, definition in rows]
        for table_name, name, _ in foreign_keys:
            conn.exec_driver_sql(f'ALTER TABLE "{table_name}" DROP CONSTRAINT "{name}"')
    for index in indexes:
        index.drop(conn)
    yield
    for index in indexes:
        index.create(conn)
    for table_name, name, definition in foreign_keys:
        conn.exec_driver_sql(f'ALTER TABLE "{table_name}" ADD CONSTRAINT "{name}" {definition}')


def utc_datetime64(values: Iterable[dt.datetime]) -> np.ndarray:
    """UTC-aware datetimes → a datetime64[us] column for ``copy_columns``."""
    return np.array(
        [np.datetime64(v.astimezone(dt.UTC).replace(tzinfo=None), "us") for v in values],
        dtype="datetime64[us]",
    )
