"""The metric registry."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Reader
from api.engine import list_metrics
from api.services.populations import may_read_metric

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
def metrics(user: Reader) -> list[dict]:
    """Every metric: id, zh/en label, unit, numerator, denominator, format,
    higher_is_better, group (caseload | resolution | grid | populations), kind and
    breakdowns. The special-population metrics only for callers with that permission."""
    return [m for m in list_metrics() if may_read_metric(user, m["id"])]
