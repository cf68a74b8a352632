"""The in-memory cube, one per process and database, built from the rollup tables.

For each leaf unit version (any version, so a retired village keeps its own rows and its own
ancestry) and each period measure, cumulative sums over days: any date range is
``cum[end + 1] − cum[start]``, then one ``np.bincount`` over the leaves' ancestor index at
the level shown. Cost grows with the number of leaves and units shown, never with cases.
Stocks (open backlog, overdue) are cumulative event sums read at the period's end.
Percentiles of days to close read the day-sorted histogram rows of the period.

The cube is rebuilt when dataset_version 'cases' or 'boundaries' changes (checked per
request with one small query). A big cube (many rollup rows) is rebuilt in a background
thread while the previous one keeps answering; a small one is rebuilt at once. A big cube is
also written to disk (``snapshot``): a restarted process starts from it in seconds.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit, DatasetVersion
from api.domain import CATEGORIES, CHANNELS
from api.metrics import snapshot
from api.metrics.registry import NETWORK_MEASURES, PERIOD_MEASURES, STOCK_MEASURES
from api.metrics.rollup import MAX_CLOSE_DAYS

log = logging.getLogger("zhili")

EPOCH = dt.date(2000, 1, 1)
# A cube over fewer rollup rows is rebuilt inline (read-your-writes); a bigger one is
# refreshed in the background while readers keep the previous state. 188k rows (the small
# preset) take ~2 s to rebuild: inline, 8 intake clients writing made every read wait
# behind the lock (bench_load: read p50 12.8 s).
SYNC_ROWS = 50_000
NBINS = MAX_CLOSE_DAYS + 1


def _day_number(dialect: str, col: str) -> str:
    if dialect == "postgresql":
        return f"({col} - DATE '2000-01-01')"
    return f"CAST(julianday({col}) - julianday('2000-01-01') AS INTEGER)"


def _fetch(session: Session, sql: str, ncols: int) -> np.ndarray:
    """Rows of an all-integer query as an int64 array (PostgreSQL: COPY, fast)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        import pandas as pd

        raw = session.connection().connection.dbapi_connection
        buf = io.BytesIO()
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
        buf.seek(0)
        if buf.getbuffer().nbytes == 0:
            return np.zeros((0, ncols), dtype=np.int64)
        frame = pd.read_csv(buf, header=None, dtype=np.int64)
        return frame.to_numpy()
    rows = session.execute(text(sql)).all()
    if not rows:
        return np.zeros((0, ncols), dtype=np.int64)
    return np.asarray(rows, dtype=np.int64)


# ---------------------------------------------------------------- units


@dataclass
class UnitIndex:
    """Every unit code with its latest version, levels, and each unit version's ancestors."""

    version: int
    codes: list[str]
    index: dict[str, int]
    name: list[str]
    level: list[str]
    parent: list[str | None]
    valid_from: list[dt.date]  # earliest version
    valid_to: list[dt.date | None]  # latest version (None: current)
    current: np.ndarray  # bool per code
    levels: list[str]  # root first
    depth: dict[str, int]
    unit_code_idx: dict[int, int]  # unit version id → code index
    ancestors: dict[int, dict[str, int]]  # unit version id → level → code index
    children: dict[str, list[int]] = field(default_factory=dict)  # code → child code idx
    current_children: set[str] = field(default_factory=set)  # codes with a current child
    memo: dict = field(default_factory=dict)  # derived lists, valid for this version

    def is_leaf(self, code: str) -> bool:
        """True when the unit has no current child (it is its own leaf)."""
        return code not in self.current_children


