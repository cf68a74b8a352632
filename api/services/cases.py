"""Case intake: the one pipeline every case goes through, from the hotline, 110, grid apps
or a bulk file — validate → locate → dedupe → store → rollups, in one transaction.

- **Validate** (vectorised over a batch): category and channel known (code or Chinese
  name), reported_at between 1990-01-01 and now (+5 min of clock skew; a time without zone
  is Asia/Shanghai), finite lon/lat inside the city (a swapped pair is named as such),
  description at most 2,000 characters after trimming, deadline not before the report.
- **Locate**: ``unit_code`` (a current village, grid or other leaf unit; retired codes and
  units with units below them, a town, are refused, naming the levels that take cases) or
  the point (GCJ-02 converted to WGS84) through
  ``api.services.locate.point_locator``. A point in a gap or sliver between units, within
  ``ZHILI_LOCATE_TOLERANCE_M`` (50 m) of a leaf, goes to the nearest leaf and the case is
  flagged ``placed_by_tolerance``; a point farther from every unit is refused, told how
  far it is. A writer may only file cases inside its own subtree.
- **Dedupe**: within a batch the first valid item of a (source, external_id) wins, later
  ones are rejected and name it; against the table, (source, external_id) is unique.
- **Store**: new cases are inserted with ``ON CONFLICT DO NOTHING`` (on PostgreSQL COPYed
  to a temporary table first, then one ``INSERT .. SELECT`` per batch),
  existing ones are compared: unchanged, or updated (intake fields only; the workflow steps
  stay). PostgreSQL locks existing rows in key order and retries on deadlock; SQLite
  serialises writers by taking the write lock before reading.
- **Rollups**: one ``apply_case_changes`` per batch, in the same transaction (the new
  cases passed as columns: their deltas are summed vectorised, one merge per table).

A batch with rejected items stores its good items; the answer lists each item's fate.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import ARRAY, String, any_, literal, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit, Case, UnitAncestry
from api.domain import CATEGORIES, CATEGORY_BY_CODE, CHANNELS
from api.engine import CaseSnapshot, apply_case_changes
from api.services.audit import audit
from api.services.local_time import CLOCK_SKEW, local_zone
from api.services.routing import ROUTE_FIELDS, route_frame
from api.services.scope import subtree_unit_ids

if TYPE_CHECKING:
    from geo.locate import PointLocator

MAX_DESCRIPTION = 2000
EARLIEST = dt.date(1990, 1, 1)
CRS = ("wgs84", "gcj02", "cgcs2000")
# The intake fields a re-send may change; the workflow fields are PATCH's.
INTAKE_FIELDS = (
    "channel",
    "category",
    "description",
    "reported_at",
    "lon",
    "lat",
    "leaf_unit_id",
    "village_code",
    "grid_code",
    "placed_by_tolerance",
    "deadline",
)
FRAME_COLUMNS = (
    "source",
    "external_id",
    "category",
    "channel",
    "reported_at",
    "lon",
    "lat",
    "crs",
    "unit_code",
    "description",
    "deadline",
)
_CATEGORY_NAMES = {c.code: c.code for c in CATEGORIES} | {c.name_zh: c.code for c in CATEGORIES}
_CHANNEL_NAMES = {c.code: c.code for c in CHANNELS} | {c.name_zh: c.code for c in CHANNELS}


# ---------------------------------------------------------------- results


@dataclass
class Outcome:
    """The fate of one input item (by its position in the input)."""

    index: int
    status: str  # created, unchanged, updated, rejected
    source: str | None = None
    external_id: str | None = None
    id: int | None = None
    reason: str | None = None
    changed: list[str] | None = None  # the intake fields an update changed

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class IngestReport:
    """Counts and the per-item outcomes of one batch, in input order."""

    items: list[Outcome] = field(default_factory=list)
    # cases created by a bulk file's chunk, counted without an Outcome each (no one reads
    # their ids: the file's summary counts them)
    created_unlisted: int = 0

    def count(self, status: str) -> int:
        listed = sum(1 for o in self.items if o.status == status)
        return listed + (self.created_unlisted if status == "created" else 0)

    @property
    def rows(self) -> int:
        """How many input items the batch held."""
        return len(self.items) + self.created_unlisted

    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in ("created", "updated", "unchanged", "rejected")}

    def as_dict(self) -> dict:
        return {**self.summary(), "items": [o.as_dict() for o in self.items]}


# ---------------------------------------------------------------- validate + locate


def empty_frame(n: int = 0) -> pd.DataFrame:
    """A batch frame: the columns of FRAME_COLUMNS plus ``index`` (input position)."""
    return pd.DataFrame({"index": np.arange(n, dtype=np.int64)})


def to_utc(values: Sequence[dt.datetime | None]) -> pd.Series:
    """Python datetimes (naive = local zone) as a UTC series (NaT for None), to the µs."""
    zone = local_zone()
    out = [
        None if v is None else (v.replace(tzinfo=zone) if v.tzinfo is None else v) for v in values
    ]
    return pd.to_datetime(pd.Series(out, dtype=object), utc=True).dt.floor("us")


def frame_from_items(items: Sequence[tuple[int, object]]) -> pd.DataFrame:
    """A batch frame from parsed items (objects with the FRAME_COLUMNS attributes, e.g.
    ``api.schemas.cases.CaseIn``) and their input positions."""
    frame = pd.DataFrame(
        {
            col: pd.Series([getattr(item, col) for _, item in items], dtype=object)
            for col in FRAME_COLUMNS
        }
    )
    frame.insert(0, "index", np.array([i for i, _ in items], dtype=np.int64))
    frame["reported_at"] = to_utc(frame["reported_at"].tolist())
    frame["deadline"] = to_utc(frame["deadline"].tolist())
    return frame


class _Reasons:
    """The first reason each row is rejected for."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.reason) if len(self.reason) else np.zeros(0, bool)

    def fail(self, mask: np.ndarray, message, values: np.ndarray | None = None) -> None:
        """Reject rows in ``mask`` not rejected yet; ``message`` may be a callable of the
        row's value in ``values``."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool) & self.ok)
        if not len(rows):
            return
        if callable(message):
            self.reason[rows] = [message(v) for v in values[rows]]
        else:
            self.reason[rows] = message


def _known(values: pd.Series, names: dict[str, str], what: str, r: _Reasons) -> np.ndarray:
    codes = values.map(names).to_numpy(dtype=object)
    missing = values.isna().to_numpy() | (values.astype(str).str.len() == 0).to_numpy()
    r.fail(missing, f"{what} is missing")
    choices = ", ".join(sorted({v for v in names.values()}))
    r.fail(pd.isna(codes), lambda v: f"unknown {what} {v!r}: use one of {choices}", values.values)
    return codes


def _stripped(values: pd.Series) -> list:
    """Strings stripped, missing values (None, NaN, NA) as None, others as they are."""
    present = values.notna().to_numpy()
    return [
        v.strip() if isinstance(v, str) else v if ok else None
        for v, ok in zip(values.tolist(), present, strict=True)
    ]


def validate(frame: pd.DataFrame, now: dt.datetime, r: _Reasons) -> pd.DataFrame:
    """Check and normalise the fields of a batch frame (vectorised); the rows that fail get
    their reason in ``r``. Returns the frame with codes, UTC times and WGS84 points."""
    out = frame.copy()
    for col, limit in (("source", 32), ("external_id", 64)):
        values = _stripped(out[col])
        lengths = np.array([0 if v is None else len(str(v)) for v in values], dtype=np.int64)
        r.fail(lengths == 0, f"{col} is missing")
        r.fail(lengths > limit, f"{col} is longer than {limit} characters")
        out[col] = pd.Series(values, index=out.index, dtype=object)
    out["category"] = _known(out["category"], _CATEGORY_NAMES, "category", r)
    out["channel"] = _known(out["channel"], _CHANNEL_NAMES, "channel", r)

    reported = out["reported_at"]
    r.fail(reported.isna().to_numpy(), "reported_at is missing or not a date-time")
    local_midnight = pd.Timestamp(dt.datetime.combine(EARLIEST, dt.time(), local_zone()))
    stamps = reported.array  # formatted only for the rows rejected
    r.fail(
        (reported > pd.Timestamp(now + CLOCK_SKEW)).to_numpy(),
        lambda v: f"reported_at {v.isoformat()} is in the future",
        stamps,
    )
    r.fail(
        (reported < local_midnight).to_numpy(),
        lambda v: f"reported_at {v.isoformat()} is before 1990-01-01",
        stamps,
    )

    deadline = out["deadline"]
    r.fail((deadline.notna() & (deadline < reported)).to_numpy(), "deadline is before reported_at")
    sla = out["category"].map({c: v.sla_days for c, v in CATEGORY_BY_CODE.items()}).fillna(0)
    default = reported + pd.to_timedelta(sla.astype("int64"), unit="D")
    out["deadline"] = deadline.where(deadline.notna(), default)

    desc = [v if isinstance(v, str) and v else None for v in _stripped(out["description"])]
    lengths = np.array([0 if v is None else len(v) for v in desc], dtype=np.int64)
    r.fail(
        lengths > MAX_DESCRIPTION,
        lambda v: (
            f"description has {v:,} characters: at most {MAX_DESCRIPTION:,} are accepted, "
            "shorten it"
        ),
        lengths,
    )
    out["description"] = pd.Series(desc, index=out.index, dtype=object)

    code = pd.Series(
        [v if isinstance(v, str) and v else None for v in _stripped(out["unit_code"])],
        index=out.index,
        dtype=object,
    )
    out["unit_code"] = code
    has_code = code.notna().to_numpy()
    lon = pd.to_numeric(out["lon"], errors="coerce").to_numpy(dtype=np.float64, copy=True)
    lat = pd.to_numeric(out["lat"], errors="coerce").to_numpy(dtype=np.float64, copy=True)
    raw_lon = out["lon"].to_numpy(dtype=object)
    given = ~(pd.isna(out["lon"]).to_numpy() & pd.isna(out["lat"]).to_numpy())
    r.fail(~has_code & ~given, "give a location: lon and lat, or unit_code")
    one_missing = pd.isna(out["lon"]).to_numpy() != pd.isna(out["lat"]).to_numpy()
    r.fail(given & one_missing, "give both lon and lat")
    bad_number = given & (~np.isfinite(lon) | ~np.isfinite(lat))
    pairs = np.full(len(out), None, dtype=object)
    raw_lat = out["lat"].to_numpy(dtype=object)
    for i in np.flatnonzero(bad_number):
        pairs[i] = f"lon={raw_lon[i]!r}, lat={raw_lat[i]!r}"
    r.fail(bad_number, lambda v: f"lon/lat must be finite numbers (got {v})", pairs)
    crs = pd.Series(
        [v.lower() if isinstance(v, str) and v else "wgs84" for v in _stripped(out["crs"])],
        index=out.index,
        dtype=object,
    )
    r.fail(
        given & ~crs.isin(CRS).to_numpy(),
        lambda v: f"unknown crs {v!r}: use wgs84, gcj02 or cgcs2000",
        crs.to_numpy(),
    )
    with np.errstate(invalid="ignore"):
        out_of_range = given & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
        looks_swapped = out_of_range & (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    r.fail(
        looks_swapped, lambda v: f"lat {v} is out of range -90..90: lon and lat look swapped", lat
    )
    r.fail(out_of_range, "lon/lat out of range (lon -180..180, lat -90..90)")
    gcj = given & (crs == "gcj02").to_numpy() & r.ok
    if gcj.any():
        from geo.locate import gcj02_to_wgs84

        lon[gcj], lat[gcj] = gcj02_to_wgs84(lon[gcj], lat[gcj])
    out["lon"] = np.where(given, lon, np.nan)
    out["lat"] = np.where(given, lat, np.nan)
    out["crs"] = crs
    out["has_code"] = has_code
    return out


def locate(session: Session, frame: pd.DataFrame, r: _Reasons, scope_code: str | None) -> None:
    """Fill ``leaf_unit_id``, ``village_code``, ``grid_code`` and ``placed_by_tolerance`` of
    each row still valid: from its unit code, else from its point (within the locate
    tolerance of a leaf: the nearest leaf). Rows outside the city (or outside
    ``scope_code``'s subtree, the writer's) are rejected."""
    n = len(frame)
    leaf = np.full(n, -1, dtype=np.int64)
    village = np.full(n, None, dtype=object)
    grid = np.full(n, None, dtype=object)
    by_tolerance = np.zeros(n, dtype=bool)
    has_code = frame["has_code"].to_numpy()

    by_code = np.flatnonzero(has_code & r.ok)
    if len(by_code):
        codes = frame["unit_code"].to_numpy(dtype=object)
        found = _units_by_code(session, set(codes[by_code]))
        for i in by_code:
            hit = found.get(codes[i])
            if isinstance(hit, str):
                r.reason[i] = hit
            else:
                leaf[i], village[i], grid[i] = hit

    by_point = np.flatnonzero(~has_code & r.ok)
    if len(by_point):
        from api.services.locate import locate_tolerance_m, point_locator

        locator = point_locator(session)
        tolerance = locate_tolerance_m()
        lon = frame["lon"].to_numpy(dtype=np.float64)[by_point]
        lat = frame["lat"].to_numpy(dtype=np.float64)[by_point]
        found = locator.locate(lon, lat, tolerance)
        leaf[by_point] = found.leaf_unit_id
        village[by_point] = found.village_code
        grid[by_point] = found.grid_code
        by_tolerance[by_point] = found.by_tolerance
        outside = found.outside
        if outside.any():
            _refuse_outside(locator, by_point[outside], lon[outside], lat[outside], n, r)

    if scope_code is not None:
        allowed = set(session.scalars(subtree_unit_ids(scope_code)))
        outside_scope = np.array([u not in allowed for u in leaf], dtype=bool) & (leaf >= 0)
        r.fail(outside_scope, f"the case lies outside your jurisdiction ({scope_code})")
    frame["leaf_unit_id"] = leaf
    frame["village_code"] = village
    frame["grid_code"] = grid
    frame["placed_by_tolerance"] = by_tolerance


def _how_far(metres: float) -> str:
    """A distance as a person reads it: 730 m, 12.4 km."""
    if not np.isfinite(metres):
        return "far"
    return f"{metres:,.0f} m" if metres < 10_000 else f"{metres / 1000:,.1f} km"


def _refuse_outside(
    locator: PointLocator,
    rows: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    n: int,
    r: _Reasons,
) -> None:
    """Reject the rows whose point lies outside every unit (beyond the tolerance), named
    as swapped when (lat, lon) lies in the city, else told how far the nearest unit is."""
    swapped = locator.locate(lat, lon)
    mask = np.zeros(n, bool)
    mask[rows[~swapped.outside]] = True
    r.fail(mask, "lon and lat are swapped: (lat, lon) lies in the city, (lon, lat) does not")
    away = locator.distance_to_units_m(lon, lat)
    told = np.full(n, None, dtype=object)
    told[rows] = [
        f"point ({x:.6f}, {y:.6f}) lies outside every unit of the city, {_how_far(d)} from "
        "the nearest (check lon/lat and crs)"
        for x, y, d in zip(lon, lat, away, strict=True)
    ]
    mask[:] = False
    mask[rows] = True
    r.fail(mask, lambda v: v, told)


def _units_by_code(session: Session, codes: set[str]) -> dict[str, tuple | str]:
    """Each code → (leaf unit id, village code, grid code), or the reason it is refused."""
    out: dict[str, tuple | str] = {}
    codes_list = sorted(codes)
    rows = []
    for i in range(0, len(codes_list), 500):
        rows += session.execute(
            select(AdminUnit.id, AdminUnit.code, AdminUnit.level, AdminUnit.valid_to).where(
                AdminUnit.code.in_(codes_list[i : i + 500])
            )
        ).all()
    current = {r.code: r for r in rows if r.valid_to is None}
    retired = {r.code: r for r in rows if r.valid_to is not None}
    ids = [r.id for r in current.values()]
    villages: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        villages.update(
            session.execute(
                select(UnitAncestry.unit_id, UnitAncestry.ancestor_code)
                .where(UnitAncestry.unit_id.in_(ids[i : i + 500]))
                .where(UnitAncestry.ancestor_level == "village")
            ).all()
        )
    with_children = _with_children(session, list(current))
    for code in codes:
        unit = current.get(code)
        if unit is not None and code in with_children:
            out[code] = _not_a_leaf(session, unit.code, unit.level)
        elif unit is not None:
            out[code] = (unit.id, villages.get(unit.id), code if unit.level == "grid" else None)
        elif code in retired:
            out[code] = f"unit {code} was retired on {retired[code].valid_to}: use its successor"
        else:
            out[code] = f"no unit with code {code!r}"
    return out


def _with_children(session: Session, codes: list[str]) -> set[str]:
    """The codes among ``codes`` of units with a current child."""
    out: set[str] = set()
    for i in range(0, len(codes), 500):
        out.update(
            session.scalars(
                select(AdminUnit.parent_code)
                .where(AdminUnit.parent_code.in_(codes[i : i + 500]))
                .where(AdminUnit.valid_to.is_(None))
                .distinct()
            )
        )
    return out


def _not_a_leaf(session: Session, code: str, level: str) -> str:
    """Why a case cannot be filed against ``code``, a unit with units below it: its
    children would no longer add up to it. Names the levels below it that take cases
    (those of its current units with nothing below them)."""
    child = AdminUnit.__table__.alias("child")
    leaf = (
        ~select(child.c.id)
        .where(child.c.parent_code == AdminUnit.code, child.c.valid_to.is_(None))
        .exists()
    )
    levels = session.execute(
        select(AdminUnit.level, AdminLevel.name_zh)
        .join(UnitAncestry, UnitAncestry.unit_id == AdminUnit.id)
        .join(AdminLevel, AdminLevel.code == AdminUnit.level)
        .where(UnitAncestry.ancestor_code == code, UnitAncestry.distance > 0)
        .where(AdminUnit.valid_to.is_(None), leaf)
        .group_by(AdminUnit.level, AdminLevel.name_zh, AdminLevel.depth)
        .order_by(AdminLevel.depth)
    ).all()
    named = " or ".join(f"{lv} ({zh})" for lv, zh in levels) or "the units below it"
    return (
        f"unit {code} is a {level} with units below it, and a case is filed against a unit "
        f"with none below (its figures add up to its parents'): the levels that take cases "
        f"here are {named}; give one of their codes, or lon/lat"
    )


def dedupe(frame: pd.DataFrame, r: _Reasons, label: str = "item") -> None:
    """Within a batch, the first valid item of each (source, external_id) wins."""
    ok = r.ok
    keys = pd.Series(list(zip(frame["source"], frame["external_id"], strict=True)), dtype=object)
    valid_keys = keys[ok]
    dup = valid_keys.duplicated(keep="first")
    if not dup.any():
        return
    first = {k: int(frame["index"].iat[i]) for i, k in valid_keys[~dup].items()}
    rows = np.zeros(len(frame), bool)
    rows[dup[dup].index.to_numpy()] = True
    r.fail(
        rows,
        lambda k: (
            f"duplicate of {label} {first[k]} in this batch (same source and "
            "external_id); the first one is kept"
        ),
        keys.to_numpy(),
    )


# ---------------------------------------------------------------- store


def _case_values(row: dict, now: dt.datetime) -> dict:
    return {
        "source": row["source"],
        "external_id": row["external_id"],
        "channel": row["channel"],
        "category": row["category"],
        "description": row["description"],
        "reported_at": row["reported_at"],
        "lon": row["lon"],
        "lat": row["lat"],
        "leaf_unit_id": row["leaf_unit_id"],
        "village_code": row["village_code"],
        "grid_code": row["grid_code"],
        "placed_by_tolerance": row["placed_by_tolerance"],
        "status": "received",
        "received_at": row["reported_at"],
        "handling_unit_code": row.get("handling_unit_code"),
        "department_id": (
            None
            if row.get("department_id") is None or row["department_id"] < 0
            else int(row["department_id"])
        ),
        "handler_since": row["reported_at"],
        "deadline": row["deadline"],
        "created_at": now,
        "updated_at": now,
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    """Plain Python values per row (UTC datetimes, floats or None)."""

    def objects(col: str) -> list:
        return [
            None if v is None or (isinstance(v, float) and v != v) or v is pd.NA else v
            for v in frame[col].tolist()
        ]

    def floats(col: str) -> list:
        return [None if np.isnan(v) else float(v) for v in frame[col].to_numpy(np.float64)]

    cols = {
        "index": frame["index"].astype("int64").tolist(),
        **{c: objects(c) for c in ("source", "external_id", "channel", "category")},
        "description": objects("description"),
        "reported_at": list(frame["reported_at"].dt.to_pydatetime()),
        "deadline": list(frame["deadline"].dt.to_pydatetime()),
        "lon": floats("lon"),
        "lat": floats("lat"),
        "leaf_unit_id": frame["leaf_unit_id"].astype("int64").tolist(),
        "village_code": objects("village_code"),
        "grid_code": objects("grid_code"),
        "placed_by_tolerance": frame["placed_by_tolerance"].astype(bool).tolist(),
    }
    for col in ROUTE_FIELDS:  # set by api.services.routing on the batch's valid rows
        if col in frame:
            cols[col] = objects(col)
    keys = list(cols)
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


_SNAP_FIELDS = ("handled_at", "visited_at", "evaluated_at", "outcome", "satisfaction")
_EXISTING_COLUMNS = (
    Case.id,
    Case.source,
    Case.external_id,
    *(getattr(Case, f) for f in INTAKE_FIELDS),
    Case.scheduled_at,
    *(getattr(Case, f) for f in _SNAP_FIELDS),
)


def _existing(session: Session, keys: list[tuple[str, str]], lock: bool) -> dict[tuple, dict]:
    """The stored rows of ``keys`` (locked in key order on PostgreSQL when ``lock``).
    One ``source = s AND external_id IN (...)`` per source and chunk: an index range scan
    each, where a row-value IN list would make the planner OR thousands of probes."""
    out: dict[tuple, dict] = {}
    by_source: dict[str, list[str]] = {}
    for source, external_id in sorted(set(keys)):
        by_source.setdefault(source, []).append(external_id)
    pg = session.get_bind().dialect.name == "postgresql"
    for source, ids in by_source.items():
        for i in range(0, len(ids), 5000):
            chunk = ids[i : i + 5000]
            # PostgreSQL: one array parameter (= ANY), not 5,000 bound values to render
            wanted = (
                Case.external_id == any_(literal(chunk, ARRAY(String)))
                if pg
                else Case.external_id.in_(chunk)
            )
            stmt = (
                select(*_EXISTING_COLUMNS)
                .where(Case.source == source)
                .where(wanted)
                .order_by(Case.external_id)
            )
            if lock:
                stmt = stmt.with_for_update()
            for row in session.execute(stmt).mappings():
                out[(row["source"], row["external_id"])] = dict(row)
    return out


def _snapshot(values: dict) -> CaseSnapshot:
    return CaseSnapshot(
        leaf_unit_id=values["leaf_unit_id"],
        reported_at=values["reported_at"],
        category=values["category"],
        channel=values["channel"],
        deadline=values["deadline"],
        handled_at=values.get("handled_at"),
        visited_at=values.get("visited_at"),
        evaluated_at=values.get("evaluated_at"),
        outcome=values.get("outcome"),
        satisfaction=values.get("satisfaction"),
    )


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) < 1e-9
    return a == b


def _insert_new(
    session: Session, frame: pd.DataFrame, now: dt.datetime, bulk: bool = False
) -> dict[tuple, int]:
    """Insert the rows of ``frame`` (new keys) in key order; returns key → id of the rows
    this transaction wrote. A key another writer inserted meanwhile is left out (``ON
    CONFLICT DO NOTHING``), so the caller treats it as existing. ``bulk`` (PostgreSQL): in
    the order of the biggest index instead, see ``_insert_new_staged``."""
    if frame.empty:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        return _insert_new_staged(session, frame, now, bulk)
    from sqlalchemy.dialects.sqlite import insert

    table = Case.__table__
    values = [
        _case_values(r, now)
        for r in sorted(_records(frame), key=lambda r: (r["source"], r["external_id"]))
    ]
    stmt = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(table.c.id, table.c.source, table.c.external_id)
    )
    written: dict = {}
    for i in range(0, len(values), 1000):
        for row in session.execute(stmt, values[i : i + 1000]):
            written[(row.source, row.external_id)] = row.id
    return written


_STAGED = ("source", "external_id", *INTAKE_FIELDS, *ROUTE_FIELDS)


def _utc_column(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")


def _insert_new_staged(
    session: Session, frame: pd.DataFrame, now: dt.datetime, bulk: bool = False
) -> dict:
    """PostgreSQL: COPY the new rows (numpy columns, no Python object per value) into a
    temporary table of this connection, then one ``INSERT .. SELECT .. ON CONFLICT DO
    NOTHING RETURNING`` into ``case``: COPY's speed, and a race with another writer is a
    skipped row instead of an error that fails the whole chunk.

    A batch is inserted in key order (two writers of overlapping batches wait for each
    other, never deadlock); a bulk chunk (keys no other chunk holds) in the order of the
    index by leaf and time, whose pages are then visited once each, in order, with the
    grid and village indexes in the same order: at metro a third fewer buffer reads than
    in key order and half the dirty pages evicted (EXPLAIN ANALYZE BUFFERS, 100,000 new
    cases). A rare overlap with an API batch may then deadlock: detected, and retried by
    ``ingest_frame``."""
    from sqlalchemy import table as table_clause

    from api.services.bulk import copy_columns

    conn = session.connection()
    cols = ", ".join(f'"{c}"' for c in _STAGED)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS intake_case_stage ON COMMIT DELETE ROWS AS "
        f'SELECT {cols} FROM "case" WITH NO DATA'
    )
    conn.exec_driver_sql("DELETE FROM intake_case_stage")  # an earlier batch of this transaction
    columns = {
        c: (
            _utc_column(frame[c])
            if c in ("reported_at", "deadline")
            else frame[c].to_numpy(np.float64)
            if c in ("lon", "lat")
            else frame[c].to_numpy(np.int64)
            if c == "leaf_unit_id"
            else frame[c].to_numpy(bool)
            if c == "placed_by_tolerance"
            else np.ma.masked_less(frame[c].to_numpy(np.int64), 0)
            if c == "department_id"
            else np.array(
                [None if v is None or v is pd.NA or v != v else v for v in frame[c].tolist()],
                dtype=object,
            )
        )
        for c in _STAGED
    }
    copy_columns(session, table_clause("intake_case_stage"), columns)
    sql = (
        f'INSERT INTO "case" ({cols}, status, received_at, handler_since, created_at, '
        f"updated_at) SELECT {cols}, 'received', reported_at, reported_at, %(now)s, %(now)s "
        "FROM intake_case_stage "
        f"ORDER BY {'leaf_unit_id, reported_at' if bulk else 'source, external_id'} "
        "ON CONFLICT (source, external_id) DO NOTHING RETURNING id, source, external_id"
    )
    # the driver's own cursor: plain tuples back, no result row object per case; its
    # errors wrapped as SQLAlchemy's (a deadlock is retried by the caller)
    driver = conn.connection.driver_connection
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, {"now": now})
            return {(src, ext): id_ for id_, src, ext in cursor.fetchall()}
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, {"now": now}, exc, psycopg.Error) from exc


def _later_step_before(stored: dict, reported_at: dt.datetime) -> bool:
    steps = ("scheduled_at", "handled_at", "visited_at", "evaluated_at")
    return any(stored.get(s) is not None and stored[s] < reported_at for s in steps)


def store(
    session: Session, frame: pd.DataFrame, now: dt.datetime, *, bulk: bool = False
) -> tuple[list[Outcome], list[tuple], dict[str, np.ndarray] | None]:
    """Write a frame of valid, deduplicated rows: insert the new, compare and update the
    existing. Returns the outcomes, the rollup changes of updated cases (old, new
    snapshots) and the created cases as columns for ``apply_case_changes(added=...)``.

    ``bulk`` (a file's chunk): no outcome is made for a created case (the caller counts
    ``added``), and on PostgreSQL every row is offered to ``INSERT .. ON CONFLICT DO
    NOTHING`` first, so that only the rows already stored are looked up (a file of new
    cases probes nothing); the plain order (look up, then insert the rest) is the
    reference ``tests/intake/test_bulk_paths.py`` holds the bulk path to."""
    pg = session.get_bind().dialect.name == "postgresql"
    sources = frame["source"].tolist()
    external_ids = frame["external_id"].tolist()
    keys = list(zip(sources, external_ids, strict=True))
    if pg and bulk:
        written = _insert_new(session, frame, now, bulk=True)
        stored = _existing(session, [k for k in keys if k not in written], lock=True)
    else:
        stored = _existing(session, keys, lock=pg)
        is_new = np.array([k not in stored for k in keys], dtype=bool)
        written = _insert_new(session, frame[is_new], now)
        raced = [k for k, new in zip(keys, is_new, strict=True) if new and k not in written]
        if raced:
            stored.update(_existing(session, raced, lock=pg))
    created = np.array([k in written for k in keys], dtype=bool)
    indexes = frame["index"].astype("int64").tolist()
    outcomes = [
        Outcome(
            index=indexes[i],
            status="created",
            source=keys[i][0],
            external_id=keys[i][1],
            id=written[keys[i]],
        )
        for i in ([] if bulk else np.flatnonzero(created))
    ]
    added = None
    if created.any():
        made = frame[created]
        added = {
            "leaf_unit_id": made["leaf_unit_id"].to_numpy(np.int64),
            "reported_at": _utc_column(made["reported_at"]),
            "deadline": _utc_column(made["deadline"]),
            "category": made["category"].to_numpy(dtype=object),
            "channel": made["channel"].to_numpy(dtype=object),
            "source": made["source"].to_numpy(dtype=object),  # for the audit entry
        }
    changes: list[tuple] = []
    updates: list[dict] = []
    for rec in _records(frame[~created]):
        key = (rec["source"], rec["external_id"])
        base = {"index": rec["index"], "source": key[0], "external_id": key[1]}
        old = stored[key]
        diff = {f: rec[f] for f in INTAKE_FIELDS if not _same(old[f], rec[f])}
        if not diff:
            outcomes.append(Outcome(status="unchanged", id=old["id"], **base))
            continue
        if "reported_at" in diff and _later_step_before(old, rec["reported_at"]):
            outcomes.append(
                Outcome(
                    status="rejected",
                    id=old["id"],
                    reason="reported_at would fall after a workflow step already recorded",
                    **base,
                )
            )
            continue
        if "reported_at" in diff:
            diff["received_at"] = rec["reported_at"]
        updates.append({"_id": old["id"], **diff, "updated_at": now})
        changed = sorted("unit" if f == "leaf_unit_id" else f for f in diff if f in INTAKE_FIELDS)
        outcomes.append(Outcome(status="updated", id=old["id"], changed=changed, **base))
        changes.append((_snapshot(old), _snapshot({**old, **diff})))
    for row in updates:  # few: a re-send with changes; each its own column set
        values = {k: v for k, v in row.items() if k != "_id"}
        session.execute(update(Case).where(Case.id == row["_id"]).values(**values))
    return outcomes, changes, added


# ---------------------------------------------------------------- the pipeline

_sqlite_writer = threading.Lock()


def _take_write_lock(session: Session) -> None:
    """SQLite: start the transaction with a write so that it holds the database's write
    lock before reading (no lost update between two writers; others wait, busy_timeout)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE dataset_version SET version = version WHERE 0"))


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001")  # deadlock detected, serialization failure


