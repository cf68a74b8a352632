"""The in-memory cube, one per process and database, built from the rollup tables.

For each leaf unit version (any version, so a retired village keeps its own rows and its own
ancestry) and each period measure, cumulative sums over days: any date range is
``cum[end + 1] − cum[start]``, then one ``np.bincount`` over the leaves' ancestor index at
the level shown. Cost grows with the number of leaves and units shown, never with cases.
Stocks (open backlog, overdue) are cumulative event sums read at the period's end.
Percentiles of days to close read the day-sorted histogram rows of the period.

Kept current by every ingest: each request compares dataset_version 'cases' (one small
query); when it moved, the cube catches up from the change log (``api.engine.changelog``:
each ingest transaction's rollup deltas), in milliseconds. The changes become extra rows
beside the dense arrays (``Extra``), summed in at query time, so that a new cube shares the
old one's arrays and never writes them: readers of the old one are undisturbed, and the
new state is installed in one assignment. The answers are exactly those of a rebuild.
Past EXTRA_ROWS extra rows, or when the log cannot bring the cube up to date (the rollups
rebuilt, the log pruned past it, a boundaries change), the cube is read again from the
rollup tables: a big one (many rollup rows; ~45 s at metro scale) in a background thread
while the previous one keeps answering, a small one at once. A big cube is also written to
disk (``snapshot``): a restarted process starts from it in seconds and catches up from the
log.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit, DatasetVersion
from api.db.versions import get_version
from api.domain import CATEGORIES, CHANNELS
from api.engine import changelog, snapshot
from api.engine.registry import NETWORK_MEASURES, PERIOD_MEASURES, STOCK_MEASURES
from api.engine.rollup import FLOW_MEASURES, MAX_CLOSE_DAYS, ROLLUP_MEASURES

log = logging.getLogger("zhili")

EPOCH = dt.date(2000, 1, 1)
# A cube over fewer rollup rows is rebuilt inline (read-your-writes); a bigger one is
# refreshed in the background while readers keep the previous state. 188k rows (the small
# preset) take ~2 s to rebuild: inline, 8 intake clients writing made every read wait
# behind the lock (bench_load: read p50 12.8 s).
SYNC_ROWS = 50_000
# Past this many extra rows (changes applied since the arrays were read), the cube is read
# again in the background: each query scans the extra rows of its range.
EXTRA_ROWS = 100_000
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
    # plain tuples: numpy probes each Row for array attributes, a failed key lookup each
    return np.asarray([tuple(r) for r in rows], dtype=np.int64)


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


def _no_rows(width: int | None = None) -> np.ndarray:
    return np.zeros(0 if width is None else (0, width), dtype=np.int64)


@dataclass(frozen=True)
class Extra:
    """Rollup rows kept beside a cube's dense arrays and summed in at query time: the
    changes applied since the arrays were built (on any day, even outside the arrays' days;
    leaves first seen since then at positions past the arrays'), and the flow events after
    the arrays' last day (deadlines still ahead when they were built). Never written to:
    applying changes makes a new one."""

    row_day: np.ndarray  # day index (from the cube's day0; may be < 0 or ≥ ndays)
    row_leaf: np.ndarray  # leaf position
    row_category: np.ndarray  # index in CATEGORIES (−1 outside the vocabulary)
    row_channel: np.ndarray  # index in CHANNELS (−1 outside the vocabulary)
    row_measures: np.ndarray  # (rows, len(PERIOD_MEASURES))
    flow_day: np.ndarray
    flow_leaf: np.ndarray
    flow_stock: np.ndarray  # (rows, len(STOCK_MEASURES))
    hist_day: np.ndarray
    hist_leaf: np.ndarray
    hist_bin: np.ndarray
    hist_n: np.ndarray

    @classmethod
    def empty(cls) -> Extra:
        widths = {"row_measures": len(PERIOD_MEASURES), "flow_stock": len(STOCK_MEASURES)}
        return cls(**{f.name: _no_rows(widths.get(f.name)) for f in fields(cls)})

    @property
    def rows(self) -> int:
        return len(self.row_day) + len(self.flow_day) + len(self.hist_day)

    def plus(self, other: Extra) -> Extra:
        return Extra(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


# the integer measures of case_rollup_daily the cube reads (close_days_sum is not read)
RAW_MEASURES = tuple(m for m in ROLLUP_MEASURES if m != "close_days_sum")
_CHANGE_COLUMNS = {
    "rollup": ("leaf_unit_id", "day", "category", "channel", *RAW_MEASURES),
    "flow": ("leaf_unit_id", "day", *FLOW_MEASURES),
    "hist": ("leaf_unit_id", "day", "days", "n"),
}
CATEGORY_INDEX = {c.code: i for i, c in enumerate(CATEGORIES)}
CHANNEL_INDEX = {c.code: i for i, c in enumerate(CHANNELS)}
UNIX_EPOCH = dt.date(1970, 1, 1)


def _column(changes: list[changelog.Change], frame: str, column: str) -> np.ndarray:
    """One column of a frame over ``changes``, in order (int64)."""
    return np.concatenate([c.frames[frame][column] for c in changes]).astype(np.int64)


def _rows_between(days: np.ndarray, first: int, last: int) -> tuple[int, int]:
    """The rows ``a:b`` of ``days`` (sorted day indexes) from day ``first`` to ``last``,
    inclusive. The bounds are given in the array's own type: with a Python int, numpy
    converts the whole array first (5 ms for 4.7 million rows, for a binary search)."""
    as_day = days.dtype.type
    return (
        int(np.searchsorted(days, as_day(first), side="left")),
        int(np.searchsorted(days, as_day(last), side="right")),
    )


def _today() -> dt.date:
    return dt.date.today()


@dataclass
class CaseCube:
    """Cumulative period and stock measures per leaf unit version and day, plus the changes
    applied since (``extra``; see ``with_changes``)."""

    version: int
    rows: int  # rollup rows the arrays were built from
    day0: dt.date
    ndays: int
    leaf_ids: np.ndarray  # int64: the arrays' leaves, sorted, then leaves first seen since
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
    token: int | None = None  # the change log's token of ``version`` (None: no catching up)
    extra: Extra = field(default_factory=Extra.empty)

    def day_index(self, day: dt.date) -> int:
        return (day - self.day0).days

    def _clamp(self, index: int) -> int:
        return min(max(index, 0), self.ndays)

    def _with_extra(
        self,
        dense: np.ndarray,
        inside: np.ndarray,
        leaf: np.ndarray,
        values: np.ndarray,
        measures: list[int],
    ) -> np.ndarray:
        """(measures, leaves) int64: ``dense`` (measures, the arrays' leaves) plus the
        ``measures`` of the extra rows where ``inside``, summed per leaf position."""
        n = len(self.leaf_ids)
        if dense.shape[1] == n and not inside.any():
            return dense.astype(np.int64, copy=False)
        out = np.zeros((len(measures), n), dtype=np.int64)
        out[:, : dense.shape[1]] = dense
        rows = slice(None) if inside.all() else np.flatnonzero(inside)
        leaf = leaf[rows]
        for j, m in enumerate(measures):
            out[j] += np.bincount(leaf, weights=values[rows, m], minlength=n).astype(np.int64)
        return out

    def period_sums(self, start: dt.date, end: dt.date, measures: list[int]) -> np.ndarray:
        """(measures, leaves) sums over the inclusive range of days."""
        first, stop = self.day_index(start), self.day_index(end) + 1
        a, b = self._clamp(first), self._clamp(stop)
        if b > a:
            dense = self.period_cum[b, measures].astype(np.int64) - self.period_cum[a, measures]
        else:
            dense = np.zeros((len(measures), self.period_cum.shape[2]), dtype=np.int64)
        e = self.extra
        inside = (e.row_day >= first) & (e.row_day < stop)
        return self._with_extra(dense, inside, e.row_leaf, e.row_measures, measures)

    def last_day(self) -> int:
        """Day index of the last day with data: today or the last case's day, whichever is
        later (a stock asked for a later day is the stock on that day, as a rebuild says)."""
        last = self.day_index(_today())
        if self.last_case_day is not None:
            last = max(last, self.day_index(self.last_case_day))
        return last

    def stock_at(self, day: dt.date, measures: list[int]) -> np.ndarray:
        """(measures, leaves) stock at the end of ``day``."""
        d = min(self.day_index(day), self.last_day())
        dense = self.stock_cum[self._clamp(d + 1), measures]
        e = self.extra
        inside = e.flow_day <= d
        return self._with_extra(dense, inside, e.flow_leaf, e.flow_stock, measures)

    def key_sums(
        self, start: dt.date, end: dt.date, leaves: np.ndarray, by: str, measures: list[int]
    ) -> np.ndarray:
        """(keys + 1, measures) sums over the days of the range and the leaves where
        ``leaves`` (bool per leaf position) is true, by category or channel index (the last
        row: codes outside the vocabulary)."""
        e = self.extra
        if by == "category":
            keys, extra_keys, nkeys = self.row_category, e.row_category, len(CATEGORIES)
        else:
            keys, extra_keys, nkeys = self.row_channel, e.row_channel, len(CHANNELS)
        first, last = self.day_index(start), self.day_index(end)
        a, b = _rows_between(self.row_day, first, last)
        inside = np.flatnonzero(leaves[self.row_leaf[a:b]]) + a
        extra = np.flatnonzero((e.row_day >= first) & (e.row_day <= last))
        extra = extra[leaves[e.row_leaf[extra]]]
        out = np.zeros((nkeys + 1, len(measures)))
        for rows, key, values in (
            (inside, keys, self.row_measures),
            (extra, extra_keys, e.row_measures),
        ):
            slot = key[rows].astype(np.int64)
            slot[slot < 0] = nkeys
            for j, m in enumerate(measures):
                out[:, j] += np.bincount(slot, weights=values[rows, m], minlength=nkeys + 1)
        return out

    def histogram(self, start: dt.date, end: dt.date) -> list[tuple[np.ndarray, ...]]:
        """The histogram rows of the cases reported in the inclusive range of days, as
        parts of (leaf position, whole days to close, count) columns (the arrays' rows, then
        any extra rows: kept apart, not copied into one)."""
        base = self.histogram_rows(self.day_index(start), self.day_index(end))
        return [base, *self.extra_histogram(start, end)]

    def histogram_rows(self, first: int, last: int) -> tuple[np.ndarray, ...]:
        """The arrays' histogram rows of the day indexes ``first``..``last`` (views)."""
        a, b = _rows_between(self.hist_day, first, last)
        return self.hist_leaf[a:b], self.hist_bin[a:b], self.hist_n[a:b]

    def extra_histogram(self, start: dt.date, end: dt.date) -> list[tuple[np.ndarray, ...]]:
        """The extra rows' part of ``histogram`` (none, or one part)."""
        first, last = self.day_index(start), self.day_index(end)
        e = self.extra
        inside = (e.hist_day >= first) & (e.hist_day <= last)
        if not inside.any():
            return []
        return [(e.hist_leaf[inside], e.hist_bin[inside], e.hist_n[inside])]

    # ------------------------------------------------------------ changes

    def with_changes(self, changes: list[changelog.Change]) -> CaseCube:
        """A new cube: this one with the logged ``changes`` applied, as extra rows (the
        arrays are shared and never written: readers of this cube are undisturbed, and a
        cube mapped from a snapshot needs no copy). Exactly what a rebuild would answer."""
        if not changes:
            return self
        frames = {
            name: {column: _column(changes, name, column) for column in columns}
            for name, columns in _CHANGE_COLUMNS.items()
        }
        leaf_ids, positions = self._positions(
            np.concatenate([frames[name]["leaf_unit_id"] for name in frames])
        )
        sizes = np.cumsum([len(frames[name]["leaf_unit_id"]) for name in frames])[:-1]
        rollup_leaf, flow_leaf, hist_leaf = np.split(positions, sizes)
        shift = (self.day0 - UNIX_EPOCH).days

        def vocabulary(column: str, index: dict[str, int]) -> np.ndarray:
            """Each change's rollup codes of ``column`` as the cube's vocabulary indexes."""
            out = []
            for c in changes:
                table = np.array([index.get(code, -1) for code in c.codes.get(column, [])] + [-1])
                out.append(table[c.frames["rollup"][column]])
            return np.concatenate(out)

        r, f, h = frames["rollup"], frames["flow"], frames["hist"]
        raw = np.column_stack(
            [
                rollup_leaf,
                r["day"] - shift,
                vocabulary("category", CATEGORY_INDEX),
                vocabulary("channel", CHANNEL_INDEX),
                *(r[m] for m in RAW_MEASURES),
            ]
        )
        category, measures = _period_rows(raw)
        stock = np.column_stack(
            [f["opened"] - f["closed"], f["became_overdue"] - f["overdue_closed"]]
        )
        kept_rows = measures.any(axis=1)
        kept_flow = stock.any(axis=1)
        delta = Extra(
            row_day=raw[kept_rows, 1],
            row_leaf=raw[kept_rows, 0],
            row_category=category[kept_rows],
            row_channel=raw[kept_rows, 3],
            row_measures=measures[kept_rows],
            flow_day=(f["day"] - shift)[kept_flow],
            flow_leaf=flow_leaf[kept_flow],
            flow_stock=stock[kept_flow],
            hist_day=h["day"] - shift,
            hist_leaf=hist_leaf,
            hist_bin=h["days"],
            hist_n=h["n"],
        )
        extra = self.extra.plus(delta)
        return replace(
            self,
            version=changes[-1].version,
            token=changes[-1].token,
            leaf_ids=leaf_ids,
            extra=extra,
            last_case_day=self._last_case_day(delta, extra),
        )

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the leaf ids with those first seen appended, each of ``ids``' leaf position)."""
        nbase = self.period_cum.shape[2]
        base = self.leaf_ids[:nbase]
        pos = np.minimum(np.searchsorted(base, ids), max(nbase - 1, 0))
        found = base[pos] == ids if nbase else np.zeros(len(ids), dtype=bool)
        pos = np.where(found, pos, -1)
        if found.all():
            return self.leaf_ids, pos
        later = {int(i): nbase + k for k, i in enumerate(self.leaf_ids[nbase:])}
        for i in ids[~found].tolist():
            later.setdefault(i, nbase + len(later))
        pos[~found] = [later[i] for i in ids[~found].tolist()]
        return np.concatenate([base, np.array(list(later), dtype=np.int64)]), pos

    def _last_case_day(self, delta: Extra, extra: Extra) -> dt.date | None:
        """The last day with a case once ``delta`` (the rows just added to ``extra``) is
        applied: a later day that gained cases; else the last day still, unless its cases
        all went (moved or deleted), then the last day that has some, counted in full."""
        cases = PERIOD_MEASURES.index("cases")
        last = None if self.last_case_day is None else self.day_index(self.last_case_day)
        days, inverse = np.unique(delta.row_day, return_inverse=True)
        gained = np.bincount(inverse, weights=delta.row_measures[:, cases], minlength=len(days))
        later = days[gained > 0]
        if last is not None:
            later = later[later > last]
        if len(later):
            return self.day0 + dt.timedelta(days=int(later.max()))
        if last is None:
            return None
        on_last = int(extra.row_measures[extra.row_day == last, cases].sum())
        if 0 <= last < self.ndays:
            column = self.period_cum[:, cases, :]
            on_last += int(column[last + 1].sum(dtype=np.int64) - column[last].sum(dtype=np.int64))
        if on_last > 0:
            return self.last_case_day
        low = min(0, int(extra.row_day.min(initial=0)))
        high = max(self.ndays, int(extra.row_day.max(initial=0)) + 1)
        totals = np.zeros(high - low)
        totals[-low : -low + self.ndays] = np.diff(
            self.period_cum[:, cases, :].sum(axis=1, dtype=np.int64)
        )
        totals += np.bincount(
            extra.row_day - low, weights=extra.row_measures[:, cases], minlength=high - low
        )
        found = np.flatnonzero(totals > 0)
        return self.day0 + dt.timedelta(days=int(found[-1]) + low) if len(found) else None


def _vocabulary_index(column: str, codes: list[str]) -> str:
    """SQL: the position of ``column``'s value in ``codes`` (−1 when not there)."""
    whens = " ".join(f"WHEN '{code}' THEN {i}" for i, code in enumerate(codes))
    return f"CASE {column} {whens} ELSE -1 END"


def _period_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(category index, PERIOD_MEASURES per row) of raw daily rollup rows
    (leaf, day, category index, channel index, then RAW_MEASURES)."""
    category = rows[:, 2]
    serious = np.array([c.serious for c in CATEGORIES] + [False])[category]
    dispute = np.array([c.group == "dispute" for c in CATEGORIES] + [False])[category]
    cases, closed = rows[:, 4], rows[:, 5]
    measures = np.column_stack(
        [cases, cases * serious, closed, rows[:, 6], closed * dispute, *rows[:, 7:13].T]
    )
    assert measures.shape[1] == len(PERIOD_MEASURES)
    return category, measures


def load_cases(session: Session) -> CaseCube:
    """Read the rollup tables into a CaseCube at the current 'cases' version: the daily
    rollup rows as they are (kept for breakdowns), summed per leaf and day into cumulative
    arrays; flow events after the last day (deadlines ahead) as extra rows. ``session``
    should see one snapshot of the database (``_snapshot_session``)."""
    version = get_version(session, "cases")
    token = changelog.token_at(session, version)
    dialect = session.get_bind().dialect.name
    day = _day_number(dialect, "day")
    category = _vocabulary_index("category", [c.code for c in CATEGORIES])
    channel = _vocabulary_index("channel", [c.code for c in CHANNELS])
    raw = _fetch(
        session,
        f"""SELECT leaf_unit_id, {day}, {category}, {channel}, {", ".join(RAW_MEASURES)}
        FROM case_rollup_daily""",
        4 + len(RAW_MEASURES),
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
    today = (_today() - EPOCH).days
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

    ahead = flow[:, 1] > last
    extra = replace(
        Extra.empty(),
        flow_day=flow[ahead, 1] - first,
        flow_leaf=np.searchsorted(leaf_ids, flow[ahead, 0]),
        flow_stock=flow[ahead, 2:],
    )
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
        token=token,
        extra=extra,
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
    # what is derived from the leaves, valid as long as they are these (see ``with_cube``):
    # each level's ancestor per leaf, and ``Frame``'s groups
    leaf_memo: dict = field(default_factory=dict)

    def ancestor_at(self, level: str) -> np.ndarray:
        """Code index of each cube leaf's ancestor at ``level`` (−1 where none)."""
        found = self.leaf_memo.get(level)
        if found is None:
            anc = self.units.ancestors
            found = np.array(
                [anc.get(int(uid), {}).get(level, -1) for uid in self.cube.leaf_ids],
                dtype=np.int64,
            )
            self.leaf_memo[level] = found
        return found

    def with_cube(self, cube: CaseCube) -> State:
        """This state with ``cube``, whose leaves are this cube's, then any first seen."""
        known = len(self.cube.leaf_ids)
        if len(cube.leaf_ids) == known:  # the same leaves: the same ancestors (memo shared)
            return replace(self, cube=cube)
        new = [self.units.unit_code_idx.get(int(i), -1) for i in cube.leaf_ids[known:]]
        leaf_code = np.concatenate([self.leaf_code, np.array(new, dtype=np.int64)])
        return replace(self, cube=cube, leaf_code=leaf_code, leaf_memo={})


_states: dict[str, State] = {}
_loading: dict[str, threading.Thread] = {}
_lock = threading.Lock()
loads: Counter[str] = Counter()  # cubes read from the rollup tables, per database


def _versions(session: Session) -> dict[str, int]:
    return {name: int(v) for name, v in session.execute(_VERSIONS)}


# of the table, not the entity: every request runs it, and the ORM's select cost 0.1-0.3 ms more
_VERSIONS = select(DatasetVersion.__table__.c.name, DatasetVersion.__table__.c.version)


def _key(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=True)


@contextmanager
def _snapshot_session(session: Session) -> Iterator[Session]:
    """A session of its own on one snapshot of the database (PostgreSQL: a REPEATABLE READ
    transaction; SQLite: one read transaction), so that the rollup tables and the 'cases'
    version read agree while writers commit."""
    engine = session.get_bind().engine
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")
        with Session(bind=conn) as s:
            yield s


def _load(session: Session, key: str, boundaries_version: int) -> CaseCube:
    """The cube read from the rollup tables (and written to disk when big)."""
    with _snapshot_session(session) as s:
        cube = load_cases(s)
    loads[key] += 1
    if cube.rows > SYNC_ROWS:
        _snapshot_cube(key, boundaries_version, cube)
    return cube


def _caught_up(session: Session, cube: CaseCube) -> CaseCube | None:
    """``cube`` brought up to the current 'cases' version by the change log (itself when
    current), or None when the log cannot bring it there."""
    target = get_version(session, "cases")
    if target == cube.version:
        return cube
    changes = changelog.read(session, cube.version, cube.token, target)
    return None if changes is None else cube.with_changes(changes)


def _build(
    session: Session, key: str, versions: dict[str, int], old: State | None, reload: bool = False
) -> State:
    """A state for the current versions: the old one's parts where still valid, its cube
    caught up by the change log where it can be (unless ``reload``), else read anew."""
    b, g = versions.get("boundaries", 0), versions.get("grid_network", 0)
    units = old.units if old and old.units.version == b else load_units(session, b)
    if old and old.network_version == (b, g) and old.units is units:
        network = old.network
    else:
        network = load_network(session, units)
    cube = None
    if old and old.units is units and not reload:
        cube = _caught_up(session, old.cube)
    if cube is None and old is None and not reload:
        cube = _cube_from_snapshot(key, b)
        if cube is not None:  # older than the data and past the log: refreshed as stale
            cube = _caught_up(session, cube) or cube
    if cube is None:
        cube = _load(session, key, b)
        cube = _caught_up(session, cube) or cube
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
        "token": cube.token,
        "rows": cube.rows,
        "day0": cube.day0.isoformat(),
        "ndays": cube.ndays,
        "last_case_day": cube.last_case_day.isoformat() if cube.last_case_day else None,
    }
    arrays = {name: getattr(cube, name) for name in _CUBE_ARRAYS}
    arrays |= {f"extra_{f.name}": getattr(cube.extra, f.name) for f in fields(Extra)}
    try:
        snapshot.save(key, meta, arrays)
    except OSError as exc:  # a full or read-only disk costs the next restart only
        log.warning("cube snapshot not written: %s", exc)


def _cube_from_snapshot(key: str, boundaries_version: int) -> CaseCube | None:
    found = snapshot.load(key, boundaries_version)
    if found is None:
        return None
    meta, arrays = found
    extra = {f.name: arrays.pop(f"extra_{f.name}", None) for f in fields(Extra)}
    if set(arrays) != set(_CUBE_ARRAYS) or any(a is None for a in extra.values()):
        return None  # written by another version of this code
    last = meta["last_case_day"]
    return CaseCube(
        version=meta["version"],
        token=meta.get("token"),
        rows=meta["rows"],
        day0=dt.date.fromisoformat(meta["day0"]),
        ndays=meta["ndays"],
        last_case_day=dt.date.fromisoformat(last) if last else None,
        extra=Extra(**extra),
        **arrays,
    )


def _stale(state: State, versions: dict[str, int]) -> bool:
    return (
        state.units.version != versions.get("boundaries", 0)
        or state.cube.version != versions.get("cases", 0)
        or state.network_version[1] != versions.get("grid_network", 0)
    )


def engine_state(session: Session) -> State:
    """The current state for the session's database: when only cases changed, the cube
    catches up from the change log (milliseconds); otherwise it is rebuilt."""
    key = _key(session)
    versions = _versions(session)
    state = _states.get(key)
    if state is not None and not _stale(state, versions):
        return state
    if state is not None and not _stale(state, versions | {"cases": state.cube.version}):
        caught = _catch_up(session, key)
        if caught is not None:
            return caught
    if state is not None and state.cube.rows > SYNC_ROWS:
        _refresh_in_background(session, key)
        return state
    with _lock:
        state = _states.get(key)
        if state is None or _stale(state, versions):
            state = _states[key] = _build(session, key, versions, state)
    if _stale(state, _versions(session)):  # served from an older snapshot: catch up behind it
        _refresh_in_background(session, key)
    elif state.cube.extra.rows > EXTRA_ROWS:
        _refresh_in_background(session, key, reload=True)
    return state


def _catch_up(session: Session, key: str) -> State | None:
    """The state with its cube caught up by the change log (and installed), or None when
    the log cannot. Past EXTRA_ROWS extra rows, a reload starts behind it."""
    with _lock:
        state = _states.get(key)
        cube = None if state is None else _caught_up(session, state.cube)
        if state is None or cube is None:
            return None
        if cube is not state.cube:
            state = _states[key] = state.with_cube(cube)
    if cube.extra.rows > EXTRA_ROWS:
        _refresh_in_background(session, key, reload=True)
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


def _refresh_in_background(session: Session, key: str, reload: bool = False) -> None:
    """Build the state in a thread while the current one answers; ``reload``: read the
    cube from the rollup tables even if the change log could bring it up to date."""
    from api.db.session import session_factory

    url = session.get_bind().url.render_as_string(hide_password=False)

    def work() -> None:
        try:
            with session_factory(url)() as s:
                fresh = _build(s, key, _versions(s), _states.get(key), reload=reload)
                with _lock:  # what landed while it was built, then the newer of the two
                    cube = _caught_up(s, fresh.cube)
                    if cube is not None:
                        fresh = fresh.with_cube(cube)
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
