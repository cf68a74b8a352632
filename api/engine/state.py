"""What one process knows of one database: the units, the grid network now, and a cube per
dated fact domain, kept current as the data moves.

Each request compares the dataset versions (one small query). When only facts moved, each
cube catches up: from the change log in milliseconds (a domain with rollup tables), or read
again (a small domain read from its source). When the log cannot bring a big cube up to
date (the rollups rebuilt, the log pruned past it, a boundaries change), or past
``extra_rows`` extra rows (``api.engine.tuning``), the cube is read again from the rollup
tables in a background thread while the previous state keeps answering; a small one at
once. A big cube is also written to disk (``snapshot``): a restarted process starts from it
in seconds and catches up from the log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import DatasetVersion
from api.db.session import session_factory
from api.db.versions import get_version
from api.engine import changelog, snapshot
from api.engine.cube import Cube, Extra, Histogram, load_cube
from api.engine.domain import Current, FactDomain
from api.engine.leaves import Leaves
from api.engine.network import Network, NetworkVersion, load_network
from api.engine.registry import MEASURES, dated_domains
from api.engine.tuning import engine_settings
from api.engine.units import UnitIndex, load_units

log = logging.getLogger("zhili")


@dataclass(frozen=True)
class State:
    """The units, the network now, and each dated domain's cube with its leaves placed."""

    units: UnitIndex
    network: Network
    cubes: dict[str, Cube]
    leaves: dict[str, Leaves]

    def with_cube(self, cube: Cube) -> State:
        """This state with ``cube`` in place of its domain's (its leaves kept while the
        cube's leaves are the same)."""
        name = cube.domain.name
        return replace(
            self,
            cubes={**self.cubes, name: cube},
            leaves={**self.leaves, name: self.leaves[name].for_ids(cube.leaf_ids)},
        )

    def coverage(self, domains: list[str]) -> tuple[dt.date, dt.date] | None:
        """The days the data of every domain of ``domains`` covers, first to last fact
        (None when one of them has no facts, or none is dated)."""
        spans = []
        for name in domains:
            cube = self.cubes.get(name)
            if cube is None:
                continue
            first, last = cube.first_fact_day(), cube.last_fact_day
            if first is None or last is None:
                return None
            spans.append((first, last))
        if not spans:
            return None
        return max(a for a, _ in spans), min(b for _, b in spans)

    def last_fact_day(self) -> dt.date:
        """The last day any fact was dated (today when there are none)."""
        days = [c.last_fact_day for c in self.cubes.values() if c.last_fact_day]
        return max(days) if days else dt.date.today()

    @property
    def extra_rows(self) -> int:
        return max((c.extra.rows for c in self.cubes.values()), default=0)


_states: dict[str, State] = {}
_loading: dict[str, threading.Thread] = {}
_lock = threading.Lock()
loads: Counter[str] = Counter()  # cubes read from rollup tables, per database


def _versions(session: Session) -> dict[str, int]:
    return {name: int(v) for name, v in session.execute(_VERSIONS)}


# of the table, not the entity: every request runs it, and the ORM's select cost 0.1-0.3 ms more
_VERSIONS = select(DatasetVersion.__table__.c.name, DatasetVersion.__table__.c.version)


def database_key(session: Session) -> str:
    """The session's database, as the states and snapshots are keyed."""
    return session.get_bind().url.render_as_string(hide_password=True)


@contextmanager
def _snapshot_session(session: Session) -> Iterator[Session]:
    """A session of its own on one snapshot of the database (PostgreSQL: a REPEATABLE READ
    transaction; SQLite: one read transaction), so that the tables and the versions read
    agree while writers commit."""
    engine = session.get_bind().engine
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")
        with Session(bind=conn) as s:
            yield s


def _big(cube: Cube) -> bool:
    return cube.domain.tables is not None and cube.rows > engine_settings().sync_rows


def _snapshot_key(key: str, domain: FactDomain) -> str:
    return f"{key}#{domain.name}"


def _load(session: Session, key: str, boundaries_version: int, domain: FactDomain) -> Cube:
    """``domain``'s cube read from its tables (and written to disk when big)."""
    with _snapshot_session(session) as s:
        cube = load_cube(s, domain)
    if domain.tables is not None:
        loads[key] += 1
    if _big(cube):
        _snapshot_cube(_snapshot_key(key, domain), boundaries_version, cube)
    return cube


