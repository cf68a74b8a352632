"""The alert lifecycle: compute every episode up to a day and keep the ``alert`` table in
step with it; list the alerts a caller may see.

Kinds: ``caseload`` (a unit's 7-day caseload, all or one category, above its pattern),
``overdue`` (overdue open cases piling up), ``unstaffed_grid`` (a grid without an active
full-time worker). A caseload or overdue alert is identified by (unit, kind, category,
opened_on): a run recomputes the history from the rollups, updates the alerts it finds
again, adds new ones and drops those the data no longer supports.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from api.alerts.data import TESTED_LEVELS, last_reported_day, load_matrices
from api.alerts.detector import DetectorConfig, Episodes, detect_caseload, detect_overdue
from api.db.models import AdminUnit, Alert, GridWorker, UnitAncestry
from api.domain import CATEGORIES, CATEGORY_BY_CODE
from api.principal import Principal
from api.services.scope import check_scope, subtree_codes

KINDS = ("caseload", "overdue", "unstaffed_grid", "slow_response")
TRACE_DAYS = 60  # days of observed-vs-expected kept in an alert's detail


@dataclass
class RunSummary:
    """What a run found."""

    on: dt.date | None
    days: int = 0
    opened: dict[str, int] = field(default_factory=dict)  # open alerts by kind
    episodes: dict[str, int] = field(default_factory=dict)  # all episodes by kind
    seconds: float = 0.0


def _round(x: float, digits: int = 4) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else round(x, digits)


def _rows(
    episodes: Episodes, codes: list[str], level: str, kind: str, start: dt.date, n_days: int
) -> list[dict]:
    """Alert rows (as dicts) from a level's episodes."""
    rows = []
    for i in range(len(episodes)):
        series = int(episodes.series[i])
        category = CATEGORIES[series - 1].code if kind == "caseload" and series > 0 else None
        first, last = int(episodes.first[i]), int(episodes.last[i])
        ongoing = bool(episodes.ongoing[i])
        trace = episodes.trace[i][-TRACE_DAYS:]
        rows.append(
            {
                "unit_code": codes[int(episodes.unit[i])],
                "kind": kind,
                "category": category,
                "status": "open" if ongoing else "closed",
                "observed": _round(episodes.observed[i], 2),
                "expected": _round(episodes.expected[i], 2),
                "probability": float(episodes.p[i]),
                "opened_on": start + dt.timedelta(days=first),
                "last_seen_on": start + dt.timedelta(days=last),
                "closed_on": None if ongoing else start + dt.timedelta(days=last + 1),
                "detail": {
                    "level": level,
                    "window_days": 1 if kind == "overdue" else 7,
                    "peak": {
                        "day": (start + dt.timedelta(days=int(episodes.peak_day[i]))).isoformat(),
                        "observed": _round(episodes.peak_observed[i], 2),
                        "expected": _round(episodes.peak_expected[i], 2),
                        "probability": float(episodes.peak_p[i]),
                    },
                    "trace": [
                        {
                            "day": (start + dt.timedelta(days=int(d))).isoformat(),
                            "observed": _round(o, 2),
                            "expected": _round(e, 2),
                            "probability": float(p),
                        }
                        for d, o, e, p in trace
                    ],
                },
            }
        )
    return rows


def compute_alert_rows(
    session: Session,
    on: dt.date,
    cfg: DetectorConfig | None = None,
    levels: tuple[str, ...] = TESTED_LEVELS,
) -> tuple[list[dict], int]:
    """Caseload and overdue alert rows of every episode up to ``on`` (and the days scanned)."""
    cfg = cfg or DetectorConfig()
    data = load_matrices(session, on, levels)
    rows: list[dict] = slow_response_rows(session, on, cfg)
    if data is None or not data.levels:
        _link_children(session, rows)
        return rows, 0
    caseload = detect_caseload([lv.series for lv in data.levels], cfg)
    for lv, episodes in zip(data.levels, caseload, strict=True):
        rows += _rows(episodes, lv.codes, lv.level, "caseload", data.start, data.n_days)
        overdue = detect_overdue(lv.overdue, cfg)
        rows += _rows(overdue, lv.codes, lv.level, "overdue", data.start, data.n_days)
    _link_children(session, rows)
    return rows, data.n_days


def slow_response_rows(session: Session, on: dt.date, cfg: DetectorConfig | None) -> list[dict]:
    """Slow-response alert rows (``api.alerts.response``) of every episode up to ``on``."""
    from api.alerts.response import detect_slow_response, load_response

    start = on - dt.timedelta(days=7 * 20)
    data = load_response(session, start, on)
    if not data or not any(events.any() for *_, events in data):
        return []
    found = detect_slow_response([(m, e) for _, _, m, e in data], base=cfg)
    n_days = (on - start).days + 1
    rows: list[dict] = []
    for (level, codes, *_), episodes in zip(data, found, strict=True):
        rows += _rows(episodes, codes, level, "slow_response", start, n_days)
    return rows


