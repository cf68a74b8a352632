"""The monthly report (月报): GET /api/v1/reports/monthly?unit=&month= (application/pdf)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.alerts.data import reported_range
from api.deps import Admin, Reader, SessionDep
from api.errors import ApiError
from api.services.audit import audit
from api.services.report import check_month, monthly_report
from api.services.report_schedule import get_schedule, put_schedule
from api.services.scope import check_scope

router = APIRouter(tags=["reports"])


@router.get("/reports/monthly", response_class=Response)
def monthly(
    session: SessionDep,
    user: Reader,
    month: Annotated[str, Query(max_length=7, description="YYYY-MM")],
    unit: Annotated[str | None, Query(max_length=32)] = None,
    format: Annotated[Literal["pdf", "png"], Query()] = "pdf",
    page: Annotated[int, Query(ge=1, le=50)] = 1,
) -> Response:
    """The monthly report of ``unit`` (default: your home unit) for ``month``: KPIs with
    同比 and 环比, maps, rankings, alerts, what changed most; as PDF, or one page as PNG.
    Report reads are audited."""
    root = check_scope(session, user, unit or user.unit_code)
    check_month(month, reported_range(session))
    report = monthly_report(session, root.code, month, pngs=format == "png")
    audit(session, user.name, user.unit_code, "report.read", target=root.code,
          detail={"month": month, "format": format})  # fmt: skip
    session.commit()
    name = f"monthly_{root.code}_{month}"
    if format == "png":
        if page > len(report.pages):
            raise ApiError(404, f"the report has {len(report.pages)} pages")
        return Response(report.pages[page - 1], media_type="image/png")
    headers = {"Content-Disposition": f'inline; filename="{name}.pdf"'}
    return Response(report.pdf, media_type="application/pdf", headers=headers)


class ScheduleBody(BaseModel):
    """The units (codes) whose monthly report is made on a schedule."""

    units: list[str] = Field(default_factory=list, max_length=500)


@router.get("/reports/schedule")
def schedule(session: SessionDep, user: Admin) -> dict:
    """(admin) The units in your jurisdiction whose monthly report is made each month
    (into the data folder's ``reports/<unit>/<YYYY-MM>.pdf``)."""
    return get_schedule(session, user)


@router.put("/reports/schedule")
def set_schedule(session: SessionDep, user: Admin, body: ScheduleBody) -> dict:
    """(admin) Set the scheduled units in your jurisdiction (those outside it are kept)."""
    out = put_schedule(session, user, body.units)
    session.commit()
    return out
