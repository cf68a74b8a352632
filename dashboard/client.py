"""The dashboard's one door to the data: the API's own service functions, called in-process
with the logged-in principal (so every figure is scoped exactly as the HTTP API scopes it:
``api.services.scope``), and the URLs the browser fetches itself (geometry, exports).

Nothing else in ``dashboard/`` imports ``api`` (but ``api.settings``), ``geo`` or
``api.engine``: who is logged in is asked here too (``principal``), from the session
cookie the API sets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, urlencode

import flask
from cachetools import LRUCache
from sqlalchemy.orm import Session

from api import engine
from api.db.models import AdminUnit
from api.db.replica import read_session
from api.engine import (
    REGISTRY,
    ChoroplethTable,
    MapQuery,
    MetricQuery,
    MetricsError,
    choropleth_table,
    engine_state,
    last_data_day,
    timeseries,
    unit_values,
)
from api.principal import Principal
from api.services.populations import audit_read, may_read_metric
from api.services.scope import unit_in_scope
from api.services.sessions import COOKIE_NAME, principal_for_cookie
from api.services.units import current_children, list_levels
from api.settings import Settings, get_settings
from dashboard.state import MapView, format_break

# ---------------------------------------------------------------- who and where


def settings() -> Settings:
    """The settings of the running app (those given to ``create_dash``)."""
    if flask.has_app_context():
        found = flask.current_app.config.get("ZHILI_SETTINGS")
        if found is not None:
            return found
    return get_settings()


@contextmanager
def db() -> Iterator[Session]:
    """A read session on the app's database (on its replica when one is configured: what
    the dashboard writes, a saved view or an audit entry, still goes to the primary)."""
    session = read_session(settings().database_url, settings().read_database_url)
    try:
        yield session
    finally:
        session.close()


def principal() -> Principal | None:
    """Who is looking: the user whose session cookie (set by ``POST /api/v1/auth/login``)
    came with the current request (a page, a Dash callback, a geometry route); ``None``
    when nobody is logged in, the session has ended (logout, revocation, expiry) or there
    is no request. Asked once per request. The one place the dashboard asks, and it never
    makes up a user: without a valid session there is nobody."""
    if not flask.has_request_context():
        return None
    if "zhili_principal" not in flask.g:
        cookie = flask.request.cookies.get(COOKIE_NAME)
        flask.g.zhili_principal = _principal_for_cookie(cookie) if cookie else None
    return flask.g.zhili_principal


def _principal_for_cookie(cookie: str) -> Principal | None:
    with db() as session:
        return principal_for_cookie(session, settings(), cookie)


# ---------------------------------------------------------------- units


@dataclass(frozen=True)
class UnitRef:
    """A unit as the breadcrumb and the map name it."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class UnitView:
    """A unit, its ancestors (root first, within the user's reach) and its children."""

    code: str
    name: str
    level: str
    level_zh: str
    level_en: str
    ancestors: list[UnitRef]
    children: list[UnitRef]
    child_level: str | None

    @property
    def is_leaf(self) -> bool:
        return not self.children


def unit_view(who: Principal, code: str) -> UnitView | None:
    """The unit ``code`` if it lies in ``who``'s subtree, else ``None``."""
    with db() as session:
        unit = unit_in_scope(session, who.unit_code, code)
        if unit is None:
            return None
        levels = {lvl.code: lvl for lvl in list_levels(session)}
        ancestors: list[UnitRef] = []
        parent, seen = unit.parent_code, {code}
        while code != who.unit_code and parent and parent not in seen:
            seen.add(parent)
            up = unit_in_scope(session, who.unit_code, parent)
            if up is None:  # above the user's home unit
                break
            ancestors.insert(0, _ref(up))
            parent = up.parent_code
        children = [_ref(child) for child in current_children(session, code)]
        level = levels.get(unit.level)
        return UnitView(
            code=unit.code,
            name=unit.name,
            level=unit.level,
            level_zh=level.name_zh if level else unit.level,
            level_en=level.name_en if level else unit.level,
            ancestors=ancestors,
            children=children,
            child_level=children[0].level if children else None,
        )


