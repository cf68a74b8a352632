"""Rollup maintenance: a fact domain's daily tables kept in step with its facts.

The tables and what each column counts are declared by the domain (``api.engine.domain``;
the cases' in ``api.engine.domains.cases``). Two paths produce exactly the same rows from
that one declaration:

- ``apply_changes`` moves the counts of created, changed or deleted facts (each tally,
  event and distribution evaluated vectorised, deltas summed with pandas, inside the
  caller's transaction, one ``INSERT .. ON CONFLICT DO UPDATE`` per table);
- ``rebuild`` recomputes every row from the source table with set-based SQL.

A fact's day is its date column's local day in the settings' time zone
(``api.engine.sql``). Every change bumps the domain's dataset version and is logged
(``api.engine.changelog``): the cube catches up from the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Table, delete, text
from sqlalchemy.orm import Session

from api.db.models import Base, Case
from api.db.versions import bump_version
from api.engine import changelog
from api.engine.domain import FactDomain
from api.engine.domains.cases import CASES
from api.engine.facts import local_days, utc_us
from api.engine.sql import SqlDialect


@dataclass(frozen=True)
class CaseSnapshot:
    """The fields of a case the rollups depend on."""

    leaf_unit_id: int
    reported_at: dt.datetime  # UTC-aware
    category: str
    channel: str
    deadline: dt.datetime
    handled_at: dt.datetime | None  # 办结 = closed
    visited_at: dt.datetime | None
    evaluated_at: dt.datetime | None
    outcome: str | None
    satisfaction: int | None

    @classmethod
    def of(cls, case: Case) -> CaseSnapshot:
        """The snapshot of a ``Case`` row as it is now."""
        return cls(
            leaf_unit_id=case.leaf_unit_id,
            reported_at=case.reported_at,
            category=case.category,
            channel=case.channel,
            deadline=case.deadline,
            handled_at=case.handled_at,
            visited_at=case.visited_at,
            evaluated_at=case.evaluated_at,
            outcome=case.outcome,
            satisfaction=case.satisfaction,
        )


def case_columns(snaps: Sequence[CaseSnapshot]) -> dict[str, np.ndarray]:
    """Snapshots as the columns ``apply_case_changes`` takes in ``added``."""

    def col(name: str) -> list:
        return [getattr(s, name) for s in snaps]

    return {
        "leaf_unit_id": np.array(col("leaf_unit_id"), dtype=np.int64),
        "reported_at": utc_us(col("reported_at")),
        "category": np.array(col("category"), dtype=object),
        "channel": np.array(col("channel"), dtype=object),
        "deadline": utc_us(col("deadline")),
        "handled_at": utc_us(col("handled_at")),
        "visited_at": utc_us(col("visited_at")),
        "evaluated_at": utc_us(col("evaluated_at")),
        "outcome": np.array(col("outcome"), dtype=object),
        "satisfaction": np.array(
            [np.nan if v is None else float(v) for v in col("satisfaction")], dtype=np.float64
        ),
    }


def apply_case_changes(
    session: Session,
    changes: Iterable[tuple[CaseSnapshot | None, CaseSnapshot | None]],
    added: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Move the cases' rollup counts for created (None, new), changed (old, new) or
    deleted (old, None) cases, and for the new cases given as columns in ``added`` (see
    ``case_columns``: a bulk of new cases needs no snapshot each)."""
    olds: list[CaseSnapshot] = []
    news: list[CaseSnapshot] = []
    for old, new in changes:
        if old == new:
            continue
        if old is not None:
            olds.append(old)
        if new is not None:
            news.append(new)
    parts: list[tuple[Mapping[str, np.ndarray], int]] = []
    if olds:
        parts.append((case_columns(olds), -1))
    if news:
        parts.append((case_columns(news), 1))
    if added is not None and len(added["leaf_unit_id"]):
        parts.append((added, 1))
    apply_changes(session, CASES, parts)


def rebuild_rollups(session: Session, on_table: Callable[[str], None] | None = None) -> None:
    """Recompute the cases' rollup tables from table ``case`` (see ``rebuild``)."""
    rebuild(session, CASES, on_table)


def rollup_table_count(domain: FactDomain = CASES) -> int:
    """How many tables ``rebuild`` fills for ``domain`` (its steps, for a progress bar)."""
    return len([name for name in _tables(domain).values() if name])


