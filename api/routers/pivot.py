"""The analysts' pivot: category × unit × period for any metric, as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import Reader, SessionDep
from api.engine import MetricsError, PivotQuery
from api.responses import ORJSONResponse
from api.routers.queries import MetricQueryDep
from api.services.pivot import PivotLayout, export_pivot, pivot_table
from api.services.scope import check_scope

router = APIRouter(tags=["pivot"])


def _dims(text: str) -> tuple[str, ...]:
    dims = tuple(d.strip() for d in text.split(",") if d.strip())
    if len(dims) > 3:
        raise MetricsError("at most three dimensions: unit, period and one breakdown")
    return dims


@router.get("/pivot", response_model=None)
def pivot(
    session: SessionDep,
    user: Reader,
    query: MetricQueryDep,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    rows: Annotated[str, Query(max_length=64)] = "unit",
    columns: Annotated[str, Query(max_length=64)] = "period",
    interval: Annotated[Literal["day", "week", "month"], Query()] = "month",
    sort: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> dict | Response:
    """The metric per combination of ``rows`` and ``columns`` (comma lists of unit,
    period and a breakdown of the metric: category or channel) for the units of ``level``
    under ``unit`` (default: the caller's root; level: the next one down), in ``interval``
    bins of the period (default: the last 365 days); sorted by ``sort`` (total, a row
    dimension or a column's label). CSV and XLSX downloads are audited."""
    root = check_scope(session, user, unit or user.unit_code)
    asked = PivotQuery(query, level, _dims(rows), _dims(columns), interval)
    # the units shown lie below ``root``, itself in scope: the table names nothing above
    table = pivot_table(session, root.code, asked, PivotLayout(sort, order))
    if format == "json":
        return ORJSONResponse(table)
    body, media = export_pivot(session, user, table, format)
    session.commit()  # the audit entry
    name = f"pivot_{root.code}_{table['metric']['id']}.{format}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