def _link_children(session: Session, rows: list[dict]) -> None:
    """Name, in a unit's alert, the child units alerted for the same kind and category
    during it (a town's excess is often one village's burst: look there first)."""
    parent = dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.parent_code).where(AdminUnit.valid_to.is_(None))
        ).all()
    )
    by_parent: dict[tuple, list[dict]] = {}
    for r in rows:
        up = parent.get(r["unit_code"])
        if up is not None:
            by_parent.setdefault((up, r["kind"], r["category"]), []).append(r)
    for r in rows:
        children = by_parent.get((r["unit_code"], r["kind"], r["category"]), [])
        overlapping = sorted(
            {
                c["unit_code"]
                for c in children
                if c["opened_on"] <= r["last_seen_on"] and c["last_seen_on"] >= r["opened_on"]
            }
        )
        if overlapping:
            r["detail"]["children_alerted"] = overlapping


def _key(row) -> tuple:
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    return (get("unit_code"), get("kind"), get("category"), get("opened_on"))


def unstaffed_grids(session: Session) -> list[str]:
    """Codes of current grids without an active full-time worker."""
    staffed = exists().where(
        GridWorker.grid_code == AdminUnit.code,
        GridWorker.role == "full_time",
        GridWorker.active.is_(True),
    )
    return list(
        session.scalars(
            select(AdminUnit.code)
            .where(AdminUnit.level == "grid", AdminUnit.valid_to.is_(None), ~staffed)
            .order_by(AdminUnit.code)
        )
    )


def _sync_grids(session: Session, on: dt.date) -> int:
    """Open an alert per unstaffed grid (kept open while it stays so), close the others."""
    unstaffed = set(unstaffed_grids(session))
    current = {
        a.unit_code: a
        for a in session.scalars(
            select(Alert).where(Alert.kind == "unstaffed_grid", Alert.status == "open")
        )
    }
    for code, alert in current.items():
        if code in unstaffed:
            alert.last_seen_on = max(alert.last_seen_on, on)
        else:
            alert.status, alert.closed_on = "closed", on
    for code in sorted(unstaffed - current.keys()):
        session.add(
            Alert(
                unit_code=code,
                kind="unstaffed_grid",
                category=None,
                status="open",
                observed=0.0,
                expected=1.0,
                probability=None,
                opened_on=on,
                last_seen_on=on,
                detail={"level": "grid", "full_time_workers": 0},
            )
        )
    return len(unstaffed)


def run_alerts(session: Session, on: dt.date | None = None, cfg: DetectorConfig | None = None):
    """Compute every alert up to ``on`` (default: the last day with reported cases) and bring the
    ``alert`` table in step; the caller commits. Returns a :class:`RunSummary`."""
    import time

    t0 = time.perf_counter()
    if on is None:
        on = last_reported_day(session)
    rows, n_days = compute_alert_rows(session, on, cfg)
    fresh = {_key(r): r for r in rows}
    computed = ("caseload", "overdue", "slow_response")
    existing = list(session.scalars(select(Alert).where(Alert.kind.in_(computed))))
    stale = []
    for alert in existing:
        row = fresh.pop(_key(alert), None)
        if row is None:
            stale.append(alert.id)
            continue
        for name, value in row.items():
            setattr(alert, name, value)
    for i in range(0, len(stale), 500):
        session.execute(delete(Alert).where(Alert.id.in_(stale[i : i + 500])))
    if fresh:
        session.add_all(Alert(**row) for row in fresh.values())
    grids = _sync_grids(session, on)
    session.flush()
    summary = RunSummary(on=on, days=n_days, seconds=time.perf_counter() - t0)
    for kind in computed:
        summary.episodes[kind] = sum(r["kind"] == kind for r in rows)
        summary.opened[kind] = sum(r["kind"] == kind and r["status"] == "open" for r in rows)
    summary.episodes["unstaffed_grid"] = summary.opened["unstaffed_grid"] = grids
    return summary


# ---------------------------------------------------------------- reading