def _ref(unit: AdminUnit) -> UnitRef:
    return UnitRef(unit.code, unit.name, unit.level)


def child_level(who: Principal, code: str) -> str | None:
    """The level of unit ``code``'s children, as its page's map shows them (the first
    child's, by code); ``""`` for a leaf, ``None`` for a unit outside ``who``'s subtree."""
    with db() as session:
        if unit_in_scope(session, who.unit_code, code) is None:
            return None
        children = current_children(session, code)
    return children[0].level if children else ""


def level_names() -> dict[str, tuple[str, str]]:
    """Level code → (Chinese, English) name, from the level table."""
    with db() as session:
        return {lvl.code: (lvl.name_zh, lvl.name_en) for lvl in list_levels(session)}


def levels_below(level: str) -> list[tuple[str, str, str]]:
    """(code, zh, en) of every level deeper than ``level``, shallowest first: what a map
    of a unit of ``level`` can show (the level picker)."""
    with db() as session:
        levels = sorted(list_levels(session), key=lambda lvl: lvl.depth)
    depth = next((lvl.depth for lvl in levels if lvl.code == level), None)
    if depth is None:
        return []
    return [(lvl.code, lvl.name_zh, lvl.name_en) for lvl in levels if lvl.depth > depth]


# ---------------------------------------------------------------- URLs the browser fetches


def boundaries_url(parent: str, level: str | None = None) -> str:
    """The display geometry of ``parent``'s children (or of its units of ``level``, any
    depth below) for the map (served by ``dashboard.geometry`` with an ETag; fetched once
    per page, by the page's script as soon as it knows the unit, else by plotly.js)."""
    if level:
        return f"/dashboard/geometry/{quote(level, safe='')}/{quote(parent, safe='')}.json"
    return f"/dashboard/geometry/children/{quote(parent, safe='')}.json"


def export_url(view: MapView, fmt: str) -> str:
    """The analysts' choropleth export of exactly what the map of ``view`` shows (same
    units, period, comparison and classes; kept breaks as ``classes=fixed``) as ``fmt``."""
    params = {
        "parent": view.code,
        "level": view.level or "",
        "metric": view.metric,
        "start": view.start.isoformat() if view.start else "",
        "end": view.end.isoformat() if view.end else "",
        "classes": "fixed" if view.keep else view.method,
        "format": fmt,
    }
    if view.keep:
        params["breaks"] = ",".join(format_break(b) for b in view.keep[:-1])
    if view.compare != "none":
        params["compare"] = view.compare
    if view.smooth == "eb":
        params["smooth"] = "eb"
    return f"/api/v1/choropleth?{urlencode(params)}"


# ---------------------------------------------------------------- display geometry


@dataclass(frozen=True)
class Geometry:
    """The children of one parent as the map draws them: a FeatureCollection with
    clockwise exterior rings (d3-geo's winding, which plotly's geo maps use; RFC 7946's
    counter-clockwise rings would fill the whole globe), its ETag, and label points."""

    etag: str
    body: bytes
    labels: list[tuple[str, str, float, float, float]]  # code, name, lon, lat, area share
    extent: tuple[float, float, float, float] | None = None  # lon/lat min, lon/lat max


def display_geometry(who: Principal, parent: str, level: str) -> Geometry | None:
    """The display geometry of ``parent``'s children of ``level``; ``None`` when ``parent``
    is outside ``who``'s subtree."""
    with db() as session:
        if unit_in_scope(session, who.unit_code, parent) is None:
            return None
        return _geometry(session, parent, level)


@dataclass(frozen=True)
class GeometryKey:
    """One map's geometry: the database, the parent and level shown, the layer's ETag."""

    database: str
    parent: str
    level: str
    etag: str


GEOMETRIES_KEPT = 64  # maps' geometry kept (least recently used dropped)
_geometries: LRUCache = LRUCache(GEOMETRIES_KEPT)