def load_units(session: Session, version: int) -> UnitIndex:
    """Read ``admin_unit``, ``admin_level`` and ``unit_ancestry`` into a UnitIndex."""
    levels = session.execute(select(AdminLevel.code, AdminLevel.depth).order_by("depth")).all()
    rows = session.execute(
        select(
            AdminUnit.id,
            AdminUnit.code,
            AdminUnit.name,
            AdminUnit.level,
            AdminUnit.parent_code,
            AdminUnit.valid_from,
            AdminUnit.valid_to,
        ).order_by(AdminUnit.valid_from)
    ).all()
    codes: list[str] = []
    index: dict[str, int] = {}
    name, level, parent, vfrom, vto = [], [], [], [], []
    unit_code_idx: dict[int, int] = {}
    for r in rows:
        i = index.get(r.code)
        if i is None:
            i = index[r.code] = len(codes)
            codes.append(r.code)
            name.append(r.name)
            level.append(r.level)
            parent.append(r.parent_code)
            vfrom.append(r.valid_from)
            vto.append(r.valid_to)
        else:  # a later version: its attributes win, the earliest valid_from stays
            name[i], level[i], parent[i], vto[i] = r.name, r.level, r.parent_code, r.valid_to
        unit_code_idx[r.id] = i
    current = np.array([v is None for v in vto], dtype=bool)
    ancestors: dict[int, dict[str, int]] = {}
    for unit_id, code, lvl in session.execute(
        text("SELECT unit_id, ancestor_code, ancestor_level FROM unit_ancestry")
    ):
        j = index.get(code)
        if j is not None:
            ancestors.setdefault(unit_id, {})[lvl] = j
    children: dict[str, list[int]] = {}
    current_children: set[str] = set()
    seen: set[tuple[str, int]] = set()
    for r in rows:
        if r.parent_code is None:
            continue
        i = index[r.code]
        if (r.parent_code, i) not in seen:
            seen.add((r.parent_code, i))
            children.setdefault(r.parent_code, []).append(i)
        if r.valid_to is None:
            current_children.add(r.parent_code)
    for kids in children.values():
        kids.sort(key=lambda i: codes[i])
    return UnitIndex(
        version=version,
        codes=codes,
        index=index,
        name=name,
        level=level,
        parent=parent,
        valid_from=vfrom,
        valid_to=vto,
        current=current,
        levels=[lv.code for lv in levels],
        depth={lv.code: lv.depth for lv in levels},
        unit_code_idx=unit_code_idx,
        ancestors=ancestors,
        children=children,
        current_children=current_children,
    )


# ---------------------------------------------------------------- grid network (now)


def _areas_km2(geoms: list) -> np.ndarray:
    """Areas in km² on a Lambert azimuthal equal-area projection centred on the data."""
    arr = np.array(geoms, dtype=object)
    out = np.zeros(len(arr))
    has = np.array([g is not None and not g.is_empty for g in arr], dtype=bool)
    if not has.any():
        return out
    lon0, lat0 = shapely.centroid(shapely.union_all(shapely.envelope(arr[has]))).coords[0]
    tr = Transformer.from_crs(
        "EPSG:4326", f"+proj=laea +lat_0={lat0} +lon_0={lon0} +units=m", always_xy=True
    )
    projected = shapely.transform(arr[has], lambda xy: np.column_stack(tr.transform(*xy.T)))
    out[has] = shapely.area(projected) / 1e6
    return out