# ---------------------------------------------------------------- deltas of facts


def _keys(domain: FactDomain) -> dict[str, list[str]]:
    """Each rollup table's key columns, by change-log frame name (a distribution's frame
    is named after it)."""
    dims = [d.column for d in domain.dimensions]
    return {
        "rollup": ["leaf_unit_id", "day", *dims],
        "flow": ["leaf_unit_id", "day", *domain.tables.flow_dimensions],
        **{d.name: ["leaf_unit_id", "day", "days"] for d in domain.distributions},
    }


def _tables(domain: FactDomain) -> dict[str, str]:
    """Each change-log frame's table."""
    names = {"rollup": domain.tables.daily, "flow": domain.tables.flow}
    return names | {d.name: d.table for d in domain.distributions}


def _deltas(domain: FactDomain, columns: Mapping[str, np.ndarray], sign: int):
    """The summed contributions of the facts in ``columns`` (each counted ``sign`` times:
    +1 added, −1 removed) to the domain's tables, as frames keyed like the tables; all-zero
    rows dropped. The same rules as ``rebuild``'s SQL: both read the declaration."""
    facts = domain.facts(columns)
    keys = _keys(domain)
    leaf = facts.leaf_unit_id
    day = local_days(getattr(facts, domain.source.date))
    n = len(leaf)
    dims = {d.column: getattr(facts, d.column) for d in domain.dimensions}
    tallies = {t.name: sign * np.asarray(t.rows(facts)) for t in domain.tallies}
    rollup = _summed(
        pd.DataFrame({"leaf_unit_id": leaf, "day": day, **dims, **tallies}), keys["rollup"]
    )
    frames = {"rollup": rollup}
    if domain.tables.flow:
        parts = []
        zero = np.zeros(n, dtype=np.int64)
        for event in domain.events:
            mask = np.ones(n, bool) if event.when_rows is None else event.when_rows(facts)
            if not mask.any():
                continue
            counts = {e.name: zero[mask] for e in domain.events}
            counts[event.name] = np.full(mask.sum(), sign, dtype=np.int64)
            flow_dims = {c: dims[c][mask] for c in domain.tables.flow_dimensions}
            when = local_days(getattr(facts, event.on)[mask])
            parts.append(
                pd.DataFrame({"leaf_unit_id": leaf[mask], "day": when, **flow_dims, **counts})
            )
        frames["flow"] = _summed(pd.concat(parts, ignore_index=True), keys["flow"])
    for dist in domain.distributions:
        mask = dist.when_rows(facts)
        value = np.minimum(dist.most, dist.value_rows(facts)[mask])
        hist = {"leaf_unit_id": leaf[mask], "day": day[mask], "days": value}
        frames[dist.name] = _summed(
            pd.DataFrame({**hist, "n": np.full(mask.sum(), sign, dtype=np.int64)}),
            keys[dist.name],
        )
    return frames


def _summed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows summed per key, without the rows whose measures are all zero."""
    if frame.empty:
        return frame
    out = frame.groupby(keys, sort=False, observed=True).sum().reset_index()
    measures = [c for c in out.columns if c not in keys]
    return out[(out[measures] != 0).any(axis=1)].reset_index(drop=True)


def apply_changes(
    session: Session, domain: FactDomain, parts: Sequence[tuple[Mapping[str, np.ndarray], int]]
) -> None:
    """Move ``domain``'s rollup counts for facts given as columns, each part counted with
    its sign (+1 added, −1 removed), in the caller's transaction; bumps the domain's
    dataset version and logs the deltas under it (``api.engine.changelog``).

    The deltas are summed vectorised first, then written with one merge per table in key
    order (concurrent writers lock shared rows in the same order); rows whose counts fall
    to zero are deleted, so the tables equal what ``rebuild`` makes."""
    if not parts:
        return
    summed = [_deltas(domain, columns, sign) for columns, sign in parts]
    keys = _keys(domain)
    frames = {
        name: _summed(pd.concat([s[name] for s in summed], ignore_index=True), keys[name])
        if len(summed) > 1
        else summed[0][name]
        for name in summed[0]
    }
    names = _tables(domain)
    for frame_name, frame in frames.items():
        table = Base.metadata.tables[names[frame_name]]
        measures = [c for c in frame.columns if c not in keys[frame_name]]
        _upsert_add(session, table, frame, measures)
        # a daily row with no fact is empty; a flow row with no event; a histogram row at 0
        empty = [domain.count] if frame_name == "rollup" else measures
        _delete_empty(session, table, frame, measures, empty)
    deltas, rows = changelog.encode(frames)
    # last: the bump locks the version row until commit (concurrent writers wait here)
    changelog.record(session, domain.name, bump_version(session, domain.name), deltas, rows)


def _upsert_add(
    session: Session, table: Table, rows: pd.DataFrame, measures: Sequence[str]
) -> None:
    """``INSERT .. ON CONFLICT (primary key) DO UPDATE SET m = m + excluded.m`` for ``rows``
    (a frame with the table's key and ``measures`` columns; ``day`` as datetime64[D])."""
    if rows.empty:
        return
    if session.get_bind().dialect.name == "postgresql":
        _upsert_add_arrays(session, table, rows, measures)
        return
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )
    names = list(rows.columns)
    values = zip(*(_python_values(rows[c]) for c in names), strict=True)
    records = [dict(zip(names, vals, strict=True)) for vals in values]
    for i in range(0, len(records), 5000):
        session.execute(stmt, records[i : i + 5000])


