"""The monthly report (月报): GET /api/v1/reports/monthly?unit=&month= (application/pdf)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.alerts.data import reported_range
from api.deps import Reader, SessionDep
from api.errors import ApiError
from api.services.audit import audit
from api.services.report import check_month, monthly_report
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