def load_network(session: Session, units: UnitIndex) -> np.ndarray:
    """Grid-network measures per code (NETWORK_MEASURES × codes), summed over the current
    units below each code (a facility or worker counts for its unit and every ancestor)."""
    n = len(units.codes)
    out = np.zeros((len(NETWORK_MEASURES), n))
    row = {m: i for i, m in enumerate(NETWORK_MEASURES)}
    deepest = units.levels[-1] if units.levels else "grid"
    current = session.execute(
        select(
            AdminUnit.id,
            AdminUnit.code,
            AdminUnit.level,
            AdminUnit.population,
            AdminUnit.households,
            AdminUnit.area_km2,
            AdminUnit.geom,
        ).where(AdminUnit.valid_to.is_(None))
    ).all()
    current_id = {r.code: r.id for r in current}
    leaves = [r for r in current if units.is_leaf(r.code)]
    areas = _areas_km2([r.geom if r.area_km2 is None else None for r in leaves])
    for r, computed in zip(leaves, areas, strict=True):
        area = r.area_km2 if r.area_km2 is not None else computed
        values = {
            "population": r.population or 0,
            "households": r.households or 0,
            "area_km2": area,
            "grid_area_km2": area if r.level == deepest else 0.0,
        }
        for j in units.ancestors.get(r.id, {}).values():
            for m, v in values.items():
                out[row[m], j] += v

    def add_below(unit_code: str, measures: dict[str, float]) -> None:
        uid = current_id.get(unit_code)
        if uid is None:
            return
        for j in units.ancestors.get(uid, {}).values():
            for m, v in measures.items():
                out[row[m], j] += v

    workers: dict[str, dict[str, int]] = {}
    for grid_code, role, count in session.execute(
        text(
            "SELECT grid_code, role, COUNT(*) FROM grid_worker WHERE active "
            "GROUP BY grid_code, role"
        )
    ):
        workers.setdefault(grid_code, {})[role] = count
    for r in current:
        if r.level == deepest:
            w = workers.get(r.code, {})
            add_below(
                r.code,
                {
                    "grids": 1,
                    "full_time": w.get("full_time", 0),
                    "leaders": w.get("leader", 0),
                    "part_time": w.get("part_time", 0),
                    "grids_without_full_time": int(not w.get("full_time")),
                },
            )
    for unit_code, kind, status, video, count in session.execute(
        text(
            "SELECT unit_code, kind, status, video_linked, COUNT(*) FROM facility "
            "GROUP BY unit_code, kind, status, video_linked"
        )
    ):
        built = status == "built"
        m = {"facilities_built": count * built, "facilities_video": count * (built and video)}
        if kind == "linkage_station":
            m |= {
                "stations": count,
                "stations_built": count * built,
                "stations_under_construction": count * (status == "under_construction"),
            }
        else:
            m |= {"centers": count, "centers_built": count * built}
        add_below(unit_code, m)
    return out


# ---------------------------------------------------------------- cases


@dataclass
class CaseCube:
    """Cumulative period and stock measures per leaf unit version and day."""

    version: int
    rows: int
    day0: dt.date
    ndays: int
    leaf_ids: np.ndarray  # int64, sorted
    period_cum: np.ndarray  # (ndays + 1, len(PERIOD_MEASURES), leaves) int32 (or int64)
    stock_cum: np.ndarray  # (ndays + 1, len(STOCK_MEASURES), leaves)
    hist_day: np.ndarray  # sorted day index of each histogram row
    hist_leaf: np.ndarray  # leaf position
    hist_bin: np.ndarray
    hist_n: np.ndarray
    last_case_day: dt.date | None
    # the daily rollup rows themselves, sorted by day, for breakdowns by category/channel
    row_day: np.ndarray  # day index (int32)
    row_leaf: np.ndarray  # leaf position (int32)
    row_category: np.ndarray  # index in CATEGORIES (int8; −1 outside the vocabulary)
    row_channel: np.ndarray  # index in CHANNELS (int8; −1 outside the vocabulary)
    row_measures: np.ndarray  # (rows, len(PERIOD_MEASURES)), int16 or int32

    def day_index(self, day: dt.date) -> int:
        return (day - self.day0).days

    def period_sums(self, start: dt.date, end: dt.date, measures: list[int]) -> np.ndarray:
        """(measures, leaves) sums over the inclusive range of days."""
        a = min(max(self.day_index(start), 0), self.ndays)
        b = min(max(self.day_index(end) + 1, 0), self.ndays)
        if b <= a:
            return np.zeros((len(measures), len(self.leaf_ids)), dtype=np.int64)
        return self.period_cum[b, measures].astype(np.int64) - self.period_cum[a, measures]

    def stock_at(self, day: dt.date, measures: list[int]) -> np.ndarray:
        """(measures, leaves) stock at the end of ``day``."""
        b = min(max(self.day_index(day) + 1, 0), self.ndays)
        return self.stock_cum[b, measures].astype(np.int64)

    def key_sums(
        self, start: dt.date, end: dt.date, leaves: np.ndarray, by: str, measures: list[int]
    ) -> np.ndarray:
        """(keys + 1, measures) sums over the days of the range and the leaves where
        ``leaves`` (bool per leaf position) is true, by category or channel index (the last
        row: codes outside the vocabulary)."""
        keys = self.row_category if by == "category" else self.row_channel
        nkeys = len(CATEGORIES) if by == "category" else len(CHANNELS)
        a = np.searchsorted(self.row_day, self.day_index(start), side="left")
        b = np.searchsorted(self.row_day, self.day_index(end), side="right")
        inside = np.flatnonzero(leaves[self.row_leaf[a:b]]) + a
        slot = keys[inside].astype(np.int64)
        slot[slot < 0] = nkeys
        out = np.zeros((nkeys + 1, len(measures)))
        for j, m in enumerate(measures):
            weights = self.row_measures[inside, m]
            out[:, j] = np.bincount(slot, weights=weights, minlength=nkeys + 1)
        return out

    def histogram_rows(self, start: dt.date, end: dt.date) -> slice:
        a = np.searchsorted(self.hist_day, self.day_index(start), side="left")
        b = np.searchsorted(self.hist_day, self.day_index(end), side="right")
        return slice(int(a), int(b))