def _geometry(session: Session, parent: str, level: str) -> Geometry:
    """The map's geometry of ``parent``'s units of ``level``, kept per display-layer ETag."""
    import orjson
    import shapely
    from shapely.geometry import mapping, shape

    from api.services.display import display_layer

    layer = display_layer(session, level, parent, cache_dir=settings().cache_dir)
    key = GeometryKey(settings().database_url, parent, level, layer.etag)
    found = _geometries.get(key)
    if found is not None:
        return found
    codes, names = list(layer.codes), list(layer.names)
    shapes = [shape(orjson.loads(layer.fragments[c])) for c in codes]
    oriented = shapely.orient_polygons(shapes, exterior_cw=True) if shapes else []
    points = shapely.point_on_surface(shapes) if shapes else []
    areas = shapely.area(shapes) if shapes else []
    total = float(sum(areas)) or 1.0
    features = [
        {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(g)}
        for c, n, g in zip(codes, names, oriented, strict=True)
    ]
    labels = [
        (c, n, round(p.x, 6), round(p.y, 6), float(a) / total)
        for c, n, p, a in zip(codes, names, points, areas, strict=True)
    ]
    body = orjson.dumps({"type": "FeatureCollection", "features": features})
    extent = tuple(float(v) for v in shapely.total_bounds(shapes)) if shapes else None
    found = Geometry(
        etag=f'"{layer.etag.strip(chr(34))}-cw"', body=body, labels=labels, extent=extent
    )
    _geometries[key] = found
    return found


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricInfo:
    """A metric as the registry declares it."""

    id: str
    label_zh: str
    label_en: str
    unit: str
    format: str  # integer, percent, decimal1, decimal2
    higher_is_better: bool | None  # None: neither (a caseload is not good or bad)
    group: str  # caseload, resolution, grid
    basis: str = ""  # what a unit's count counts (cases, closed, stations, area_km2, ...)
    count_is_value: bool = False  # the count is the value itself (a caseload, a backlog)
    timed: bool = True  # False: the grid network now, whatever the period
    smoothable: bool = False  # a per-capita rate: smooth=eb applies
    per_month: bool = False  # published per calendar month only (special populations)
    breakdowns: tuple[str, ...] = ()  # the dimensions it splits by (category, type, shift...)

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_zh


class Figure(NamedTuple):
    """A metric's figures for one unit in the period and in the comparison period (a named
    tuple: a map of every grid of a metro city makes 8,820 of them per request)."""

    code: str
    name: str
    value: float | None
    count: float | None  # the cases (or other units) the value rests on
    previous: float | None
    low_count: bool
    klass: int | None = None  # the class on the map (choropleth only)
    suppressed: bool = False  # a small count of persons kept from view: shown as "<5"
    base_partial: bool = False  # the comparison base is not fully covered by data


def metric_catalog() -> list[MetricInfo]:
    """Every metric of the registry, in its order."""
    return [
        MetricInfo(
            m.id,
            m.label_zh,
            m.label_en,
            m.unit,
            m.format,
            m.higher_is_better,
            m.group,
            basis=_basis(m),
            count_is_value=m.compute is None
            and m.denominator is None
            and m.kind not in ("percentile", "mean"),
            timed=m.timed,
            # smoothing borrows strength from neighbours' counts: not for protected ones
            smoothable=m.kind == "per_capita" and not engine.is_protected(m),
            per_month=engine.is_protected(m),
            breakdowns=tuple(m.breakdowns),
        )
        for m in REGISTRY.values()
    ]


def readable_catalog(who: Principal | None) -> list[MetricInfo]:
    """The metrics ``who`` may read, in the registry's order: the special-population
    figures only with the permission (to anyone else they do not exist)."""
    return [m for m in metric_catalog() if may_read_metric(who, m.id)]


def published_months(metric: str) -> list[dt.date]:
    """The calendar months (first days, oldest first) a per-month metric has figures
    for; empty for any other metric."""
    found = REGISTRY.get(metric)
    if found is None:
        return []
    with db() as session:
        return engine.published_months(engine_state(session), found)


def _basis(metric) -> str:
    """What the engine's count of ``metric`` counts (as ``api.engine.figures.evaluate``
    sets it): the numerator of a per-capita rate, a percentile's or a computed index's
    cases, else the denominator (or the numerator when there is none)."""
    if metric.kind in ("per_capita", "percentile") or metric.compute is not None:
        return metric.numerator
    return metric.denominator or metric.numerator