def _caught_up(session: Session, cube: Cube) -> Cube | None:
    """``cube`` brought up to its domain's current version (itself when current): by the
    change log, or read again for a small domain; None when the log cannot bring it there."""
    target = get_version(session, cube.domain.name)
    if target == cube.version:
        return cube
    if cube.domain.tables is None:
        return load_cube(session, cube.domain)
    changes = changelog.read(session, cube.domain.name, cube.version, cube.token, target)
    return None if changes is None else cube.with_changes(changes)


def _network_measures() -> list[Current]:
    return [ref.measure for ref in MEASURES.values() if isinstance(ref.measure, Current)]


def _build(
    session: Session, key: str, versions: dict[str, int], old: State | None, reload: bool = False
) -> State:
    """A state for the current versions: the old one's parts where still valid, its cubes
    caught up where they can be (unless ``reload``), else read anew."""
    b = versions.get("boundaries", 0)
    units = old.units if old and old.units.version == b else load_units(session, b)
    network_version = NetworkVersion(b, versions.get("grid_network", 0))
    if old and old.network.version == network_version and old.units is units:
        network = old.network
    else:
        network = load_network(session, units, _network_measures(), network_version)
    cubes = {}
    for domain in dated_domains():
        previous = old.cubes.get(domain.name) if old else None
        cube = None
        if previous is not None and previous.domain is domain and old.units is units:
            cube = None if reload else _caught_up(session, previous)
        if cube is None and old is None and not reload and domain.tables is not None:
            cube = _cube_from_snapshot(_snapshot_key(key, domain), b, domain)
            if cube is not None:  # older than the data and past the log: refreshed as stale
                cube = _caught_up(session, cube) or cube
        if cube is None:
            cube = _load(session, key, b, domain)
            cube = _caught_up(session, cube) or cube
        cubes[domain.name] = cube
    leaves = {name: Leaves(units, cube.leaf_ids) for name, cube in cubes.items()}
    return State(units, network, cubes, leaves)


_CUBE_ARRAYS = (
    "leaf_ids", "period_cum", "stock_cum", "row_day", "row_leaf", "row_keys", "row_measures",
)  # fmt: skip
_HISTOGRAM = ("day", "leaf", "bin", "n")


def _cube_arrays(cube: Cube) -> dict[str, np.ndarray]:
    """Every array of a cube by a flat name (``hist.<distribution>.<part>``, ``extra.…``)."""
    arrays = {name: getattr(cube, name) for name in _CUBE_ARRAYS}
    arrays |= {f"extra.{name}": getattr(cube.extra, name) for name in Extra.ROWS}
    for prefix, hists in (("hist", cube.histograms), ("extra.hist", cube.extra.histograms)):
        for name, h in hists.items():
            arrays |= {f"{prefix}.{name}.{part}": getattr(h, part) for part in _HISTOGRAM}
    return arrays


def _snapshot_cube(key: str, boundaries_version: int, cube: Cube) -> None:
    meta = {
        "boundaries_version": boundaries_version,
        "version": cube.version,
        "token": cube.token,
        "rows": cube.rows,
        "day0": cube.day0.isoformat(),
        "ndays": cube.ndays,
        "last_fact_day": cube.last_fact_day.isoformat() if cube.last_fact_day else None,
        "measures": [m.name for m in cube.domain.period_measures],
    }
    try:
        snapshot.save(key, meta, _cube_arrays(cube))
    except OSError as exc:  # a full or read-only disk costs the next restart only
        log.warning("cube snapshot not written: %s", exc)


def _cube_from_snapshot(key: str, boundaries_version: int, domain: FactDomain) -> Cube | None:
    found = snapshot.load(key, boundaries_version)
    if found is None:
        return None
    meta, arrays = found
    names = [d.name for d in domain.distributions]
    expected = {*_CUBE_ARRAYS, *(f"extra.{n}" for n in Extra.ROWS)} | {
        f"{prefix}.{name}.{part}"
        for prefix in ("hist", "extra.hist")
        for name in names
        for part in _HISTOGRAM
    }
    if set(arrays) != expected or meta.get("measures") != [m.name for m in domain.period_measures]:
        return None  # written by another version of this code or declaration

    def histograms(prefix: str) -> dict[str, Histogram]:
        return {
            n: Histogram(*(arrays[f"{prefix}.{n}.{part}"] for part in _HISTOGRAM)) for n in names
        }

    last = meta["last_fact_day"]
    return Cube(
        domain=domain,
        version=meta["version"],
        token=meta.get("token"),
        rows=meta["rows"],
        day0=dt.date.fromisoformat(meta["day0"]),
        ndays=meta["ndays"],
        last_fact_day=dt.date.fromisoformat(last) if last else None,
        histograms=histograms("hist"),
        extra=Extra(
            **{name: arrays[f"extra.{name}"] for name in Extra.ROWS},
            histograms=histograms("extra.hist"),
        ),
        **{name: arrays[name] for name in _CUBE_ARRAYS},
    )


