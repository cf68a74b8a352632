"""The metric registry."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Reader
from api.engine import list_metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
def metrics(user: Reader) -> list[dict]:
    """Every metric: id, zh/en label, unit, numerator, denominator, format,
    higher_is_better, group (caseload | resolution | grid), kind and breakdowns."""
    return list_metrics()
