"""The typed queries the figure routes declare: ``MetricQueryDep`` (metric, period,
comparison, smoothing) and ``MapQueryDep`` (parent, level, classes), each built once from
the query string; and the one place a ``MetricsError`` becomes a 400."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import CurrentUser, SessionDep
from api.engine import MapQuery, MetricQuery, MetricsError, get_metric, is_protected
from api.responses import ORJSONResponse
from api.services.populations import audit_read, check_metric_access


async def metric_query(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    metric: Annotated[str, Query(max_length=64)] = "caseload",
    start: Annotated[str | None, Query(max_length=32)] = None,
    end: Annotated[str | None, Query(max_length=32)] = None,
    period: Annotated[str | None, Query(max_length=32)] = None,
    compare: Annotated[str | None, Query(max_length=8)] = None,
    smooth: Annotated[str | None, Query(max_length=8)] = None,
) -> MetricQuery:
    """``metric``, ``start``/``end`` (dates, inclusive) or ``period`` (2026, 2026-Q3,
    2026-10, 2026-W05, last-30d), ``compare`` (yoy 同比 | prev 环比), ``smooth`` (eb), with
    the app's low-count threshold (settings ``min_denominator``). A special-population
    metric needs the caller's permission (403 without) and its every read is audited.
    ``async``: it does no I/O otherwise, and FastAPI would run a plain ``def`` in the
    thread pool, a hop there and back per request."""
    query = MetricQuery(
        metric=metric,
        start=start,
        end=end,
        period=period,
        compare=compare,
        smooth=smooth,
        min_denominator=request.app.state.settings.min_denominator,
    )
    if is_protected(get_metric(metric)):
        check_metric_access(user, metric)
        params = dict(request.query_params)
        detail = {"path": request.url.path, **params}
        await run_in_threadpool(audit_read, session, user, metric, request.url.path, detail)
    return query


async def map_query(
    parent: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    classes: Annotated[str, Query(max_length=24)] = "quantiles",
    k: Annotated[int, Query(ge=2, le=12)] = 5,
    breaks: Annotated[str | None, Query(max_length=512)] = None,
) -> MapQuery:
    """``parent`` (default: the caller's root, set by the route once in scope), ``level``
    (default: the next one down), ``classes`` (quantiles | natural_breaks |
    equal_interval | fixed), ``k`` and ``breaks`` (b1,b2,... with classes=fixed)."""
    return MapQuery(parent, level, classes, k, _fixed_breaks(breaks))


def _fixed_breaks(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise MetricsError(f"bad breaks {text!r}: give numbers separated by commas") from None


MetricQueryDep = Annotated[MetricQuery, Depends(metric_query)]
MapQueryDep = Annotated[MapQuery, Depends(map_query)]


async def _bad_query(_: Request, exc: Exception) -> ORJSONResponse:
    return ORJSONResponse({"error": 400, "message": str(exc)}, status_code=400)


def install_query_errors(app: FastAPI) -> None:
    """Answer a request the engine cannot answer (``MetricsError``, raised by a query's
    dependency or by the engine) with a 400 and the engine's message."""
    app.add_exception_handler(MetricsError, _bad_query)