def _stale(state: State, versions: dict[str, int]) -> bool:
    return _layout_stale(state, versions) or any(
        cube.version != versions.get(name, 0) for name, cube in state.cubes.items()
    )


def _layout_stale(state: State, versions: dict[str, int]) -> bool:
    """True when more than facts moved: boundaries, the network, or the domains served."""
    domains = dated_domains()
    return (
        state.units.version != versions.get("boundaries", 0)
        or state.network.version.grid_network != versions.get("grid_network", 0)
        or [d.name for d in domains] != list(state.cubes)
        or any(state.cubes[d.name].domain is not d for d in domains)
    )


def engine_state(session: Session) -> State:
    """The current state for the session's database: when only facts moved, the cubes
    catch up (milliseconds); otherwise it is rebuilt."""
    key = database_key(session)
    versions = _versions(session)
    state = _states.get(key)
    if state is not None and not _stale(state, versions):
        return state
    if state is not None and not _layout_stale(state, versions):
        caught = _catch_up(session, key)
        if caught is not None:
            return caught
    if state is not None and any(_big(c) for c in state.cubes.values()):
        _refresh_in_background(session, key)
        return state
    with _lock:
        state = _states.get(key)
        if state is None or _stale(state, versions):
            state = _states[key] = _build(session, key, versions, state)
    if _stale(state, _versions(session)):  # served from an older snapshot: catch up behind it
        _refresh_in_background(session, key)
    elif state.extra_rows > engine_settings().extra_rows:
        _refresh_in_background(session, key, reload=True)
    return state


def _catch_up(session: Session, key: str) -> State | None:
    """The state with its cubes caught up (and installed), or None when one cannot.
    Past ``extra_rows`` extra rows, a reload starts behind it."""
    with _lock:
        state = _states.get(key)
        if state is None:
            return None
        for cube in list(state.cubes.values()):
            caught = _caught_up(session, cube)
            if caught is None:
                return None
            if caught is not cube:
                state = state.with_cube(caught)
        _states[key] = state
    if state.extra_rows > engine_settings().extra_rows:
        _refresh_in_background(session, key, reload=True)
    return state


def current_state(session: Session) -> State:
    """The state, up to date with the database: waits for a background refresh (what a
    benchmark or a one-off command wants, never a request)."""
    while True:
        state = engine_state(session)
        refresh = _loading.get(database_key(session))
        if refresh is None:
            if not _stale(state, _versions(session)):
                return state
            continue
        refresh.join()


def _refresh_in_background(session: Session, key: str, reload: bool = False) -> None:
    """Build the state in a thread while the current one answers; ``reload``: read the
    cubes from their tables even if the change log could bring them up to date."""
    url = session.get_bind().url.render_as_string(hide_password=False)

    def work() -> None:
        try:
            with session_factory(url)() as s:
                fresh = _build(s, key, _versions(s), _states.get(key), reload=reload)
                with _lock:  # what landed while it was built, then the newer of the two
                    for cube in list(fresh.cubes.values()):
                        caught = _caught_up(s, cube)
                        if caught is not None and caught is not cube:
                            fresh = fresh.with_cube(caught)
                    versions = _versions(s)
                    current = _states.get(key)
                    if current is None or _stale(current, versions) or not _stale(fresh, versions):
                        _states[key] = fresh
        finally:
            _loading.pop(key, None)

    with _lock:
        if key in _loading:
            return
        thread = _loading[key] = threading.Thread(target=work, daemon=True, name="cube-refresh")
    thread.start()


def forget_states() -> None:
    """Drop every cached state (tests, or after a bulk load in the same process)."""
    _states.clear()
