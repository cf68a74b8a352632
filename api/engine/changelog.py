"""The rollup change log: what each ingest transaction changed in a fact domain's rollup
tables, so that the domain's in-memory cube (``api.engine.cube``) catches up by applying
only that, in milliseconds, instead of reading every rollup row again.

``api.engine.rollup.apply_changes`` writes one ``rollup_change`` row per transaction, in
that transaction, under the domain's name and the version its ``bump_version`` returned.
The bump locks the version row until commit, so versions commit in order: once version N
is visible, every change up to N is visible too. A reader applies the changes after its
cube's version only when every version in between is there and the row of its own version
carries the token it saw when it was built; anything else (the rollups rebuilt, a pruned
log, another database under the same URL, a rolled-back transaction's version reused)
sends it to a full reload.

A change holds the delta frames of ``apply_changes`` (rollup, flow and histogram rows
keyed like their tables), self-described: a JSON header names each frame's columns and
lists the codes of its text columns (category, channel), then one int64 matrix per frame,
zlib-compressed. Days count from 1970-01-01; a text value is its index in the
header's codes for its column. Float columns (``close_days_sum``, which the cube does not
read) are left out.

The log keeps the newest changes up to ``log_rows`` delta rows and ``log_versions``
versions (pruned every ``prune_every`` versions; ``api.engine.tuning``): more than a cube
applies before it reloads anyway, and enough to cover a reload at metro scale under a bulk
import.
``rebuild_rollups`` clears the log and leaves a row without deltas: a cube built before
it reloads, one built after it catches up from there.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import case, delete, insert, select, text
from sqlalchemy.orm import Session

from api.db.models import RollupChange
from api.engine.tuning import engine_settings

FORMAT = 2  # 2: frames named by the domain (a distribution's after it)


@dataclass(frozen=True)
class Change:
    """One version's deltas: each frame's columns by name (int64; days from 1970-01-01,
    text columns as indexes into ``codes[column]``)."""

    version: int
    token: int
    frames: dict[str, dict[str, np.ndarray]]
    codes: dict[str, list[str]]


def encode(frames: dict[str, pd.DataFrame]) -> tuple[bytes, int]:
    """Delta frames (name → frame) as a change's bytes, and how many rows they hold."""
    header: dict = {"format": FORMAT, "frames": {}, "codes": {}}
    matrices = []
    for name, frame in frames.items():
        columns, names = [], []
        for column, dtype in frame.dtypes.items():
            if dtype.kind == "f":
                continue
            values = frame[column].to_numpy()
            if dtype.kind == "M":
                values = values.astype("datetime64[D]")
            elif dtype.kind not in "iub":  # text: an index into the column's codes
                found, uniques = pd.factorize(values)
                codes = header["codes"].setdefault(column, [])
                known = {code: i for i, code in enumerate(codes)}
                for code in uniques.tolist():
                    if code not in known:
                        known[code] = len(codes)
                        codes.append(str(code))
                values = np.array([known[c] for c in uniques.tolist()] + [-1])[found]
            columns.append(values.astype(np.int64))
            names.append(column)
        header["frames"][name] = {"columns": names, "rows": len(frame)}
        matrices.append(np.column_stack(columns) if columns else np.zeros((len(frame), 0)))
    raw = json.dumps(header).encode()
    body = b"".join([len(raw).to_bytes(4, "little"), raw, *(m.tobytes() for m in matrices)])
    return zlib.compress(body, 1), sum(len(frame) for frame in frames.values())


def decode(version: int, token: int, blob: bytes) -> Change:
    body = zlib.decompress(blob)
    size = int.from_bytes(body[:4], "little")
    header = json.loads(body[4 : 4 + size])
    if header["format"] != FORMAT:
        raise ValueError(f"rollup change {version}: unknown format {header['format']}")
    frames = {}
    offset = 4 + size
    for name, layout in header["frames"].items():
        rows, names = layout["rows"], layout["columns"]
        count = rows * len(names)
        matrix = np.frombuffer(body, dtype=np.int64, count=count, offset=offset)
        matrix = matrix.reshape(rows, len(names))
        frames[name] = {column: matrix[:, i] for i, column in enumerate(names)}
        offset += count * 8
    return Change(version, token, frames, header["codes"])


def _insert(session: Session, domain: str, version: int, deltas: bytes | None, rows: int) -> None:
    session.execute(
        insert(RollupChange).values(
            domain=domain,
            version=version,
            token=secrets.randbits(62),
            rows=rows,
            deltas=deltas,
            created_at=dt.datetime.now(dt.UTC),
        )
    )


def record(session: Session, domain: str, version: int, deltas: bytes, rows: int) -> None:
    """Write ``domain``'s change of ``version`` (in the caller's transaction, after its
    bump)."""
    _insert(session, domain, version, deltas, rows)
    if version % engine_settings().prune_every == 0:
        prune(session, domain, version)


def record_reset(session: Session, domain: str, version: int) -> None:
    """``domain``'s rollups were rebuilt at ``version``: no cube catches up across it."""
    session.execute(delete(RollupChange).where(RollupChange.domain == domain))
    _insert(session, domain, version, None, 0)


def prune(session: Session, domain: str, newest: int) -> None:
    """Keep ``domain``'s newest changes up to ``log_versions`` versions and ``log_rows``
    delta rows (the newest change always)."""
    tuning = engine_settings()
    mine = RollupChange.domain == domain
    session.execute(
        delete(RollupChange).where(mine, RollupChange.version <= newest - tuning.log_versions)
    )
    session.execute(
        text(
            """DELETE FROM rollup_change WHERE domain = :domain AND version < (
                SELECT MIN(version) FROM (
                    SELECT version, SUM(rows) OVER (ORDER BY version DESC) - rows AS newer
                    FROM rollup_change WHERE domain = :domain
                ) AS log WHERE newer < :limit)"""
        ),
        {"limit": tuning.log_rows, "domain": domain},
    )


def token_at(session: Session, domain: str, version: int) -> int | None:
    """The token of ``domain``'s ``version`` row (None: no row, as after a change the log
    lost)."""
    return session.scalar(
        select(RollupChange.token).where(
            RollupChange.domain == domain, RollupChange.version == version
        )
    )


def read(
    session: Session, domain: str, since: int, token: int | None, upto: int
) -> list[Change] | None:
    """``domain``'s changes after ``since`` up to ``upto``, in order; None when they cannot
    bring a cube built at (``since``, ``token``) up to ``upto``: a version missing, a
    rebuild in between, or ``since``'s row not the one the cube saw."""
    # a cube read before anything was written (version 0, no row, empty tables) catches up
    # from version 1 on; a rebuild since then left a row without deltas: a reload
    fresh = since == 0 and token is None
    if (token is None and not fresh) or upto < since:
        return None
    if upto == since:
        return []
    rows = session.execute(
        select(
            RollupChange.version,
            RollupChange.token,
            case((RollupChange.version > since, RollupChange.deltas), else_=None),
        )
        .where(RollupChange.domain == domain)
        .where(RollupChange.version >= since, RollupChange.version <= upto)
        .order_by(RollupChange.version)
    ).all()
    first = 1 if fresh else since
    if [r[0] for r in rows] != list(range(first, upto + 1)):
        return None
    if not fresh and rows[0][1] != token:
        return None
    rows = rows if fresh else rows[1:]
    if any(r[2] is None for r in rows):
        return None
    try:
        return [decode(version, token, bytes(blob)) for version, token, blob in rows]
    except ValueError:  # written by another version of this code: read the tables again
        return None