def last_day() -> dt.date:
    """The data's last day (the last day a case was reported; today when none): the
    period presets end there, as the API's ``last-30d`` does."""
    with db() as session:
        return last_data_day(engine_state(session))


def _check(session: Session, who: Principal, code: str) -> AdminUnit:
    """Unit ``code`` when it lies in ``who``'s subtree (the API's scope check, as its
    ``ScopedUnit`` asks it), else ``LookupError``."""
    unit = unit_in_scope(session, who.unit_code, code)
    if unit is None:
        raise LookupError(f"no unit {code!r} in your jurisdiction")
    return unit


# What the engine raises for a question it cannot answer (unknown metric, dates out of
# range, bad classes): the API answers it with a 400 and its message; the dashboard shows
# the same message inside its frame.
FiguresError = MetricsError


def check_view(view: MapView) -> None:
    """``FiguresError`` with the API's message when ``view`` (resolved: its dates known)
    asks what the API would refuse: an unknown metric, dates out of range, bad breaks."""
    if view.start is None or view.end is None:
        return
    with db() as session:
        query = _query(view.metric, view.start, view.end, view.compare, view.smooth)
        query.resolve(engine_state(session))


def _query(
    metric: str, start: dt.date, end: dt.date, compare: str = "none", smooth: str = "none"
) -> MetricQuery:
    """The engine's query for ``metric`` over the inclusive dates (``none``: no comparison,
    no smoothing)."""
    return MetricQuery(metric, start.isoformat(), end.isoformat(), compare=compare, smooth=smooth)


def suppressed_label() -> str:
    """What a suppressed figure shows: ``<5`` (the settings' threshold)."""
    return f"<{settings().suppression_threshold}"


def _check_metric(session: Session, who: Principal, metric: str, what: str) -> None:
    """A special-population metric only for a user with the permission (``LookupError``
    otherwise, as for a unit out of scope); each such read audited."""
    if not may_read_metric(who, metric):
        raise LookupError(
            f"no metric {metric!r} for you: it needs the special_populations permission"
        )
    audit_read(session, who, metric, f"dashboard:{what}", {"via": "dashboard", "what": what})


def _figure(row: dict) -> Figure:
    return Figure(
        code=row["code"],
        name=row["name"],
        value=row.get("value"),
        count=row.get("count"),
        previous=row.get("previous"),
        low_count=bool(row.get("low_count")),
        klass=row.get("class"),
        suppressed=bool(row.get("suppressed")),
        base_partial=bool(row.get("base_partial")),
    )


def choropleth(who: Principal, view: MapView) -> tuple[list[Figure], list[float]]:
    """The view's metric for each unit of its level under its unit, with its class by the
    view's method (the API's own classes, so the map and its export agree), and the class
    upper bounds.

    Kept breaks (``view.keep``, k of them, from another map): the API classes by the first
    k - 1 (``classes=fixed``), so the top class is open-ended and the colours mean the same
    on every map; the bounds returned are then the kept breaks themselves."""
    keep = view.keep
    shown = MapQuery(
        view.code, view.level, "fixed" if keep else view.method, breaks=tuple(keep[:-1]) or None
    )
    with db() as session:
        _check(session, who, view.code)
        _check_metric(session, who, view.metric, view.code)
        query = _query(view.metric, view.start, view.end, view.compare, view.smooth)
        table = choropleth_table(session, shown, query)
    return map_figures(table), list(keep) if keep else table.bounds


def map_figures(table: ChoroplethTable) -> list[Figure]:
    """A map's figures read column by column (no dict per unit: every grid of a metro city
    is 8,820 of them)."""
    n = len(table.shown)
    previous = table.column("previous") if "previous" in table.columns else [None] * n
    smoothed = "smoothed" in table.columns and table.query.smooth == "eb"
    hidden = table.column("suppressed") if "suppressed" in table.columns else [False] * n
    partial = table.query.base_partial
    columns = zip(
        table.column("code"),
        table.column("name"),
        table.column("smoothed" if smoothed else "value"),
        table.column("count"),
        previous,
        [False] * n if smoothed else table.column("low_count"),
        table.column("class"),
        hidden,
        strict=True,
    )
    return [
        Figure(c, name, v, k, p, bool(low), cls, bool(h), partial)
        for c, name, v, k, p, low, cls, h in columns
    ]


