"""Dispatch event intake (警情/事件): validate → locate → dedupe → merge → store → rollups, in
one transaction, and the scoped list. See docs/events.md.

- **Validate**: type (code or Chinese name; from the category when only that is given),
  category of that type, priority 1..3, received_at between 1990 and now (+ clock skew),
  the step times in order (received ≤ set off ≤ on scene ≤ closed; support and cordon
  after receipt and before the close), none in the future; the force kind known, the
  patrol unit (when given) a known unit of that kind, the linked case an existing one.
- **Locate**: the case intake's locator (``api.services.cases.locate``): unit_code, or the
  point (GCJ-02 converted) in a leaf or within the locate tolerance of one; a point outside
  the city is refused, told how far it lies.
- **Merge** (late updates): a re-sent (source, external_id) keeps its stored values for
  the fields it leaves blank and takes the ones it gives, so an on-scene time can arrive
  after the event; the merged event is validated again (its times in order).
- **Store**: one transaction; the rollups moved by ``apply_changes(EVENTS, ...)``.

``ingest_events(..., all_or_nothing=True)`` (the API) stores nothing when an item is
refused; a file's chunk stores its good rows (like ``import-cases``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.events import (
    CATEGORY_TYPE,
    DAY_STARTS,
    EVENT_TYPES,
    FORCE_KINDS,
    NIGHT_STARTS,
    OUTCOMES,
    DispatchEvent,
    PatrolUnit,
)
from api.db.models import AdminUnit, Case
from api.engine import EVENTS, apply_changes
from api.errors import ApiError
from api.services.audit import audit
from api.services.cases import CRS, EARLIEST, IngestReport, Outcome, _Reasons, locate
from api.services.local_time import CLOCK_SKEW, local_zone
from api.services.scope import in_scope, subtree_unit_ids
from api.services.units import get_unit

TIMES = ("received_at", "set_off_at", "on_scene_at", "support_at", "cordon_at", "closed_at")
FIELDS = (
    "source",
    "external_id",
    "type",
    "category",
    "priority",
    *TIMES,
    "support_requested",
    "cordon_ordered",
    "force_kind",
    "patrol_unit_code",
    "outcome",
    "case_id",
    "lon",
    "lat",
    "crs",
    "unit_code",
)
# the stored fields a re-send may change (blank: keep the stored value)
MERGED = tuple(f for f in FIELDS if f not in ("source", "external_id", "crs", "unit_code"))
PLACE = ("leaf_unit_id", "village_code", "grid_code", "placed_by_tolerance")
ROLLUP_COLUMNS = (
    "leaf_unit_id",
    "received_at",
    "type",
    "force_kind",
    "shift",
    "set_off_at",
    "on_scene_at",
    "support_requested",
    "support_at",
    "cordon_ordered",
    "cordon_at",
)
_TYPE_NAMES = {c: c for c in EVENT_TYPES} | {zh: c for c, (zh, _) in EVENT_TYPES.items()}
_FORCE_NAMES = {c: c for c in FORCE_KINDS} | {zh: c for c, (zh, _) in FORCE_KINDS.items()}
MAX_PAGE = 1000


def frame_from_items(items: Sequence[dict]) -> pd.DataFrame:
    """Plain dicts (the API's items, a file's rows) as a batch frame: ``index`` (input
    position) and every field of ``FIELDS`` (None where not given)."""
    frame = pd.DataFrame(
        {f: pd.Series([item.get(f) for item in items], dtype=object) for f in FIELDS}
    )
    frame.insert(0, "index", np.arange(len(items), dtype=np.int64))
    return frame


def _blank(v) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and v != v) or v == ""


def _utc(v) -> dt.datetime | None:
    """A datetime (naive: local time) or ISO text as an aware UTC datetime; None if blank.
    ValueError when unreadable."""
    if _blank(v):
        return None
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v.strip().replace("/", "-").replace("Z", "+00:00"))
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if not isinstance(v, dt.datetime):
        raise ValueError(f"{v!r} is not a date-time")
    if v.tzinfo is None:
        v = v.replace(tzinfo=local_zone())
    return v.astimezone(dt.UTC)


def _flag(v) -> bool | None:
    if _blank(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    text = str(v).strip().lower()
    if text in ("1", "true", "yes", "y", "是", "t"):
        return True
    if text in ("0", "false", "no", "n", "否", "f"):
        return False
    raise ValueError(f"{v!r} is not true or false")


def shift_of(received_at: dt.datetime) -> str:
    """``day`` (07:00-18:59 local) or ``night``."""
    hour = received_at.astimezone(local_zone()).hour
    return "day" if DAY_STARTS <= hour < NIGHT_STARTS else "night"


def _clean(row: dict) -> dict:
    """One item's fields as types, raising ValueError with the reason for the first one
    that cannot be read."""
    out = {}
    for f in FIELDS:
        v = row.get(f)
        if f in TIMES:
            try:
                out[f] = _utc(v)
            except ValueError:
                raise ValueError(f"{f} {v!r} is not a date-time") from None
        elif f in ("support_requested", "cordon_ordered"):
            try:
                out[f] = _flag(v)
            except ValueError as exc:
                raise ValueError(f"{f}: {exc}") from None
        elif f in ("priority", "case_id"):
            if _blank(v):
                out[f] = None
            else:
                try:
                    number = float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{f} {v!r} is not a whole number") from None
                if not number.is_integer():
                    raise ValueError(f"{f} {v!r} is not a whole number")
                out[f] = int(number)
        elif f in ("lon", "lat"):
            if _blank(v):
                out[f] = None
            else:
                try:
                    out[f] = float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{f} {v!r} is not a number") from None
        else:
            out[f] = None if _blank(v) else str(v).strip()
    return out


def check_event(e: dict, now: dt.datetime) -> str | None:
    """The reason a merged event (typed values) is refused, or None. Fills in ``type``
    from the category and ``shift`` from the receipt time, and the two flags from the
    times given."""
    for col, limit in (("source", 32), ("external_id", 64)):
        if not e.get(col):
            return f"{col} is missing"
        if len(e[col]) > limit:
            return f"{col} is longer than {limit} characters"
    category = e.get("category")
    if category is not None and category not in CATEGORY_TYPE:
        return f"unknown category {category!r}: use one of {', '.join(sorted(CATEGORY_TYPE))}"
    kind = e.get("type")
    if kind is None and category is not None:
        kind = CATEGORY_TYPE[category]
    if kind is None:
        return "type is missing"
    if kind not in _TYPE_NAMES:
        return f"unknown type {kind!r}: use one of {', '.join(EVENT_TYPES)}"
    e["type"] = _TYPE_NAMES[kind]
    if category is not None and CATEGORY_TYPE[category] != e["type"]:
        return f"category {category!r} is of type {CATEGORY_TYPE[category]!r}, not {e['type']!r}"
    priority = e.get("priority") or 2
    if not 1 <= priority <= 3:
        return f"priority {priority} is out of range: 1 (urgent) .. 3 (routine)"
    e["priority"] = priority
    received = e.get("received_at")
    if received is None:
        return "received_at is missing"
    if received < dt.datetime.combine(EARLIEST, dt.time(), local_zone()):
        return f"received_at {received.isoformat()} is before 1990-01-01"
    for f in TIMES:
        if e.get(f) is not None and e[f] > now + CLOCK_SKEW:
            return f"{f} {e[f].isoformat()} is in the future"
    order = [f for f in ("received_at", "set_off_at", "on_scene_at", "closed_at") if e.get(f)]
    for a, b in itertools.pairwise(order):
        if e[b] < e[a]:
            return f"timestamps out of order: {b} {e[b].isoformat()} is before {a}"
    for f in ("support_at", "cordon_at"):
        if e.get(f) is not None and e[f] < received:
            return f"timestamps out of order: {f} {e[f].isoformat()} is before received_at"
        if e.get(f) is not None and e.get("closed_at") and e["closed_at"] < e[f]:
            return f"timestamps out of order: closed_at is before {f}"
    for f, flag in (("support_at", "support_requested"), ("cordon_at", "cordon_ordered")):
        e[flag] = bool(e.get(flag) or e.get(f) is not None)  # a time given: it was needed
    force = e.get("force_kind")
    if force is not None and force not in _FORCE_NAMES:
        return f"unknown force {force!r}: use one of {', '.join(FORCE_KINDS)}"
    e["force_kind"] = _FORCE_NAMES.get(force) if force else None
    outcome = e.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        return f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}"
    e["shift"] = shift_of(received)
    return None


def _patrol_units(session: Session, codes: set[str]) -> dict[str, str]:
    """code → force kind of the patrol units among ``codes``."""
    out: dict[str, str] = {}
    listed = sorted(codes)
    for i in range(0, len(listed), 500):
        out.update(
            session.execute(
                select(PatrolUnit.code, PatrolUnit.force_kind).where(
                    PatrolUnit.code.in_(listed[i : i + 500])
                )
            ).all()
        )
    return out


def _stored(session: Session, keys: list[tuple[str, str]]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    by_source: dict[str, list[str]] = {}
    for source, external_id in sorted(set(keys)):
        by_source.setdefault(source, []).append(external_id)
    columns = [c for c in DispatchEvent.__table__.columns]
    for source, ids in by_source.items():
        for i in range(0, len(ids), 500):
            stmt = (
                select(*columns)
                .where(DispatchEvent.source == source)
                .where(DispatchEvent.external_id.in_(ids[i : i + 500]))
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            for row in session.execute(stmt).mappings():
                out[(row["source"], row["external_id"])] = dict(row)
    return out


def _columns(events: list[dict]) -> dict[str, np.ndarray]:
    """Events as the columns the rollups read."""
    out: dict[str, np.ndarray] = {}
    for c in ROLLUP_COLUMNS:
        values = [e.get(c) for e in events]
        if c == "leaf_unit_id":
            out[c] = np.array(values, dtype=np.int64)
        elif c in ("support_requested", "cordon_ordered"):
            out[c] = np.array(values, dtype=bool)
        elif c.endswith("_at"):
            out[c] = np.array(
                [
                    np.datetime64("NaT", "us")
                    if v is None
                    else np.datetime64(v.astimezone(dt.UTC).replace(tzinfo=None), "us")
                    for v in values
                ],
                dtype="datetime64[us]",
            )
        else:
            out[c] = np.array(values, dtype=object)
    return out


def ingest_events(session: Session, items: Sequence[dict], **options) -> IngestReport:
    """Store a batch of events (see ``_ingest_once``); a race with another writer storing
    the same new (source, external_id) at once is retried, the key then found stored."""
    for attempt in range(3):
        try:
            return _ingest_once(session, items, **options)
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ingest_once(
    session: Session,
    items: Sequence[dict],
    *,
    user_name: str | None,
    scope_code: str | None,
    now: dt.datetime | None = None,
    prior: dict[int, str] | None = None,
    all_or_nothing: bool = True,
    indexes: Sequence[int] | None = None,
    index_label: str = "item",
) -> IngestReport:
    """Store a batch of events (plain dicts of ``FIELDS``) in one transaction and commit:
    each is created, updated (a late update), unchanged or rejected with its reason.
    ``all_or_nothing``: one rejected item and nothing is stored (every reason is told);
    else the good items land. ``indexes``: each item's number in the answer (line numbers
    of a file); ``prior``: items refused by the caller's parsing."""
    now = now or dt.datetime.now(dt.UTC)
    n = len(items)
    indexes = list(indexes) if indexes is not None else list(range(n))
    r = _Reasons(n)
    typed: list[dict] = []
    for i, raw in enumerate(items):
        try:
            typed.append(_clean(raw))
        except ValueError as exc:
            typed.append(
                {f: raw.get(f) if f in ("source", "external_id") else None for f in FIELDS}
            )
            r.reason[i] = str(exc)
    frame = pd.DataFrame(typed, columns=list(FIELDS))
    frame.insert(0, "index", np.asarray(indexes, dtype=np.int64))
    _locate(session, frame, typed, r, scope_code)
    keys = [(t["source"], t["external_id"]) for t in typed]
    first: dict[tuple, int] = {}
    for i in np.flatnonzero(r.ok):  # within a batch the first item of a key wins
        if keys[i] in first:
            r.reason[i] = (
                f"duplicate of {index_label} {first[keys[i]]} in this batch (same source and "
                "external_id); the first one is kept"
            )
        else:
            first[keys[i]] = indexes[i]
    stored = _stored(session, [k for k, ok in zip(keys, r.ok, strict=True) if ok])
    units = _patrol_units(
        session,
        {
            t["patrol_unit_code"]
            for t, ok in zip(typed, r.ok, strict=True)
            if ok and t["patrol_unit_code"]
        },
    )
    case_ids = {t["case_id"] for t, ok in zip(typed, r.ok, strict=True) if ok and t["case_id"]}
    known_cases = (
        set(session.scalars(select(Case.id).where(Case.id.in_(sorted(case_ids)))))
        if case_ids
        else set()
    )
    merged: list[dict | None] = [None] * n
    scope_ids: list[set[int]] = []

    def allowed() -> set[int]:
        if not scope_ids:
            scope_ids.append(set(session.scalars(subtree_unit_ids(scope_code))))
        return scope_ids[0]

    for i in np.flatnonzero(r.ok):
        t, old = typed[i], stored.get(keys[i])
        event = dict(old) if old else {"support_requested": None, "cordon_ordered": None}
        event["source"], event["external_id"] = keys[i]
        for f in MERGED:
            if t[f] is not None:
                event[f] = t[f]
        if t["_placed"]:
            event.update({p: t[p] for p in PLACE})
        event.setdefault("type", None)
        why = (
            check_event(event, now) or _check_force(event, units, t) or _check_case(t, known_cases)
        )
        if why is None and "leaf_unit_id" not in event:
            why = "give a location: lon and lat, or unit_code"
        if why is None and old and scope_code and old["leaf_unit_id"] not in allowed():
            why = f"the event lies outside your jurisdiction ({scope_code})"
        if why:
            r.reason[i] = why
        else:
            merged[i] = event
    rejected = [
        Outcome(
            index=indexes[i],
            status="rejected",
            source=_text(typed[i]["source"]),
            external_id=_text(typed[i]["external_id"]),
            reason=r.reason[i],
        )
        for i in np.flatnonzero(~r.ok)
    ] + [Outcome(index=i, status="rejected", reason=why) for i, why in (prior or {}).items()]
    if all_or_nothing and rejected:
        session.rollback()
        return IngestReport(sorted(rejected, key=lambda o: o.index))
    outcomes, olds, news, inserts = [], [], [], []
    for i, event in enumerate(merged):
        if event is None:
            continue
        base = {"index": indexes[i], "source": keys[i][0], "external_id": keys[i][1]}
        old = stored.get(keys[i])
        if old is None:
            event.update(created_at=now, updated_at=now)
            inserts.append((i, event))
            continue
        changed = sorted(
            f for f in (*MERGED, *PLACE, "shift") if not _same(old.get(f), event.get(f))
        )
        if not changed:
            outcomes.append(Outcome(status="unchanged", id=old["id"], **base))
            continue
        session.execute(
            update(DispatchEvent)
            .where(DispatchEvent.id == old["id"])
            .values(**{f: event[f] for f in changed}, updated_at=now)
        )
        olds.append(old)
        news.append(event)
        outcomes.append(Outcome(status="updated", id=old["id"], changed=changed, **base))
    if inserts:
        table = DispatchEvent.__table__
        values = [
            {c.name: e.get(c.name) for c in table.columns if c.name != "id"} for _, e in inserts
        ]
        ids = (
            session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), values
            )
            .scalars()
            .all()
        )
        for (i, _), id_ in zip(inserts, ids, strict=True):
            outcomes.append(
                Outcome(
                    index=indexes[i],
                    status="created",
                    source=keys[i][0],
                    external_id=keys[i][1],
                    id=id_,
                )
            )
        news.extend(e for _, e in inserts)
    parts = []
    if olds:
        parts.append((_columns(olds), -1))
    if news:
        parts.append((_columns(news), 1))
    apply_changes(session, EVENTS, parts)
    written = [o for o in outcomes if o.status in ("created", "updated")]
    if written:
        audit(
            session,
            user_name,
            scope_code,
            "event.ingest",
            target=",".join(sorted({o.source for o in written if o.source}))[:128],
            detail={
                "created": sum(o.status == "created" for o in written),
                "updated": [{"id": o.id, "fields": o.changed} for o in written if o.changed],
                "rejected": len(rejected),
            },
        )
    session.commit()
    return IngestReport(sorted(outcomes + rejected, key=lambda o: o.index))