def _vocabulary_index(column: str, codes: list[str]) -> str:
    """SQL: the position of ``column``'s value in ``codes`` (−1 when not there)."""
    whens = " ".join(f"WHEN '{code}' THEN {i}" for i, code in enumerate(codes))
    return f"CASE {column} {whens} ELSE -1 END"


def _period_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(category index, PERIOD_MEASURES per row) of raw daily rollup rows
    (leaf, day, category, channel, cases, closed, closed_on_time, mediated,
    mediation_success, visited, evaluated, satisfied, satisfaction_sum)."""
    category = rows[:, 2]
    serious = np.array([c.serious for c in CATEGORIES] + [False])[category]
    dispute = np.array([c.group == "dispute" for c in CATEGORIES] + [False])[category]
    cases, closed = rows[:, 4], rows[:, 5]
    measures = np.column_stack(
        [cases, cases * serious, closed, rows[:, 6], closed * dispute, *rows[:, 7:13].T]
    )
    assert measures.shape[1] == len(PERIOD_MEASURES)
    return category, measures


def load_cases(session: Session, version: int) -> CaseCube:
    """Read the rollup tables into a CaseCube: the daily rollup rows as they are (kept for
    breakdowns), summed per leaf and day into cumulative arrays."""
    dialect = session.get_bind().dialect.name
    day = _day_number(dialect, "day")
    category = _vocabulary_index("category", [c.code for c in CATEGORIES])
    channel = _vocabulary_index("channel", [c.code for c in CHANNELS])
    raw = _fetch(
        session,
        f"""SELECT leaf_unit_id, {day}, {category}, {channel}, cases, closed, closed_on_time,
            mediated, mediation_success, visited, evaluated, satisfied, satisfaction_sum
        FROM case_rollup_daily""",
        13,
    )
    flow = _fetch(
        session,
        f"""SELECT leaf_unit_id, {day}, opened - closed, became_overdue - overdue_closed
        FROM case_flow_daily""",  # summed per leaf and day below (faster than GROUP BY)
        2 + len(STOCK_MEASURES),
    )
    hist = _fetch(
        session,
        f"SELECT leaf_unit_id, {day}, days, n FROM case_close_histogram",
        4,
    )
    hist = hist[np.argsort(hist[:, 1], kind="stable")]
    raw = raw[np.argsort(raw[:, 1], kind="stable")]
    row_category, row_measures = _period_rows(raw)
    today = (dt.date.today() - EPOCH).days
    last_case = int(raw[-1, 1]) if len(raw) else None
    first = min([int(a[:, 1].min()) for a in (raw, flow) if len(a)] or [today])
    last = max(today, last_case if last_case is not None else today)
    ndays = last - first + 1
    leaf_ids = np.unique(np.concatenate([raw[:, 0], flow[:, 0], hist[:, 0]]))

    def cumulative(leaf: np.ndarray, days: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Dense (ndays + 1, measures, leaves) cumulative sums of per-row values."""
        keep = (days >= first) & (days <= last)
        leaf, days, values = leaf[keep], days[keep], values[keep]
        pos = np.searchsorted(leaf_ids, leaf)
        flat = (days - first + 1) * len(leaf_ids) + pos
        size = (ndays + 1) * len(leaf_ids)
        bound = np.abs(values).sum(axis=0).max() if len(values) else 0
        dtype = np.int32 if bound < 2**31 else np.int64
        dense = np.zeros((ndays + 1, values.shape[1], len(leaf_ids)), dtype=dtype)
        for m in range(values.shape[1]):
            sums = np.bincount(flat, weights=values[:, m], minlength=size)
            dense[:, m, :] = sums.reshape(ndays + 1, len(leaf_ids))
        np.cumsum(dense, axis=0, out=dense)
        return dense

    small = row_measures.max(initial=0) < 2**15 and row_measures.min(initial=0) > -(2**15)
    return CaseCube(
        version=version,
        rows=len(raw) + len(flow) + len(hist),
        day0=EPOCH + dt.timedelta(days=first),
        ndays=ndays,
        leaf_ids=leaf_ids,
        period_cum=cumulative(raw[:, 0], raw[:, 1], row_measures),
        stock_cum=cumulative(flow[:, 0], flow[:, 1], flow[:, 2:]),
        hist_day=(hist[:, 1] - first).astype(np.int32),
        hist_leaf=np.searchsorted(leaf_ids, hist[:, 0]).astype(np.int32),
        hist_bin=hist[:, 2].astype(np.int32),
        hist_n=hist[:, 3].astype(np.int64),
        last_case_day=EPOCH + dt.timedelta(days=last_case) if last_case is not None else None,
        row_day=(raw[:, 1] - first).astype(np.int32),
        row_leaf=np.searchsorted(leaf_ids, raw[:, 0]).astype(np.int32),
        row_category=row_category.astype(np.int8),
        row_channel=raw[:, 3].astype(np.int8),
        row_measures=row_measures.astype(np.int16 if small else np.int32),
    )