def _python_values(values: pd.Series) -> list:
    if values.dtype.kind == "M":
        return [d.date() for d in pd.DatetimeIndex(values.to_numpy()).to_pydatetime()]
    return values.tolist()


def _array_literal(values: np.ndarray) -> str:
    """A column as a PostgreSQL array literal (``{1,2}``): one text parameter per column,
    made by numpy, instead of a Python object per value for the driver to adapt."""
    kind = values.dtype.kind
    if kind == "M":
        cells = np.datetime_as_string(values.astype("datetime64[D]"), unit="D")
    elif kind in "iub":
        cells = values.astype(np.int64).astype(str)
    elif kind == "f":
        cells = values.astype(np.float64).astype(str)  # shortest round-trip repr
    else:  # text: each distinct value quoted once (categories, channels: a handful)
        codes, uniques = pd.factorize(values)
        quoted = ['"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in uniques]
        codes = np.where(codes < 0, len(quoted), codes)  # a missing value: NULL
        cells = np.array([*quoted, "NULL"], dtype=object)[codes]
    return "{" + ",".join(cells.tolist()) + "}"


def _upsert_add_arrays(
    session: Session, table: Table, rows: pd.DataFrame, measures: Sequence[str]
) -> None:
    """PostgreSQL: the upsert as one statement per table, each column sent as one array
    (``unnest``), the rows merged in key order: concurrent writers lock shared rows in the
    same order (no deadlock) and the primary key's index is walked in order."""
    dialect = session.get_bind().dialect
    names = list(rows.columns)
    keys = [c.name for c in table.primary_key.columns]
    types = [table.c[n].type.compile(dialect=dialect) for n in names]
    unnest = ", ".join(f"CAST(:c{i} AS {t}[])" for i, t in enumerate(types))
    alias = ", ".join(f"c{i}" for i in range(len(names)))
    order = ", ".join(f"c{names.index(k)}" for k in keys)
    columns = ", ".join(f'"{n}"' for n in names)
    sets = ", ".join(f'"{m}" = "{table.name}"."{m}" + EXCLUDED."{m}"' for m in measures)
    stmt = text(
        f'INSERT INTO "{table.name}" ({columns}) '
        f"SELECT * FROM unnest({unnest}) AS d({alias}) ORDER BY {order} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )
    for start in range(0, len(rows), 100_000):
        part = rows.iloc[start : start + 100_000]
        params = {f"c{i}": _array_literal(part[n].to_numpy()) for i, n in enumerate(names)}
        session.execute(stmt, params)


def _delete_empty(
    session: Session, table: Table, rows: pd.DataFrame, measures: Sequence[str], empty: list[str]
) -> None:
    """Delete the rows whose ``empty`` columns fell to zero among the (leaf, day) pairs
    just touched. Only a row with a decreasing measure can fall to zero: new facts
    (increments only) delete nothing, which keeps intake from probing the large tables."""
    if rows.empty:
        return
    falling = rows[(rows[list(measures)] < 0).any(axis=1)]
    if falling.empty:
        return
    pairs = falling[["leaf_unit_id", "day"]].drop_duplicates()
    pairs = pairs.sort_values(["leaf_unit_id", "day"])
    leaves = pairs["leaf_unit_id"].to_numpy()
    days = pairs["day"].to_numpy()
    condition = " AND ".join(f'"{column}" = 0' for column in empty)
    if session.get_bind().dialect.name == "postgresql":  # exactly the pairs, not a product
        stmt = text(
            f'DELETE FROM "{table.name}" WHERE (leaf_unit_id, day) IN '
            "(SELECT * FROM unnest(CAST(:leaves AS bigint[]), CAST(:days AS date[]))) "
            f"AND {condition}"
        )
        for i in range(0, len(leaves), 50_000):
            session.execute(
                stmt,
                {
                    "leaves": _array_literal(leaves[i : i + 50_000]),
                    "days": _array_literal(days[i : i + 50_000]),
                },
            )
        return
    day_values = sorted(set(_python_values(pairs["day"])))
    leaf_values = sorted(set(leaves.tolist()))
    for i in range(0, len(day_values), 500):
        for j in range(0, len(leaf_values), 500):
            session.execute(
                delete(table)
                .where(table.c.day.in_(day_values[i : i + 500]))
                .where(table.c.leaf_unit_id.in_(leaf_values[j : j + 500]))
                .where(text(condition))
            )


# ---------------------------------------------------------------- set-based rebuild


def rebuild(
    session: Session, domain: FactDomain, on_table: Callable[[str], None] | None = None
) -> None:
    """Recompute ``domain``'s rollup tables from its source table with set-based SQL
    (both databases); bumps its version and resets the change log (a cube older than the
    rebuild reloads). ``on_table(name)`` is called as each table is filled (progress)."""
    done = on_table or (lambda _name: None)
    d = SqlDialect.of(session.get_bind().dialect.name)
    tables, source = domain.tables, domain.source
    for name in _tables(domain).values():
        if name:
            session.execute(delete(Base.metadata.tables[name]))

    def run(sql: str) -> None:
        session.execute(text(sql), d.binds)

    dims = [dim.column for dim in domain.dimensions]
    tallies = [t.name for t in domain.tallies]
    sums = [f"SUM({t.sql(d)})" for t in domain.tallies]
    run(
        f"""INSERT INTO {tables.daily} ({_list("leaf_unit_id", "day", *dims, *tallies)})
        SELECT {_list(source.leaf, "d", *dims, *sums)}
        FROM (SELECT f.*, {d.day(source.date)} AS d FROM "{source.table}" f) AS src
        GROUP BY {_list(source.leaf, "d", *dims)}"""
    )
    done(tables.daily)
    if tables.flow:
        flow_dims = tables.flow_dimensions
        events = [e.name for e in domain.events]
        selects = []
        for event in domain.events:
            counts = [f"{int(e is event)} AS {e.name}" for e in domain.events]
            where = f" WHERE {event.when_sql(d)}" if event.when_sql else ""
            day = f"{d.day(event.on)} AS d"
            columns = _list(f"{source.leaf} AS leaf", day, *flow_dims, *counts)
            selects.append(f'SELECT {columns} FROM "{source.table}"{where}')
        run(
            f"""INSERT INTO {tables.flow} ({_list("leaf_unit_id", "day", *flow_dims, *events)})
            SELECT {_list("leaf", "d", *flow_dims, *(f"SUM({e})" for e in events))}
            FROM ({" UNION ALL ".join(selects)}) AS events
            GROUP BY {_list("leaf", "d", *flow_dims)}"""
        )
        done(tables.flow)
    for dist in domain.distributions:
        value = d.least(str(dist.most), dist.value_sql(d))
        run(
            f"""INSERT INTO {dist.table} (leaf_unit_id, day, days, n)
            SELECT leaf, d, b, COUNT(*) FROM (
                SELECT {source.leaf} AS leaf, {d.day(source.date)} AS d, {value} AS b
                FROM "{source.table}" WHERE {dist.when_sql(d)}
            ) AS measured
            GROUP BY leaf, d, b"""
        )
        done(dist.table)
    changelog.record_reset(session, domain.name, bump_version(session, domain.name))


def _list(*items: str) -> str:
    """SQL items separated by commas."""
    return ", ".join(items)
