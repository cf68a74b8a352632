"""Units and their figures: detail, children's metrics, time series, breakdown, ranking."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import Reader, ScopedUnit, SessionDep
from api.metrics import service
from api.routers.metric_params import Params, answer

router = APIRouter(tags=["units"])


@router.get("/units")
def root_units(session: SessionDep, user: Reader) -> list[dict]:
    """The caller's root unit(s): the home unit whose subtree it sees."""
    return [service.unit_detail(session, user, user.unit_code)]


@router.get("/units/{code}")
def unit(session: SessionDep, user: Reader, unit: ScopedUnit) -> dict:
    """The unit, its ancestors up to the caller's root (breadcrumb) and its children."""
    return service.unit_detail(session, user, unit.code)


@router.get("/units/{code}/children/metrics")
def children_metrics(session: SessionDep, unit: ScopedUnit, params: Params) -> dict:
    """The metric for each child over the period (with previous value and change when
    compare= is given), and for the unit itself as ``self``."""
    return answer(service.children_metrics, session, unit.code, **params.values)


@router.get("/units/{code}/timeseries")
def timeseries(
    session: SessionDep,
    unit: ScopedUnit,
    params: Params,
    interval: Annotated[Literal["day", "week", "month"], Query()] = "month",
) -> dict:
    """The metric for the unit by day, week or month (default: the last 365 days)."""
    return answer(service.timeseries, session, unit.code, interval=interval, **params.values)


@router.get("/units/{code}/breakdown")
def breakdown(
    session: SessionDep,
    unit: ScopedUnit,
    params: Params,
    by: Annotated[Literal["category", "channel", "status"], Query()] = "category",
) -> dict:
    """The metric for the unit split by category, channel or workflow status."""
    return answer(service.breakdown, session, unit.code, by=by, **params.values)


@router.get("/units/{code}/ranking")
def ranking(session: SessionDep, unit: ScopedUnit, params: Params) -> dict:
    """The children ranked best first, with their rank in the comparison period
    (default compare=prev) and the rank change."""
    return answer(service.ranking, session, unit.code, **params.values)