def unit_figures(
    who: Principal, code: str, metrics: list[str], start: dt.date, end: dt.date, compare: str
) -> dict[str, Figure]:
    """Each of ``metrics`` for the unit itself."""
    with db() as session:
        _check(session, who, code)
        metrics = [m for m in metrics if may_read_metric(who, m)]
        for metric in metrics:
            audit_read(session, who, metric, f"dashboard:{code}", {"via": "dashboard"})
        answer = unit_values(session, code, metrics, _query("caseload", start, end, compare))
    return {m: _figure(row) for m, row in answer.items()}


def monthly(
    who: Principal, code: str, metric: str, end: dt.date, months: int = 12
) -> tuple[list[str], list[float | None], list[float | None]]:
    """The last ``months`` months up to ``end`` (``YYYY-MM``), their values, and the same
    months a year before. Empty for the grid network's metrics (they have no history)."""
    index = end.year * 12 + end.month - 1 - (months - 1)
    first = dt.date(index // 12, index % 12 + 1, 1)
    with db() as session:
        _check(session, who, code)
        _check_metric(session, who, metric, code)
        try:
            answer = timeseries(session, code, _query(metric, first, end, "yoy"), "month")
        except MetricsError:
            return [], [], []
    points = answer["points"]
    return (
        [p["start"][:7] for p in points],
        [p["value"] for p in points],
        [p.get("previous") for p in points],
    )


def breakdown(
    who: Principal, code: str, metric: str, by: str, start: dt.date, end: dt.date, lang: str
) -> list[tuple[str, float]]:
    """``metric`` by one of its breakdowns (``category``, ``channel``, ``type``,
    ``force_kind``, ``shift``...): (label, value), largest first; empty when the metric has
    no such breakdown."""
    with db() as session:
        _check(session, who, code)
        _check_metric(session, who, metric, code)
        try:
            answer = engine.breakdown(session, code, _query(metric, start, end), by)
        except MetricsError:
            return []
    rows = [
        (item["label_en"] if lang == "en" else item["label_zh"], item["value"])
        for item in answer["items"]
        if item["value"]
    ]
    return sorted(rows, key=lambda r: -r[1])


def open_cases(who: Principal, code: str, lang: str, limit: int = 200) -> list[dict]:
    """The open cases of a village or grid, overdue first (INTAKE's ``list_cases``): no
    description, no location, nothing that names a person."""
    from zoneinfo import ZoneInfo

    from api.domain import CATEGORY_BY_CODE, CHANNEL_BY_CODE, STEP_NAMES_ZH
    from api.services.case_workflow import list_cases

    zone = ZoneInfo(settings().timezone)
    with db() as session:
        page = list_cases(session, who, unit_code=code, status="open", limit=limit)
    rows = []
    for case in page["items"]:
        category = CATEGORY_BY_CODE.get(case["category"])
        channel = CHANNEL_BY_CODE.get(case["channel"])
        rows.append(
            {
                "id": case["id"],
                "category": (category.name_en if lang == "en" else category.name_zh)
                if category
                else case["category"],
                "channel": (channel.name_en if lang == "en" else channel.name_zh)
                if channel
                else case["channel"],
                "status": case["status"] if lang == "en" else STEP_NAMES_ZH[case["status"]],
                "reported": case["reported_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                "deadline": case["deadline"].astimezone(zone).strftime("%Y-%m-%d"),
                "overdue": ("overdue" if lang == "en" else "超期") if case["overdue"] else "",
            }
        )
    rows.sort(key=lambda r: (r["overdue"] == "", r["deadline"]))
    return rows


def open_alerts(who: Principal, code: str) -> list[dict]:
    """The open early-warning alerts under unit ``code`` that ``who`` may see, most
    significant first (the same service and scope as ``GET /api/v1/alerts``)."""
    from sqlalchemy import select

    from api.alerts.lifecycle import open_alerts as service

    with db() as session:
        _check(session, who, code)
        alerts = service(session, who, unit_code=code)
        codes = {c for a in alerts for c in a.get("path") or []}
        names = dict(
            session.execute(
                select(AdminUnit.code, AdminUnit.name).where(
                    AdminUnit.code.in_(codes), AdminUnit.valid_to.is_(None)
                )
            ).all()
        )
    for a in alerts:  # the names from below the page's unit down to the alerted unit
        path = [c for c in a.get("path") or [a["unit_code"]] if c != code] or [a["unit_code"]]
        a["path_names"] = [names.get(c) or a.get("unit_name") or c for c in path]
    return alerts


def unit_pattern(who: Principal, code: str, category: str | None) -> dict:
    """Unit ``code``'s 7-day cases against what its own pattern expects, day by day."""
    from api.alerts.pattern import unit_pattern as service

    with db() as session:
        return service(session, _check(session, who, code), category)


# ---------------------------------------------------------------- the case desk


def desk_queue(who: Principal, show: str | None, category: str | None) -> list[dict]:
    """``who``'s work queue (``GET /api/v1/cases?queue=mine``), most urgent first; empty
    for a role without one."""
    from api.errors import ApiError
    from api.services.desk_queue import work_queue

    with db() as session:
        try:
            return work_queue(session, who, show=show, category=category)["items"]
        except ApiError:
            return []


def desk_open_below(who: Principal, limit: int = 200) -> list[dict]:
    """Open cases of ``who``'s whole subtree, overdue first (a supervisor's view for
    bulk reassignment)."""
    from api.services.case_workflow import list_cases

    with db() as session:
        page = list_cases(session, who, status="open", limit=limit)
    return sorted(page["items"], key=lambda c: (not c["overdue"], c["deadline"]))


def desk_case(who: Principal, case_id: int) -> dict | None:
    """One case with its timeline and the actions open to ``who``; None outside scope."""
    from api.errors import ApiError
    from api.services.desk_queue import case_detail
    from api.services.units import get_unit

    with db() as session:
        try:
            found = case_detail(session, who, case_id)
        except ApiError:
            return None
        leaf = get_unit(session, found["case"]["unit_code"])
    outline: list[tuple[float, float]] = []
    if leaf is not None and leaf.geom is not None:  # the leaf's outline, for the small map
        ring = max(leaf.geom.geoms, key=lambda p: p.area).exterior.simplify(1e-4)
        outline = [(round(x, 5), round(y, 5)) for x, y in ring.coords]
    return {**found, "outline": outline}


def desk_act(who: Principal, case_id: int, **request: object) -> tuple[int, str, dict | None]:
    """Take an action (``POST /api/v1/cases/{id}/actions``): (status, message, answer)."""
    from api.errors import ApiError
    from api.services.desk import ActionRequest, act

    with db() as session:
        try:
            answer = act(session, who, case_id, ActionRequest(**request))
        except ApiError as exc:
            return exc.status, exc.message, exc.extra or None
    return 200, "", answer


def desk_targets(who: Principal, code: str | None) -> tuple[list[dict], list[dict]]:
    """Where ``who`` may send a case held at ``code``: the units below it (children and
    their children) and the departments of ``who``'s subtree at ``code`` or below."""
    from api.services.desk_queue import list_departments

    if code is None:
        return [], []
    with db() as session:
        if unit_in_scope(session, who.unit_code, code) is None:
            return [], []
        units = []
        for child in current_children(session, code):
            units.append({"code": child.code, "name": child.name})
            units += [
                {"code": g.code, "name": g.name} for g in current_children(session, child.code)
            ]
        departments = list_departments(session, who, code)
    return units, departments


def desk_flow(who: Principal, code: str, start: dt.date, end: dt.date) -> dict | None:
    """Where the cases of unit ``code`` went in the period (the flow chart's data)."""
    from api.services.desk_flow import case_flow

    with db() as session:
        if unit_in_scope(session, who.unit_code, code) is None:
            return None
        return case_flow(session, code, start, end)


# ---------------------------------------------------------------- the risk register (稳评)


def _risk_read(call):
    """``call(session)`` through the register's services; None when the role may not read
    what it asks (a 403) or the item is not the caller's to see (a 404)."""
    from api.errors import ApiError

    with db() as session:
        try:
            return call(session)
        except ApiError as exc:
            if exc.status in (403, 404):
                return None
            raise


def risk_items(who: Principal) -> list[dict] | None:
    """The items ``who`` may read, with their places (None: its role reads no register)."""
    from api.services.risk_views import list_items

    found = _risk_read(lambda s: list_items(s, who, limit=2000, with_place=True))
    return None if found is None else found["items"]


def risk_item(who: Principal, item_id: int) -> dict | None:
    """One item with its reports' review results, decision, links and follow-ups."""
    from api.services.risk_views import item_detail

    return _risk_read(lambda s: item_detail(s, who, item_id))


def risk_calendar(who: Principal, days: int = 60) -> list[dict] | None:
    """The coming large events, gatherings and religious activities, with risk levels."""
    from api.services.risk_views import coming_events

    return _risk_read(lambda s: coming_events(s, who, days))


def risk_agencies(who: Principal) -> list[dict] | None:
    """The agencies with their workload, review failure rate and incident share."""
    from api.services.risk_views import list_agencies

    found = _risk_read(lambda s: list_agencies(s, who))
    return None if found is None else found["agencies"]


def risk_units(who: Principal) -> list[dict]:
    """The units ``who`` may name as an item's deciding unit: its own and two levels below."""
    with db() as session:
        home = unit_in_scope(session, who.unit_code, who.unit_code)
        if home is None:
            return []
        out = [{"code": home.code, "name": home.name}]
        for child in current_children(session, home.code):
            out.append({"code": child.code, "name": f"· {child.name}"})
            out += [
                {"code": g.code, "name": f"· · {g.name}"}
                for g in current_children(session, child.code)
            ]
    return out


def risk_draft(who: Principal, item_id: int) -> dict | None:
    """The body of the item's latest report (to fix and submit again); the read is audited.
    None when there is none or it is not ``who``'s to read."""
    from api.services.risk_assess import read_report

    found = _risk_read(lambda s: read_report(s, who, item_id))
    return None if found is None else found.body


def risk_act(who: Principal, step: str, item_id: int | None, **request) -> tuple[int, str, dict]:
    """One step of the register's workflow through its services, as the API takes it:
    ``register`` (the fields of ``POST /risk-items``), ``assign``, ``report`` (the report's
    JSON), ``decide``, ``follow_up``. Returns (status, message, answer); a refusal's status
    and message are the service's (or the validation's) and nothing is written."""
    from pydantic import ValidationError

    from api.errors import ApiError
    from api.schemas.risk import AssignIn, DecisionIn, FollowUpIn, RiskItemIn
    from api.services import risk, risk_assess, risk_follow
    from api.services.risk_review import RiskReportBody

    with db() as session:
        try:
            if step == "register":
                body = RiskItemIn(**request)
                item = risk.register_item(session, who, risk.NewItem(**body.model_dump()))
                return 201, "", {"id": item.id}
            if item_id is None:
                return 400, "pick an item first", {}
            if step == "assign":
                a = AssignIn(**request)
                risk_assess.assign_agency(session, who, item_id, a.agency, a.due_at)
            elif step == "report":
                report = risk_assess.submit_report(session, who, item_id, RiskReportBody(**request))
                return 200, "", {"id": item_id, "status": report.status,
                                 "failures": report.failures}  # fmt: skip
            elif step == "decide":
                d = DecisionIn(**request)
                risk_follow.decide(session, who, item_id, d.decision, d.decided_at, d.follow_days)
            elif step == "follow_up":
                f = FollowUpIn(**request)
                risk_follow.record_follow_up(session, who, item_id, f.days, f.note, f.done_at)
            else:
                return 400, f"unknown step {step!r}", {}
        except ApiError as exc:
            session.rollback()
            return exc.status, exc.message, {}
        except ValidationError as exc:
            session.rollback()
            where = lambda e: ".".join(str(x) for x in e["loc"]) or "body"  # noqa: E731
            return 422, "; ".join(f"{where(e)}: {e['msg']}" for e in exc.errors()), {}
    return 200, "", {"id": item_id}


# ---------------------------------------------------------------- saved views, walls, layers


def saved_views(who: Principal) -> list[dict]:
    """The saved views ``who`` may open, each in ``who``'s scope (``GET /api/v1/views``)."""
    from api.services.saved_views import list_views

    with db() as session:
        return list_views(session, who)


def save_view(who: Principal, name: str, shared: bool, spec: dict) -> dict:
    """Save a view of ``who`` (``POST /api/v1/views``); ValueError with the reason when the
    view cannot be saved."""
    from api.errors import ApiError
    from api.services.saved_views import describe_view
    from api.services.saved_views import save_view as service

    with db() as session:
        try:
            row = service(session, who, name, shared, spec)
        except ApiError as exc:
            raise ValueError(exc.message) from None
        out = describe_view(session, who, row)
        session.commit()
        return out


def composed_wall(who: Principal, name: str) -> dict | None:
    """The wall ``name`` as ``who`` sees it (``GET /api/v1/walls/{name}``), or None."""
    from api.errors import ApiError
    from api.services.saved_views import describe_wall

    with db() as session:
        try:
            return describe_wall(session, who, name)
        except ApiError:
            return None


def wall_version(who: Principal, name: str) -> int | None:
    """The wall's version (a running wall redraws when it changes), or None."""
    from api.errors import ApiError
    from api.services.saved_views import wall_version as service

    with db() as session:
        try:
            return service(session, who, name)
        except ApiError:
            return None


def map_layers() -> list[dict]:
    """The registered map layers: name, labels, legend."""
    import api.services.case_points
    import api.services.patrol_layer  # noqa: F401  (registers the ``patrol`` layer)
    from api.services.layers import LAYERS

    return [layer.describe() for layer in LAYERS.values()]


def layer_points(who: Principal, name: str, code: str) -> dict | None:
    """The layer ``name``'s points under unit ``code`` (in ``who``'s scope), or None."""
    import api.services.patrol_layer  # noqa: F401  (registers the ``patrol`` layer)
    from api.services.layers import LAYERS
    from api.services.layers import layer_points as service

    if name not in LAYERS:
        return None
    with db() as session:
        if unit_in_scope(session, who.unit_code, code) is None:
            return None
        return service(session, who, name, code, settings().cache_dir)


# ---------------------------------------------------------------- the pivot


def pivot(
    who: Principal,
    code: str,
    asked: dict[str, str],
    sort: str | None = None,
    order: str = "desc",
) -> dict:
    """The analysts' pivot under ``code`` (``GET /api/v1/pivot``): ``asked`` holds metric,
    period, level, rows, columns and interval as the API takes them. The table with its
    flat ``head`` and ``body`` (and each body row's low-count flags); LookupError for a
    unit out of scope or a metric the user may not read, ValueError (the engine's
    message) for a pivot the engine cannot answer."""
    from api.engine import PivotQuery
    from api.services.pivot import PivotLayout, pivot_rows, pivot_table

    with db() as session:
        if unit_in_scope(session, who.unit_code, code) is None:
            raise LookupError(f"no unit {code!r} in your jurisdiction")
        metric = asked.get("metric", "caseload")
        _check_metric(session, who, metric, "pivot")
        try:
            query = MetricQuery(
                metric=metric,
                period=asked.get("period") or None,
                min_denominator=settings().min_denominator,
            )
            pq = PivotQuery(
                query,
                asked.get("level") or None,
                tuple(asked.get("rows", "unit").split(",")),
                tuple(asked.get("columns", "category").split(",")),
                asked.get("interval", "month"),
            )
            table = pivot_table(session, code, pq, PivotLayout(sort, order))  # type: ignore[arg-type]
        except MetricsError as exc:
            raise ValueError(str(exc)) from None
        session.commit()  # a special-population read's audit entry
    head, body = pivot_rows(table)
    low = table["low_count"].tolist()
    return {**table, "head": head, "body": body, "low": [*low, [False] * len(table["columns"])]}