def _text(value) -> str | None:
    return str(value) if isinstance(value, str | int) else None


def _audit_batch(
    session: Session,
    outcomes: list[Outcome],
    rejected: int,
    user_name: str | None,
    scope_code: str | None,
    list_ids: bool = True,
    added: dict[str, np.ndarray] | None = None,
) -> None:
    """One audit entry for a batch that changed something: the counts, the ids created
    (unless ``list_ids`` is false: a bulk file's cases carry their source and created_at;
    they are counted from ``added``, the created cases' columns) and, for each update, the
    id and the fields changed."""
    created = [o for o in outcomes if o.status == "created"]
    updated = [o for o in outcomes if o.status == "updated"]
    unlisted = 0 if list_ids or added is None else len(added["leaf_unit_id"])
    if not created and not updated and not unlisted:
        return
    sources = {o.source for o in created + updated if o.source}
    if unlisted:
        sources |= set(pd.unique(added["source"]).tolist())
    audit(
        session,
        user_name,
        scope_code,
        "case.ingest",
        target=",".join(sorted(sources))[:128],
        detail={
            "created": len(created) + unlisted,
            "updated": len(updated),
            "unchanged": sum(1 for o in outcomes if o.status == "unchanged"),
            "rejected": rejected,
            "created_ids": sorted(o.id for o in created if o.id is not None) if list_ids else [],
            "updates": [{"id": o.id, "fields": o.changed} for o in updated],
        },
    )


