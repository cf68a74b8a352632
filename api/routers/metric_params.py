"""Query parameters shared by the metric routes, and the mapping of engine errors to 400."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api.engine.service import MetricsError
from api.errors import ApiError


class MetricParams:
    """``metric``, ``start``/``end`` (dates, inclusive) or ``period`` (2026, 2026-Q3, 2026-10,
    2026-W05, last-30d), ``compare`` (yoy 同比 | prev 环比), ``smooth`` (eb); and the
    app's low-count threshold (settings ``min_denominator``), as keyword arguments of the
    engine's functions in ``values``."""

    def __init__(self, **values: Any) -> None:
        self.values = values


async def metric_params(
    request: Request,
    metric: Annotated[str, Query(max_length=64)] = "caseload",
    start: Annotated[str | None, Query(max_length=32)] = None,
    end: Annotated[str | None, Query(max_length=32)] = None,
    period: Annotated[str | None, Query(max_length=32)] = None,
    compare: Annotated[str | None, Query(max_length=8)] = None,
    smooth: Annotated[str | None, Query(max_length=8)] = None,
) -> MetricParams:
    """The query's metric parameters. ``async``: it does no I/O, and FastAPI would run a
    plain ``def`` (or a class) in the thread pool, a hop there and back per request."""
    return MetricParams(
        metric=metric,
        start=start,
        end=end,
        period=period,
        compare=compare,
        smooth=smooth,
        min_denominator=request.app.state.settings.min_denominator,
    )


Params = Annotated[MetricParams, Depends(metric_params)]


def answer(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an engine function; its MetricsError becomes a 400 with the same message."""
    try:
        return fn(*args, **kwargs)
    except MetricsError as exc:
        raise ApiError(400, str(exc)) from None
