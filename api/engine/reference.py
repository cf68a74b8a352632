"""Plain answers to the engine's questions, to check its fast paths against.

The engine answers from an in-memory cube of cumulative sums (``cube``), percentiles from
summed histograms with compiled passes (``histogram``, ``stats.counted_quantile``) and a
plain GeoJSON writer (``choropleth.feature_collection``). This module answers the same
questions the slow, obvious way, so that anyone can check it in a minute: the cases are
read from table ``case`` (and the grid network from ``admin_unit``, ``grid_worker`` and
``facility``), joined to ``unit_ancestry`` and counted with pandas. From the engine it
takes only the metric declarations (``registry``) and the plain GeoJSON writer
(``choropleth.feature_collection``); nothing from the cube, the histograms, the
compiled statistics. tests/engine/test_reference.py asks the API
every query shape and compares its answers with these.

The definitions (see ``api.engine.rollup`` and ``api.engine.registry``):

- a case's day is its ``reported_at`` in the settings' time zone (Asia/Shanghai); period
  measures count the cases reported in the period (the cohort), whatever happened later;
- stocks are taken at the end of the period's last day, but never later than the data's
  last day (today, or the last day a case was reported if that is later): a stock on a day
  not yet lived is the stock as it stands;
- days to close are whole days, ``(⌊handled⌋ − ⌊reported⌋) // 86400`` in whole seconds,
  at least 0 and at most 365;
- network measures describe the current units, summed over the current leaves (units
  without a current child) below each unit.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd
from pyproj import Geod
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit, Case, Facility, GridWorker, UnitAncestry
from api.domain import CATEGORY_BY_CODE, MEDIATION_OUTCOMES
from api.engine.choropleth import feature_collection
from api.engine.domain import Metric
from api.engine.registry import REGISTRY, dated_domains
from api.engine.sql import SqlDialect
from api.settings import get_settings

MAX_CLOSE_DAYS = 365
WGS84 = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Figure:
    """One unit's figure: ``value = scale × numerator / denominator`` (a rate), the
    numerator itself (a count or stock) or a quantile of days to close; ``count`` is what
    the figure rests on (cases, closed cases, residents...)."""

    value: float | None
    numerator: float
    denominator: float | None
    count: float


# ---------------------------------------------------------------- units


def units_under(session: Session, parent_code: str, level: str) -> list[str]:
    """Codes of the current units of ``level`` at or below ``parent_code``, sorted."""
    found = session.execute(
        select(AdminUnit.code)
        .join(UnitAncestry, UnitAncestry.unit_id == AdminUnit.id)
        .where(UnitAncestry.ancestor_code == parent_code)
        .where(AdminUnit.level == level, AdminUnit.valid_to.is_(None))
    ).scalars()
    return sorted(set(found))


# ---------------------------------------------------------------- cases


def cases_under(session: Session, parent_code: str, level: str) -> pd.DataFrame:
    """Every case under ``parent_code``, once for the unit of ``level`` it lies under
    (column ``code``), with the local days and days to close worked out."""
    shown = UnitAncestry.__table__.alias("shown")
    inside = UnitAncestry.__table__.alias("inside")
    rows = session.execute(
        select(
            shown.c.ancestor_code.label("code"),
            Case.category,
            Case.reported_at,
            Case.deadline,
            Case.handled_at,
            Case.visited_at,
            Case.outcome,
            Case.satisfaction,
        )
        .join(shown, shown.c.unit_id == Case.leaf_unit_id)
        .join(inside, inside.c.unit_id == Case.leaf_unit_id)
        .where(shown.c.ancestor_level == level, inside.c.ancestor_code == parent_code)
    ).all()
    frame = pd.DataFrame(
        [r._asdict() for r in rows],
        columns=[
            "code", "category", "reported_at", "deadline", "handled_at", "visited_at",
            "outcome", "satisfaction",
        ],
    )  # fmt: skip
    zone = get_settings().timezone
    for name in ("reported_at", "deadline", "handled_at"):
        at = pd.to_datetime(frame[name], utc=True)
        frame[name] = at
        frame[name.removesuffix("_at") + "_day"] = at.dt.tz_convert(zone).dt.date
    seconds = (whole_seconds(frame["handled_at"]) - whole_seconds(frame["reported_at"])).clip(0)
    frame["close_days"] = (seconds // 86400).clip(upper=MAX_CLOSE_DAYS)  # NaN: still open
    return frame


RISK_TIMES = ("registered_at", "decided_at", "assessed_at", "follow_until", "assessment_due_at")


def risk_under(session: Session, parent_code: str, level: str) -> pd.DataFrame:
    """Every item of the risk register decided under ``parent_code``, once for the unit of
    ``level`` its deciding unit lies under (an item decided above ``level`` is no unit's)."""
    from api.db.risk import RiskItem

    shown = UnitAncestry.__table__.alias("shown")
    inside = UnitAncestry.__table__.alias("inside")
    columns = ["code", *RISK_TIMES, "risk_level", "incidents"]
    rows = session.execute(
        select(shown.c.ancestor_code.label("code"),
               *(getattr(RiskItem, c) for c in columns[1:]))
        .join(shown, shown.c.unit_id == RiskItem.deciding_unit_id)
        .join(inside, inside.c.unit_id == RiskItem.deciding_unit_id)
        .where(shown.c.ancestor_level == level, inside.c.ancestor_code == parent_code)
    ).all()  # fmt: skip
    frame = pd.DataFrame([r._asdict() for r in rows], columns=columns)
    for name in RISK_TIMES:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    zone = get_settings().timezone
    frame["registered_day"] = frame["registered_at"].dt.tz_convert(zone).dt.date
    return frame


def risk_measures(items: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The register's measures per unit over the items registered in [start, end], as of
    now (see ``api.engine.domains.risk``)."""
    i = items[(items["registered_day"] >= start) & (items["registered_day"] <= end)]
    now = pd.Timestamp.now(tz="UTC")
    decided = i["decided_at"].notna()
    first = decided & i["assessed_at"].notna() & (i["assessed_at"] <= i["decided_at"])
    due = i["assessment_due_at"]
    late = due.notna() & (
        (i["assessed_at"].isna() & (now > due)) | (i["assessed_at"] > due)
    )  # fmt: skip
    counted = pd.DataFrame(
        {
            "code": i["code"],
            "risk_items": 1,
            "risk_decided": decided,
            "risk_assessed_before_decision": first,
            "risk_decided_unassessed": decided & ~first,
            "risk_high_open": (i["risk_level"] == "high") & (~decided | (i["follow_until"] > now)),
            "risk_overdue": late,
            "risk_incidents": i["incidents"].astype(float),
            "risk_items_with_incidents": i["incidents"] > 0,
        }
    )
    return counted.groupby("code").sum().astype(float)


def whole_seconds(at: pd.Series) -> pd.Series:
    """Seconds since 1970 of UTC instants, rounded down (NaN for none)."""
    return (at - pd.Timestamp(0, tz="UTC")).dt.total_seconds() // 1


def local_day(at: dt.datetime) -> dt.date:
    """The day of an instant in the settings' time zone."""
    return pd.Timestamp(at).tz_convert(get_settings().timezone).date()


def period_measures(cases: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The period measures per unit (rows: codes) over the cases reported in
    [start, end]."""
    c = cases[(cases["reported_day"] >= start) & (cases["reported_day"] <= end)]
    closed = c["handled_at"].notna()
    rated = c["satisfaction"].notna()
    satisfaction = c["satisfaction"].fillna(0).astype(float)
    counted = pd.DataFrame(
        {
            "code": c["code"],
            "cases": 1,
            "serious_cases": [CATEGORY_BY_CODE[k].serious for k in c["category"]],
            "closed": closed,
            "closed_on_time": closed & (c["handled_at"] <= c["deadline"]),
            "disputes_closed": closed
            & pd.Series([CATEGORY_BY_CODE[k].group == "dispute" for k in c["category"]],
                        index=c.index, dtype=bool),
            "mediated": c["outcome"].isin(MEDIATION_OUTCOMES),
            "mediation_success": c["outcome"] == "mediated_success",
            "visited": c["visited_at"].notna(),
            "evaluated": rated,
            "satisfied": rated & (satisfaction >= 4),
            "satisfaction_sum": satisfaction,
        }
    )  # fmt: skip
    return counted.groupby("code").sum().astype(float)


def stock_measures(cases: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """backlog (reported by the end of ``day`` and not closed by then) and overdue (of
    those, the ones whose deadline fell on or before ``day``), per unit."""
    reported = cases["reported_day"] <= day
    still_open = reported & ~(cases["handled_day"].notna() & (cases["handled_day"] <= day))
    counted = pd.DataFrame(
        {
            "code": cases["code"],
            "backlog": still_open,
            "overdue": still_open & (cases["deadline_day"] <= day),
        }
    )
    return counted.groupby("code")[["backlog", "overdue"]].sum().astype(float)


def last_data_day(session: Session) -> dt.date:
    """Today, or the last day a case was reported if that is later."""
    found = session.execute(select(func.max(Case.reported_at))).scalar()
    today = dt.date.today()
    return today if found is None else max(today, local_day(found))


def plain_quantile(days_to_close, q: float) -> float:
    """The nearest-rank quantile: the smallest value that at least ``q`` of the values
    are at or below (sorted values, the ⌈q·n⌉-th of them; rank 1 at the least). NaN for
    no values. ``1e-9`` forgives q·n a rounding error just above a whole number (the
    engine's ``stats.histogram_quantile`` reads the same rank off counts per day)."""
    ordered = sorted(days_to_close)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return float(ordered[rank - 1])


# ---------------------------------------------------------------- the grid network


def network_measures(session: Session, codes: list[str]) -> pd.DataFrame:
    """The network measures of the current units ``codes`` (rows), summed over what lies
    at or below each (a worker or facility counts for its unit and every ancestor)."""
    deepest = session.execute(
        select(AdminLevel.code).order_by(AdminLevel.depth.desc()).limit(1)
    ).scalar()
    current = pd.DataFrame(
        session.execute(
            select(
                AdminUnit.id,
                AdminUnit.code,
                AdminUnit.level,
                AdminUnit.parent_code,
                AdminUnit.population,
                AdminUnit.households,
                AdminUnit.area_km2,
                AdminUnit.geom,
            ).where(AdminUnit.valid_to.is_(None))
        ).all(),
        columns=["id", "code", "level", "parent_code", "population", "households",
                 "area_km2", "geom"],
    )  # fmt: skip
    ancestry = pd.DataFrame(
        session.execute(select(UnitAncestry.unit_id, UnitAncestry.ancestor_code)).all(),
        columns=["id", "ancestor"],
    )
    own: list[dict] = []  # each unit's own measures, one record per thing counted

    # residents, households and area: of the leaves (no current child)
    leaves = current[~current["code"].isin(current["parent_code"])]
    for leaf in leaves.itertuples():
        area = leaf.area_km2
        if area is None or pd.isna(area):
            area = geodesic_area_km2(leaf.geom)
        own.append(
            {
                "code": leaf.code,
                "population": leaf.population or 0,
                "households": leaf.households or 0,
                "area_km2": area,
                "grid_area_km2": area if leaf.level == deepest else 0.0,
            }
        )

    # grids and their active workers
    workers = session.execute(
        select(GridWorker.grid_code, GridWorker.role).where(GridWorker.active)
    ).all()
    for grid in current.loc[current["level"] == deepest, "code"]:
        roles = [w.role for w in workers if w.grid_code == grid]
        own.append(
            {
                "code": grid,
                "grids": 1,
                "full_time": roles.count("full_time"),
                "leaders": roles.count("leader"),
                "part_time": roles.count("part_time"),
                "grids_without_full_time": int("full_time" not in roles),
            }
        )

    # linkage stations and centres
    facilities = select(Facility.unit_code, Facility.kind, Facility.status, Facility.video_linked)
    for f in session.execute(facilities).all():
        built = f.status == "built"
        station = f.kind == "linkage_station"
        own.append(
            {
                "code": f.unit_code,
                "facilities_built": int(built),
                "facilities_video": int(built and bool(f.video_linked)),
                "stations": int(station),
                "stations_built": int(station and built),
                "stations_under_construction": int(station and f.status == "under_construction"),
                "centers": int(not station),
                "centers_built": int(not station and built),
            }
        )
    per_unit = pd.DataFrame(own).groupby("code").sum()

    # summed up to every ancestor (self included): one join, one GROUP BY; a unit that is
    # not current (a facility of a retired village) counts nowhere
    ids = current[["id", "code"]]
    below = ancestry.merge(ids, on="id").merge(per_unit, left_on="code", right_index=True)
    summed = below.groupby("ancestor")[list(per_unit.columns)].sum()
    return summed.reindex(codes, fill_value=0.0)


def geodesic_area_km2(geom) -> float:
    """A polygon's area on the WGS84 ellipsoid, in km²."""
    if geom is None or geom.is_empty:
        return 0.0
    area, _ = WGS84.geometry_area_perimeter(geom)
    return abs(area) / 1e6


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Units:
    """What the database holds about the current units of ``level`` under a parent: their
    codes, the cases under each (``cases_under``), their network measures, and the data's
    last day. Read once; counted for any period with ``measures``."""

    codes: list[str]
    cases: pd.DataFrame
    network: pd.DataFrame
    last_day: dt.date
    small: pd.DataFrame | None = None  # the facts of small domains (``small_facts``)
    risk: pd.DataFrame | None = None  # the risk register's items (``risk_under``)

    @classmethod
    def read(cls, session: Session, parent_code: str, level: str) -> Units:
        codes = units_under(session, parent_code, level)
        return cls(
            codes,
            cases_under(session, parent_code, level),
            network_measures(session, codes),
            last_data_day(session),
            small_facts(session, parent_code, level),
            risk_under(session, parent_code, level),
        )


OWN_RECOUNT = frozenset({"risk_register"})  # small domains recounted here in pandas, not SQL


def small_facts(session: Session, parent_code: str, level: str) -> pd.DataFrame:
    """Every fact of each small domain (read from its table, no rollups) under
    ``parent_code``, once for the unit of ``level`` it lies under: its local ``day`` and
    each tally's value for that one fact, summed nowhere."""
    d = SqlDialect.of(session.get_bind().dialect.name)
    frames = []
    for domain in dated_domains():
        if domain.tables is not None or domain.source is None or domain.name in OWN_RECOUNT:
            continue
        source = domain.source
        tallies = [f"{t.sql(d)} AS {t.name}" for t in domain.read_tallies]
        rows = session.execute(
            text(
                f"SELECT shown.ancestor_code AS code, {d.day(f'f.{source.date}')} AS day, "
                f'{", ".join(tallies)} FROM "{source.table}" f '
                f"JOIN unit_ancestry shown ON shown.unit_id = f.{source.leaf} "
                f"JOIN unit_ancestry inside ON inside.unit_id = f.{source.leaf} "
                "WHERE shown.ancestor_level = :level AND inside.ancestor_code = :parent"
            ),
            {"level": level, "parent": parent_code, **d.binds},
        ).all()
        frame = pd.DataFrame([r._asdict() for r in rows])
        if not frame.empty:
            frame["day"] = pd.to_datetime(frame["day"]).dt.date
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def measures(units: Units, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Every measure of each unit (rows, by code): the period measures over [start, end],
    the stocks at its end (see the module's docstring), the network now, and
    ``close_days``: the whole days to close of the cases reported in the period and
    closed (a list per unit)."""
    cases = units.cases
    out = pd.DataFrame(index=pd.Index(units.codes, name="code"))
    out = out.join(period_measures(cases, start, end))
    out = out.join(stock_measures(cases, min(end, units.last_day)))
    out = out.join(units.network)
    if units.small is not None and not units.small.empty:
        small = units.small[(units.small["day"] >= start) & (units.small["day"] <= end)]
        out = out.join(small.drop(columns="day").groupby("code").sum())
    if units.risk is not None:
        out = out.join(risk_measures(units.risk, start, end))
    for domain in dated_domains():  # a small domain with no facts here counts zero
        for tally in domain.read_tallies if domain.tables is None else ():
            if tally.name not in out:
                out[tally.name] = 0.0
    out = out.fillna(0.0)
    closed = cases[
        (cases["reported_day"] >= start)
        & (cases["reported_day"] <= end)
        & cases["close_days"].notna()
    ]
    days = closed.groupby("code")["close_days"].apply(list)
    out["close_days"] = [days.get(code, []) for code in units.codes]
    return out


def recount(
    session: Session, parent_code: str, level: str, metric_id: str,
    start: dt.date, end: dt.date,
) -> dict[str, Figure]:  # fmt: skip
    """The figure of ``metric_id`` for each current unit of ``level`` under
    ``parent_code`` (the parent itself when ``level`` is its own level), over [start, end],
    counted from the cases under the parent."""
    units = Units.read(session, parent_code, level)
    return figures(REGISTRY[metric_id], measures(units, start, end))


def figures(metric: Metric, table: pd.DataFrame) -> dict[str, Figure]:
    """The metric for each unit of a ``measures`` table."""
    if metric.compute is not None:
        raise ValueError(f"{metric.id!r} has its own arithmetic: recount its measures")
    return {code: figure_of(metric, row) for code, row in table.iterrows()}


def figure_of(metric: Metric, row: pd.Series) -> Figure:
    """The metric over one unit's measures."""
    if metric.kind == "percentile":
        days = row["close_days"]
        value = plain_quantile(days, metric.quantile or 0.5)
        n = float(len(days))
        return Figure(None if math.isnan(value) else value, n, None, n)
    num = float(row[metric.numerator])
    if metric.denominator is None:
        return Figure(num, num, None, num)
    den = float(row[metric.denominator])
    value = num / den * metric.scale if den > 0 else None
    return Figure(value, num, den, num if metric.kind == "per_capita" else den)


def plain_feature_collection(rows: list[dict], fragments: dict[str, bytes], meta: dict) -> bytes:
    """The plain GeoJSON writer (``api.engine.choropleth.feature_collection``): each row
    as a feature, its properties the row, its geometry the display fragment of its code,
    written by one ``orjson.dumps``; what the API's body must equal once decoded."""
    return feature_collection(rows, fragments, meta)


def plain_interval(metric: Metric, figure: Figure) -> tuple[float | None, float | None]:
    """The 95% interval of a proportion (Wilson score) or a per-capita rate (exact
    Poisson, Garwood), times the metric's scale; (None, None) for other kinds."""
    from scipy.stats import chi2

    k, n = figure.numerator, figure.denominator
    if metric.kind == "proportion" and n:
        z = 1.959963984540054
        p = k / n
        if not 0 <= p <= 1:  # mediated cases of any category over closed disputes: > 1
            return None, None
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = max(0.0, centre - half), min(1.0, centre + half)
        return lo * metric.scale, hi * metric.scale
    if metric.kind == "per_capita" and n:
        lo = chi2.ppf(0.025, 2 * k) / 2 if k > 0 else 0.0
        hi = chi2.ppf(0.975, 2 * (k + 1)) / 2
        return lo / n * metric.scale, hi / n * metric.scale
    return None, None


def is_low_count(metric: Metric, figure: Figure, min_denominator: int) -> bool:
    """Counts, stocks, ratios and the network's proportions (exact counts) are never
    low-count; other figures are when they rest on fewer than ``min_denominator`` cases
    (or residents' cases, or closed cases)."""
    if metric.kind in ("count", "stock", "ratio") or not metric.timed:
        return False
    return figure.count < min_denominator


__all__ = [
    "Figure",
    "Units",
    "figures",
    "is_low_count",
    "measures",
    "plain_feature_collection",
    "plain_interval",
    "plain_quantile",
    "recount",
    "units_under",
]
