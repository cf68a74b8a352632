"""The metric registry."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import Reader
from api.engine import list_metrics
from api.services.populations import may_read_metric

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
def metrics(request: Request, user: Reader) -> list[dict]:
    """Every metric: id, zh/en label, unit, numerator, denominator, format,
    higher_is_better, group (caseload | resolution | grid | populations | risk), kind, breakdowns,
    and its
    small-number rule: ``count`` (a count, never flagged), ``exact`` (a proportion or
    ratio of things counted in full, the network now: no minimum) or ``min_denominator``
    (a rate over cases: ``low_count`` under ``min_denominator`` cases)."""
    least = request.app.state.settings.min_denominator
    return [
        {**m, "min_denominator": least if m["small_number_rule"] == "min_denominator" else None}
        for m in list_metrics()
        if may_read_metric(user, m["id"])  # special populations: only with the permission
    ]