def _text(v) -> str | None:
    return str(v) if isinstance(v, str | int) else None


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 1e-9
    return a == b


def _check_force(event: dict, units: dict[str, str], given: dict) -> str | None:
    code = event.get("patrol_unit_code")
    if code:
        kind = units.get(code)
        if kind is None and given.get("patrol_unit_code"):
            return f"unknown patrol unit {code!r}: register it first (patrol_unit)"
        if kind is not None and event.get("force_kind") and event["force_kind"] != kind:
            return f"patrol unit {code!r} is {kind!r}, not {event['force_kind']!r}"
        event["force_kind"] = event.get("force_kind") or kind
    if not event.get("force_kind"):
        return "force_kind is missing: police, unit_security, grid_patrol or volunteer"
    return None


def _check_case(given: dict, known: set[int]) -> str | None:
    case_id = given.get("case_id")
    if case_id is not None and case_id not in known:
        return f"no case {case_id}: link an existing case or leave case_id blank"
    return None


def _locate(
    session: Session, frame: pd.DataFrame, typed: list[dict], r: _Reasons, scope: str | None
) -> None:
    """Place the items that give a location (the case intake's locator and its rules);
    items without one keep their stored place (a late update)."""
    crs = [(t["crs"] or "wgs84").lower() for t in typed]
    lon = np.array([np.nan if t["lon"] is None else t["lon"] for t in typed], dtype=np.float64)
    lat = np.array([np.nan if t["lat"] is None else t["lat"] for t in typed], dtype=np.float64)
    given = ~np.isnan(lon) | ~np.isnan(lat)
    has_code = np.array([bool(t["unit_code"]) for t in typed], dtype=bool)
    r.fail(given & (np.isnan(lon) | np.isnan(lat)), "give both lon and lat")
    r.fail(
        given & ~np.isin(crs, CRS),
        lambda v: f"unknown crs {v!r}: use wgs84, gcj02 or cgcs2000",
        np.array(crs, dtype=object),
    )
    with np.errstate(invalid="ignore"):
        swapped = given & (np.abs(lat) > 90) & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
    r.fail(swapped, "lat is out of range -90..90: lon and lat look swapped")
    with np.errstate(invalid="ignore"):
        r.fail(
            given & ((np.abs(lat) > 90) | (np.abs(lon) > 180)),
            "lon/lat out of range (lon -180..180, lat -90..90)",
        )
    gcj = given & (np.array(crs) == "gcj02") & r.ok
    if gcj.any():
        from geo.locate import gcj02_to_wgs84

        lon[gcj], lat[gcj] = gcj02_to_wgs84(lon[gcj], lat[gcj])
    placing = (given | has_code) & r.ok
    part = frame[placing].copy()
    if len(part):
        part["lon"], part["lat"] = lon[placing], lat[placing]
        part["has_code"] = has_code[placing]
        sub = _Reasons(len(part))
        locate(session, part, sub, scope)
        rows = np.flatnonzero(placing)
        leaf = part["leaf_unit_id"].to_numpy().tolist()
        village = part["village_code"].tolist()
        grid = part["grid_code"].tolist()
        tolerance = part["placed_by_tolerance"].to_numpy(bool).tolist()
        for j, i in enumerate(rows):
            why = sub.reason[j]
            if why is not None:
                r.reason[i] = why.replace("the case lies", "the event lies")
            else:
                typed[i].update(
                    leaf_unit_id=int(leaf[j]),
                    village_code=village[j],
                    grid_code=grid[j],
                    placed_by_tolerance=tolerance[j],
                    lon=None if np.isnan(lon[i]) else float(lon[i]),
                    lat=None if np.isnan(lat[i]) else float(lat[i]),
                )
    for i, t in enumerate(typed):
        t["_placed"] = bool(placing[i]) and r.reason[i] is None