def ingest_frame(
    session: Session,
    frame: pd.DataFrame,
    *,
    user_name: str | None,
    scope_code: str | None,
    now: dt.datetime | None = None,
    prior: dict[int, str] | None = None,
    bulk: bool = False,
    commit: bool = True,
    index_label: str = "item",
) -> IngestReport:
    """Run a typed batch frame through validate → locate → dedupe → store → rollups in one
    transaction and commit it. ``prior``: rejections found by the caller's parsing
    (input index → reason), reported in order with the rest. ``bulk`` (a file's chunk): the
    cases created are counted (``IngestReport.created_unlisted``), not listed, in the report
    and the audit entry, and stored by ``store``'s bulk path."""
    now = now or dt.datetime.now(dt.UTC)
    r = _Reasons(len(frame))
    frame = validate(frame, now, r)
    locate(session, frame, r, scope_code)
    dedupe(frame, r, index_label)
    good = frame[r.ok].reset_index(drop=True)
    route_frame(session, good)
    rejected = [
        Outcome(index=int(i), status="rejected", source=_text(s), external_id=_text(e), reason=why)
        for i, s, e, why in zip(
            frame["index"], frame["source"], frame["external_id"], r.reason, strict=True
        )
        if why is not None
    ]
    rejected += [
        Outcome(index=i, status="rejected", reason=why) for i, why in (prior or {}).items()
    ]
    outcomes: list[Outcome] = []
    added: dict[str, np.ndarray] | None = None
    for attempt in range(6):
        lock = _sqlite_writer if session.get_bind().dialect.name == "sqlite" else None
        try:
            if lock:
                lock.acquire()
            try:
                _take_write_lock(session)
                outcomes, changes, added = store(session, good, now, bulk=bulk)
                apply_case_changes(session, changes, added=added)
                _audit_batch(
                    session,
                    outcomes,
                    len(rejected),
                    user_name,
                    scope_code,
                    list_ids=not bulk,
                    added=added,
                )
                if commit:
                    session.commit()
                else:
                    session.flush()
            finally:
                if lock:
                    lock.release()
            break
        except DBAPIError as exc:
            session.rollback()
            if not _retryable(exc) or attempt == 5:
                raise
            time.sleep(0.05 * (attempt + 1))
    report = IngestReport(sorted(outcomes + rejected, key=lambda o: o.index))
    if bulk and added is not None:
        report.created_unlisted = len(added["leaf_unit_id"])
    return report
