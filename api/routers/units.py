"""Units and their figures: detail, children's metrics, time series, breakdown, ranking.

Every answer goes through ``trim_above``: it never names the unit above the caller's home."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api import engine
from api.deps import Reader, ScopedUnit, SessionDep
from api.routers.queries import MetricQueryDep
from api.services.scope import trim_above
from api.services.units import unit_detail

router = APIRouter(tags=["units"])


@router.get("/units")
def root_units(session: SessionDep, user: Reader) -> list[dict]:
    """The caller's root unit(s): the home unit whose subtree it sees."""
    return [trim_above(unit_detail(session, user, user.unit_code), user.unit_code)]


@router.get("/units/{code}")
def unit(session: SessionDep, user: Reader, unit: ScopedUnit) -> dict:
    """The unit, its ancestors up to the caller's root (breadcrumb) and its children."""
    return trim_above(unit_detail(session, user, unit.code), user.unit_code)


@router.get("/units/{code}/children/metrics")
def children_metrics(
    session: SessionDep, user: Reader, unit: ScopedUnit, query: MetricQueryDep
) -> dict:
    """The metric for each child over the period (with previous value and change when
    compare= is given), and for the unit itself as ``self``."""
    return trim_above(engine.children_metrics(session, unit.code, query), user.unit_code)


@router.get("/units/{code}/timeseries")
def timeseries(
    session: SessionDep,
    user: Reader,
    unit: ScopedUnit,
    query: MetricQueryDep,
    interval: Annotated[Literal["day", "week", "month"], Query()] = "month",
) -> dict:
    """The metric for the unit by day, week or month (default: the last 365 days)."""
    return trim_above(engine.timeseries(session, unit.code, query, interval), user.unit_code)


@router.get("/units/{code}/breakdown")
def breakdown(
    session: SessionDep,
    user: Reader,
    unit: ScopedUnit,
    query: MetricQueryDep,
    by: Annotated[
        Literal[
            "category", "channel", "status", "type", "force_kind", "shift", "kind", "risk_level"
        ],
        Query(),
    ] = "category",
) -> dict:
    """The metric for the unit split by category, channel or workflow status."""
    return trim_above(engine.breakdown(session, unit.code, query, by), user.unit_code)


@router.get("/units/{code}/ranking")
def ranking(session: SessionDep, user: Reader, unit: ScopedUnit, query: MetricQueryDep) -> dict:
    """The children ranked best first, with their rank in the comparison period
    (default compare=prev) and the rank change."""
    return trim_above(engine.ranking(session, unit.code, query), user.unit_code)
