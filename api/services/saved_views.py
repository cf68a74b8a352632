"""Saved views and composed walls: stored, listed and opened within the caller's scope.

A saved view is private to its owner, or shared within the owner's jurisdiction (its
``home_code``): anyone whose home unit lies in that subtree (or above it) may open it. A
view is always shown to each viewer in their own scope: its unit when the viewer holds it,
else the viewer's home unit — never a unit outside the viewer's jurisdiction, and never
its code either.

A wall (``/dashboard/wall/<name>``) stands at a unit; only callers who hold that unit in
scope may read it. Its views are named by slug (opened for the reader, as above) or
written inline; its KPI cards are metric ids; thresholds turn a figure red; ``ticker``
shows the open alerts. Every change bumps ``version``: a running wall compares it at
each refresh and redraws.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import engine
from api.db.models import AdminLevel
from api.db.saved import SavedView, Wall
from api.errors import ApiError
from api.principal import Principal
from api.services.scope import check_scope, in_scope, unit_in_scope

PERIODS = ("month", "quarter", "year", "30d")
COMPARES = ("yoy", "prev", "none")
CLASSES = ("quantiles", "natural_breaks", "equal_interval")
WALL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_WALL_VIEWS = 12
DEFAULT_SECONDS = 30
DEFAULT_REFRESH = 60


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- view specs


def check_spec(session: Session, who: Principal, spec: dict) -> dict:
    """A view's spec as stored: known metric, level, period, comparison, classes and
    layers, its unit inside ``who``'s scope; a 400 (or 404 for the unit) that says what
    to fix otherwise."""
    from api.services.layers import layer_names

    out: dict = {}
    unit = check_scope(session, who, str(spec.get("unit") or who.unit_code))
    out["unit"] = unit.code
    try:
        out["metric"] = engine.get_metric(str(spec.get("metric") or "caseload")).id
    except KeyError as exc:
        raise ApiError(400, exc.args[0]) from None
    level = spec.get("level")
    if level:
        levels = {lv.code: lv.depth for lv in session.scalars(select(AdminLevel))}
        if level not in levels:
            raise ApiError(400, f"unknown level {level!r}; levels: {', '.join(levels)}")
        out["level"] = level
    start, end = spec.get("start"), spec.get("end")
    if start or end:
        try:
            a, b = dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end))
        except ValueError:
            raise ApiError(400, "start and end must both be dates (YYYY-MM-DD)") from None
        if a > b:
            raise ApiError(400, "start must not be after end")
        out["start"], out["end"] = a.isoformat(), b.isoformat()
    else:
        period = spec.get("period") or "year"
        if period not in PERIODS:
            raise ApiError(400, f"bad period {period!r}: use {', '.join(PERIODS)} or start/end")
        out["period"] = period
    compare = spec.get("compare") or "yoy"
    if compare not in COMPARES:
        raise ApiError(400, f"bad compare {compare!r}: use yoy (同比), prev (环比) or none")
    out["compare"] = compare
    classes = spec.get("classes") or "quantiles"
    if classes not in CLASSES:
        raise ApiError(400, f"bad classes {classes!r}: use {', '.join(CLASSES)}")
    out["classes"] = classes
    layers = [str(x) for x in spec.get("layers") or []]
    unknown = [x for x in layers if x not in layer_names()]
    if unknown:
        raise ApiError(400, f"unknown layers {unknown}; layers: {', '.join(layer_names())}")
    out["layers"] = layers
    return out


def dashboard_path(spec: dict, unit: str) -> str:
    """The dashboard URL that shows ``spec`` at ``unit``."""
    params: dict[str, str] = {"metric": spec["metric"]}
    if spec.get("start"):
        params |= {"start": spec["start"], "end": spec["end"]}
    else:
        params["period"] = spec.get("period", "year")
    params |= {"compare": spec.get("compare", "yoy"), "method": spec.get("classes", "quantiles")}
    if spec.get("level"):
        params["show"] = spec["level"]
    if spec.get("layers"):
        params["layers"] = ",".join(spec["layers"])
    return f"/dashboard/unit/{unit}?{urlencode(params)}"


def for_viewer(session: Session, who: Principal, spec: dict) -> dict:
    """``spec`` as ``who`` sees it: its unit if in scope, else the viewer's home unit (the
    level kept only while it lies below that unit)."""
    out = dict(spec)
    if unit_in_scope(session, who.unit_code, spec["unit"]) is None:
        out["unit"] = who.unit_code
        out["clamped"] = True
    else:
        out["clamped"] = False
    return out


# ---------------------------------------------------------------- saved views


def _visible(who: Principal):
    """Rows ``who`` may open: its own, and those shared in a jurisdiction it lies in."""
    from api.services.scope import subtree_codes

    return or_(
        SavedView.owner_id == who.user_id,
        SavedView.shared.is_(True)
        & (
            SavedView.home_code.in_(_ancestor_codes_stmt(who.unit_code))
            | SavedView.home_code.in_(subtree_codes(who.unit_code))
        ),
    )


def _ancestor_codes_stmt(code: str):
    from api.db.models import AdminUnit, UnitAncestry

    return (
        select(UnitAncestry.ancestor_code)
        .join(AdminUnit, AdminUnit.id == UnitAncestry.unit_id)
        .where(AdminUnit.code == code)
    )


def describe_view(session: Session, who: Principal, row: SavedView) -> dict:
    """A saved view as ``who`` sees it (its unit clamped to ``who``'s scope)."""
    spec = for_viewer(session, who, row.spec)
    return {
        "slug": row.slug,
        "name": row.name,
        "shared": row.shared,
        "mine": row.owner_id == who.user_id,
        "spec": spec,
        "link": f"/v/{row.slug}",
        "dashboard": dashboard_path(spec, spec["unit"]),
        "updated_at": row.updated_at.isoformat(),
    }


def list_views(session: Session, who: Principal) -> list[dict]:
    """The views ``who`` may open, newest first."""
    rows = session.scalars(
        select(SavedView).where(_visible(who)).order_by(SavedView.updated_at.desc()).limit(500)
    )
    return [describe_view(session, who, r) for r in rows]


def get_view(session: Session, who: Principal, slug: str) -> SavedView:
    """The view ``slug`` if ``who`` may open it, else a 404 (never confirmed to exist)."""
    row = session.scalar(select(SavedView).where(SavedView.slug == slug, _visible(who)))
    if row is None:
        raise ApiError(404, f"no saved view {slug!r} that you may open")
    return row


def save_view(session: Session, who: Principal, name: str, shared: bool, spec: dict) -> SavedView:
    """Store a new view of ``who`` (shared in ``who``'s jurisdiction when ``shared``)."""
    if not name.strip():
        raise ApiError(400, "a view needs a name")
    checked = check_spec(session, who, spec)
    now = _now()
    row = SavedView(
        slug=secrets.token_urlsafe(6),
        name=name.strip()[:120],
        owner_id=who.user_id,
        home_code=who.unit_code,
        shared=shared,
        unit_code=checked["unit"],
        spec=checked,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def delete_view(session: Session, who: Principal, slug: str) -> None:
    """Delete ``who``'s own view ``slug`` (404 if it is not theirs)."""
    row = session.scalar(
        select(SavedView).where(SavedView.slug == slug, SavedView.owner_id == who.user_id)
    )
    if row is None:
        raise ApiError(404, f"no saved view {slug!r} of yours")
    session.delete(row)


# ---------------------------------------------------------------- walls


@dataclass(frozen=True)
class WallSpec:
    """A wall as an admin composes it (checked): its unit, views (each a saved view's
    slug or an inline spec, with seconds), KPI metric ids, thresholds per metric
    ({"above": x} or {"below": y}), the alerts ticker and the refresh interval."""

    unit: str
    title: str
    views: list[dict]
    kpis: list[str]
    thresholds: dict[str, dict[str, float]]
    ticker: bool
    refresh_seconds: int


def check_wall(session: Session, who: Principal, body: dict) -> WallSpec:
    """``body`` as a WallSpec, every unit and saved view inside ``who``'s scope."""
    unit = check_scope(session, who, str(body.get("unit") or who.unit_code)).code
    views = []
    for item in body.get("views") or []:
        seconds = int(item.get("seconds") or DEFAULT_SECONDS)
        if not 5 <= seconds <= 3600:
            raise ApiError(400, "a view stays on the wall between 5 and 3600 seconds")
        if item.get("view"):
            get_view(session, who, str(item["view"]))  # the admin may open it
            views.append({"view": str(item["view"]), "seconds": seconds})
        else:
            spec = check_spec(session, who, item.get("spec") or {"unit": unit})
            views.append({"spec": spec, "seconds": seconds})
    if len(views) > MAX_WALL_VIEWS:
        raise ApiError(400, f"at most {MAX_WALL_VIEWS} views on a wall")
    kpis = []
    for metric in body.get("kpis") or []:
        try:
            kpis.append(engine.get_metric(str(metric)).id)
        except KeyError as exc:
            raise ApiError(400, exc.args[0]) from None
    thresholds: dict[str, dict[str, float]] = {}
    for metric, rule in (body.get("thresholds") or {}).items():
        try:
            engine.get_metric(str(metric))
        except KeyError as exc:
            raise ApiError(400, exc.args[0]) from None
        if not isinstance(rule, dict) or not set(rule) <= {"above", "below"} or not rule:
            raise ApiError(400, f"threshold of {metric!r}: give {{'above': x}} or {{'below': y}}")
        try:
            thresholds[str(metric)] = {k: float(v) for k, v in rule.items()}
        except (TypeError, ValueError):
            raise ApiError(400, f"threshold of {metric!r} must be a number") from None
    refresh = int(body.get("refresh_seconds") or DEFAULT_REFRESH)
    if not 10 <= refresh <= 3600:
        raise ApiError(400, "refresh_seconds must be between 10 and 3600")
    title = str(body.get("title") or "").strip()[:120]
    return WallSpec(unit, title, views, kpis, thresholds, bool(body.get("ticker", True)), refresh)


def put_wall(session: Session, who: Principal, name: str, body: dict) -> Wall:
    """Create or replace the wall ``name`` (an admin's, at a unit in its scope). A wall
    that stands at a unit outside ``who``'s scope is not theirs to change: 404."""
    if not WALL_NAME.match(name):
        raise ApiError(400, "a wall's name is lowercase letters, digits, - and _ (max 64)")
    spec = check_wall(session, who, body)
    row = session.scalar(select(Wall).where(Wall.name == name))
    if row is not None and not in_scope(session, who.unit_code, row.unit_code):
        raise ApiError(404, f"no wall {name!r} in your jurisdiction")
    stored = {
        "views": spec.views,
        "kpis": spec.kpis,
        "thresholds": spec.thresholds,
        "ticker": spec.ticker,
        "refresh_seconds": spec.refresh_seconds,
    }
    if row is None:
        row = Wall(name=name, version=0)
        session.add(row)
    row.title = spec.title or name
    row.unit_code = spec.unit
    row.spec = stored
    row.version = (row.version or 0) + 1
    row.updated_by = who.name
    row.updated_at = _now()
    session.flush()
    return row


def _wall_row(session: Session, who: Principal, name: str) -> Wall:
    row = session.scalar(select(Wall).where(Wall.name == name))
    if row is None or not in_scope(session, who.unit_code, row.unit_code):
        raise ApiError(404, f"no wall {name!r} in your jurisdiction")
    return row


def describe_wall(session: Session, who: Principal, name: str) -> dict:
    """The wall ``name`` as ``who`` sees it: its saved views opened for ``who`` (a view
    ``who`` may not open is left out), every unit inside ``who``'s scope."""
    row = _wall_row(session, who, name)
    views = []
    for item in row.spec.get("views", []):
        if "view" in item:
            found = session.scalar(
                select(SavedView).where(SavedView.slug == item["view"], _visible(who))
            )
            if found is None:
                continue
            spec, label = for_viewer(session, who, found.spec), found.name
        else:
            spec, label = for_viewer(session, who, item["spec"]), None
        views.append({"name": label, "spec": spec, "seconds": item["seconds"]})
    return {
        "name": row.name,
        "title": row.title,
        "unit": row.unit_code,
        "version": row.version,
        "views": views,
        "kpis": row.spec.get("kpis", []),
        "thresholds": row.spec.get("thresholds", {}),
        "ticker": row.spec.get("ticker", True),
        "refresh_seconds": row.spec.get("refresh_seconds", DEFAULT_REFRESH),
        "updated_at": row.updated_at.isoformat(),
    }


def list_walls(session: Session, who: Principal) -> list[dict]:
    """The walls that stand at a unit in ``who``'s scope: name, title, unit, version."""
    from api.services.scope import subtree_codes

    rows = session.scalars(
        select(Wall).where(Wall.unit_code.in_(subtree_codes(who.unit_code))).order_by(Wall.name)
    )
    return [
        {"name": r.name, "title": r.title, "unit": r.unit_code, "version": r.version} for r in rows
    ]


def wall_version(session: Session, who: Principal, name: str) -> int:
    """The wall's version (a running wall redraws when it changes)."""
    return _wall_row(session, who, name).version


def threshold_breached(rule: dict[str, float] | None, value: float | None) -> bool:
    """True when ``value`` lies above ``rule['above']`` or below ``rule['below']``."""
    if not rule or value is None:
        return False
    return ("above" in rule and value > rule["above"]) or (
        "below" in rule and value < rule["below"]
    )