# ---------------------------------------------------------------- the list


def _out(e: DispatchEvent) -> dict:
    return {
        c.name: getattr(e, c.name)
        for c in DispatchEvent.__table__.columns
        if c.name not in ("created_at", "updated_at")
    }


def list_events(
    session: Session,
    user,
    unit_code: str | None = None,
    type: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> dict:
    """One page of the events in ``user``'s subtree (or ``unit_code``'s, inside it, else
    404), newest id first: ``{"items": [...], "next_cursor": id | None}``."""
    root = user.unit_code
    if unit_code is not None:
        if get_unit(session, unit_code) is None or not in_scope(session, root, unit_code):
            raise ApiError(404, f"no unit {unit_code!r} in your jurisdiction")
        root = unit_code
    stmt = select(DispatchEvent).where(DispatchEvent.leaf_unit_id.in_(subtree_unit_ids(root)))
    if type is not None:
        if type not in EVENT_TYPES:
            raise ApiError(422, f"unknown type {type!r}: use one of {', '.join(EVENT_TYPES)}")
        stmt = stmt.where(DispatchEvent.type == type)
    zone = local_zone()
    if start is not None:
        stmt = stmt.where(DispatchEvent.received_at >= dt.datetime.combine(start, dt.time(), zone))
    if end is not None:
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
        stmt = stmt.where(DispatchEvent.received_at < after)
    if cursor is not None:
        stmt = stmt.where(DispatchEvent.id < cursor)
    limit = max(1, min(int(limit), MAX_PAGE))
    rows = session.scalars(stmt.order_by(DispatchEvent.id.desc()).limit(limit + 1)).all()
    items = [_out(e) for e in rows[:limit]]
    return {"items": items, "next_cursor": rows[limit - 1].id if len(rows) > limit else None}


def unit_id_of(session: Session, code: str) -> int | None:
    """The id of the current unit ``code``."""
    return session.scalar(
        select(AdminUnit.id).where(AdminUnit.code == code).where(AdminUnit.valid_to.is_(None))
    )