def describe(alert: Alert, unit: AdminUnit | None) -> dict:
    """An alert as JSON-ready data with a sentence a person can check."""
    category = CATEGORY_BY_CODE.get(alert.category) if alert.category else None
    what_zh = category.name_zh if category else "全部案件"
    what_en = category.name_en if category else "all cases"
    if alert.kind == "caseload":
        message = (
            f"{what_en}: {alert.observed:g} cases in the last 7 days against "
            f"{alert.expected:.1f} expected from this unit's own pattern "
            f"(probability {alert.probability:.1e}), since {alert.opened_on.isoformat()}"
        )
    elif alert.kind == "overdue":
        message = (
            f"{alert.observed:g} overdue cases open against a recent level of "
            f"{alert.expected:.1f}, since {alert.opened_on.isoformat()}"
        )
    elif alert.kind == "slow_response":
        message = (
            f"{alert.observed:g} events missed the 5-minute on-scene target in the last 7 "
            f"days against {alert.expected:.1f} expected from this unit's own history "
            f"(probability {alert.probability:.1e}), since {alert.opened_on.isoformat()}"
        )
    else:
        message = f"grid without a full-time worker since {alert.opened_on.isoformat()}"
    return {
        "id": alert.id,
        "unit_code": alert.unit_code,
        "unit_name": unit.name if unit else None,
        "level": unit.level if unit else (alert.detail or {}).get("level"),
        "kind": alert.kind,
        "category": alert.category,
        "category_zh": what_zh,
        "category_en": what_en,
        "status": alert.status,
        "observed": alert.observed,
        "expected": alert.expected,
        "probability": alert.probability,
        "opened_on": alert.opened_on,
        "last_seen_on": alert.last_seen_on,
        "closed_on": alert.closed_on,
        "message": message,
    }


def list_alerts(
    session: Session,
    principal: Principal,
    unit_code: str | None = None,
    status: str | None = "open",
    kind: str | None = None,
    category: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Alerts on units in the subtree of ``unit_code`` (default: the caller's home unit),
    most significant first; ``unit_code`` outside the caller's jurisdiction is a 404. Each
    carries ``path``: the codes from ``unit_code`` down to the alerted unit."""
    root = principal.unit_code
    if unit_code is not None:
        root = check_scope(session, principal, unit_code).code
    stmt = select(Alert).where(Alert.unit_code.in_(subtree_codes(root)))
    if status in ("open", "closed"):
        stmt = stmt.where(Alert.status == status)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if category is not None:
        stmt = stmt.where(Alert.category == category)
    stmt = stmt.order_by(
        Alert.status.desc(), Alert.last_seen_on.desc(), Alert.probability, Alert.id
    ).limit(limit)
    alerts = list(session.scalars(stmt))
    units = {
        u.code: u
        for u in session.scalars(
            select(AdminUnit).where(
                AdminUnit.code.in_({a.unit_code for a in alerts}), AdminUnit.valid_to.is_(None)
            )
        )
    }
    paths = _paths(session, {a.unit_code for a in alerts}, root)
    out = []
    for a in alerts:
        row = describe(a, units.get(a.unit_code))
        row["path"] = paths.get(a.unit_code, [a.unit_code])
        out.append(row)
    return out


def _paths(session: Session, codes: set[str], root: str) -> dict[str, list[str]]:
    """Per unit code, the codes from ``root`` down to the unit (both included): where a map
    of ``root``'s children puts the unit's marker. Nothing above ``root`` is named."""
    rows = session.execute(
        select(AdminUnit.code, UnitAncestry.ancestor_code, UnitAncestry.distance)
        .join(UnitAncestry, UnitAncestry.unit_id == AdminUnit.id)
        .where(AdminUnit.code.in_(codes), AdminUnit.valid_to.is_(None))
    ).all()
    chains: dict[str, list[tuple[int, str]]] = {}
    for code, ancestor, distance in rows:
        chains.setdefault(code, []).append((distance, ancestor))
    out = {}
    for code, chain in chains.items():
        chain.sort(reverse=True)  # farthest ancestor first
        names = [c for _, c in chain]
        out[code] = names[names.index(root) :] if root in names else [code]
    return out


def open_alerts(session: Session, principal: Principal, unit_code: str | None = None) -> list[dict]:
    """The open alerts the caller may see (under ``unit_code`` if given): for the dashboard."""
    return list_alerts(session, principal, unit_code=unit_code, status="open")


def get_alert(session: Session, principal: Principal, alert_id: int) -> dict | None:
    """One alert with its detail (peak, observed-vs-expected trace), if in scope."""
    from api.services.scope import in_scope

    alert = session.get(Alert, alert_id)
    if alert is None or not in_scope(session, principal.unit_code, alert.unit_code):
        return None
    unit = session.scalar(
        select(AdminUnit).where(AdminUnit.code == alert.unit_code, AdminUnit.valid_to.is_(None))
    )
    out = describe(alert, unit)
    out["detail"] = alert.detail or {}
    return out


def alert_counts(alerts: list[dict]) -> dict[str, int]:
    """Open alerts per kind (for a summary line)."""
    kinds, counts = np.unique([a["kind"] for a in alerts] or [""], return_counts=True)
    return {str(k): int(n) for k, n in zip(kinds, counts, strict=True) if k}