# ---------------------------------------------------------------- the engine state


@dataclass
class State:
    """What one process knows of one database."""

    units: UnitIndex
    network: np.ndarray
    network_version: tuple[int, int]
    cube: CaseCube
    leaf_code: np.ndarray  # code index of each leaf version (−1 unknown)
    leaf_anc: dict[str, np.ndarray] = field(default_factory=dict)  # level → code idx per leaf

    def ancestor_at(self, level: str) -> np.ndarray:
        """Code index of each cube leaf's ancestor at ``level`` (−1 where none)."""
        found = self.leaf_anc.get(level)
        if found is None:
            anc = self.units.ancestors
            found = np.array(
                [anc.get(int(uid), {}).get(level, -1) for uid in self.cube.leaf_ids],
                dtype=np.int64,
            )
            self.leaf_anc[level] = found
        return found


_states: dict[str, State] = {}
_loading: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def _versions(session: Session) -> dict[str, int]:
    return {
        name: int(v)
        for name, v in session.execute(select(DatasetVersion.name, DatasetVersion.version))
    }


def _key(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=True)


def _build(session: Session, key: str, versions: dict[str, int], old: State | None) -> State:
    b, c, g = (
        versions.get("boundaries", 0),
        versions.get("cases", 0),
        versions.get("grid_network", 0),
    )
    units = old.units if old and old.units.version == b else load_units(session, b)
    if old and old.network_version == (b, g) and old.units is units:
        network = old.network
    else:
        network = load_network(session, units)
    cube = old.cube if old and old.cube.version == c and old.units is units else None
    if cube is None and old is None:
        cube = _cube_from_snapshot(key, b)  # may be older than ``c``: refreshed as stale
    if cube is None:
        cube = load_cases(session, c)
        if cube.rows > SYNC_ROWS:
            _snapshot_cube(key, b, cube)
    leaf_code = np.array(
        [units.unit_code_idx.get(int(i), -1) for i in cube.leaf_ids], dtype=np.int64
    )
    return State(units, network, (b, g), cube, leaf_code)


_CUBE_ARRAYS = (
    "leaf_ids", "period_cum", "stock_cum", "hist_day", "hist_leaf", "hist_bin", "hist_n",
    "row_day", "row_leaf", "row_category", "row_channel", "row_measures",
)  # fmt: skip


def _snapshot_cube(key: str, boundaries_version: int, cube: CaseCube) -> None:
    meta = {
        "boundaries_version": boundaries_version,
        "version": cube.version,
        "rows": cube.rows,
        "day0": cube.day0.isoformat(),
        "ndays": cube.ndays,
        "last_case_day": cube.last_case_day.isoformat() if cube.last_case_day else None,
    }
    try:
        snapshot.save(key, meta, {name: getattr(cube, name) for name in _CUBE_ARRAYS})
    except OSError as exc:  # a full or read-only disk costs the next restart only
        log.warning("cube snapshot not written: %s", exc)


def _cube_from_snapshot(key: str, boundaries_version: int) -> CaseCube | None:
    found = snapshot.load(key, boundaries_version)
    if found is None:
        return None
    meta, arrays = found
    if set(arrays) != set(_CUBE_ARRAYS):
        return None  # written by another version of this code
    last = meta["last_case_day"]
    return CaseCube(
        version=meta["version"],
        rows=meta["rows"],
        day0=dt.date.fromisoformat(meta["day0"]),
        ndays=meta["ndays"],
        last_case_day=dt.date.fromisoformat(last) if last else None,
        **arrays,
    )


def _stale(state: State, versions: dict[str, int]) -> bool:
    return (
        state.units.version != versions.get("boundaries", 0)
        or state.cube.version != versions.get("cases", 0)
        or state.network_version[1] != versions.get("grid_network", 0)
    )


def engine_state(session: Session) -> State:
    """The current state for the session's database (rebuilt when a dataset changed)."""
    key = _key(session)
    versions = _versions(session)
    state = _states.get(key)
    if state is not None and not _stale(state, versions):
        return state
    if state is not None and state.cube.rows > SYNC_ROWS:
        _refresh_in_background(session, key)
        return state
    with _lock:
        state = _states.get(key)
        if state is None or _stale(state, versions):
            state = _states[key] = _build(session, key, versions, state)
    if _stale(state, versions):  # served from an older snapshot: catch up behind it
        _refresh_in_background(session, key)
    return state


def current_state(session: Session) -> State:
    """The state, up to date with the database: waits for a background refresh (what a
    benchmark or a one-off command wants, never a request)."""
    while True:
        state = engine_state(session)
        refresh = _loading.get(_key(session))
        if refresh is None:
            if not _stale(state, _versions(session)):
                return state
            continue
        refresh.join()


def _refresh_in_background(session: Session, key: str) -> None:
    from api.db.session import session_factory

    url = session.get_bind().url.render_as_string(hide_password=False)

    def work() -> None:
        try:
            with session_factory(url)() as s:
                versions = _versions(s)
                _states[key] = _build(s, key, versions, _states.get(key))
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
