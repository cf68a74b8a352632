"""平安指数: the safety index, 0–100 per unit and month, from weighted components.

Components, weights and reference scales live in ``api/engine/safety_index.toml`` (one place);
the formula is written in docs/safety_index.md. Every component is returned with its raw
value, numerator and denominator, score, effective weight and contribution, so a person
can check the index: index = Σ contribution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, CaseRollupDaily, GridWorker, UnitAncestry
from api.engine import SERIOUS, Component, load_components, score_components


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """First day of ``month`` and of the month after."""
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt


@dataclass
class UnitFigures:
    """The sums the components are made of, for one unit and month."""

    population: int | None = None
    cases: int = 0
    serious: int = 0
    closed: int = 0
    closed_on_time: int = 0
    evaluated: int = 0
    satisfaction_sum: int = 0
    grids: int = 0
    staffed_grids: int = 0


def unit_figures(session: Session, codes: Sequence[str], month: dt.date) -> dict[str, UnitFigures]:
    """Sums per unit code (its whole subtree) for the month, in a few grouped queries."""
    first, nxt = month_bounds(month)
    out = {c: UnitFigures() for c in codes}
    r, ua = CaseRollupDaily, UnitAncestry
    for i in range(0, len(codes), 900):
        chunk = list(codes[i : i + 900])
        for code, pop in session.execute(
            select(AdminUnit.code, AdminUnit.population).where(
                AdminUnit.code.in_(chunk), AdminUnit.valid_to.is_(None)
            )
        ):
            out[code].population = pop
        rows = session.execute(
            select(
                ua.ancestor_code,
                func.sum(r.cases),
                func.sum(case((r.category.in_(SERIOUS), r.cases), else_=0)),
                func.sum(r.closed),
                func.sum(r.closed_on_time),
                func.sum(r.evaluated),
                func.sum(r.satisfaction_sum),
            )
            .join(ua, ua.unit_id == r.leaf_unit_id)
            .where(ua.ancestor_code.in_(chunk), r.day >= first, r.day < nxt)
            .group_by(ua.ancestor_code)
        )
        for code, *sums in rows:
            f = out[code]
            (f.cases, f.serious, f.closed, f.closed_on_time, f.evaluated, f.satisfaction_sum) = (
                int(x or 0) for x in sums
            )
        staffed = exists().where(
            and_(
                GridWorker.grid_code == AdminUnit.code,
                GridWorker.role == "full_time",
                GridWorker.active.is_(True),
            )
        )
        grid_rows = session.execute(
            select(
                ua.ancestor_code,
                func.count(),
                func.sum(case((staffed, 1), else_=0)),
            )
            .select_from(AdminUnit)
            .join(ua, ua.unit_id == AdminUnit.id)
            .where(
                AdminUnit.level == "grid",
                AdminUnit.valid_to.is_(None),
                ua.ancestor_code.in_(chunk),
            )
            .group_by(ua.ancestor_code)
        )
        for code, n, n_staffed in grid_rows:
            out[code].grids, out[code].staffed_grids = int(n), int(n_staffed or 0)
    return out


def _month_days(month: dt.date) -> int:
    first, nxt = month_bounds(month)
    return (nxt - first).days


def index_of(f: UnitFigures, month: dt.date, components: Sequence[Component] | None = None):
    """The index and its components for one unit's figures (a JSON-ready dict)."""
    measures = {
        "cases": [f.cases],
        "serious_cases": [f.serious],
        "closed": [f.closed],
        "closed_on_time": [f.closed_on_time],
        "evaluated": [f.evaluated],
        "satisfaction_sum": [f.satisfaction_sum],
        "population": [f.population or 0],
        "grids": [f.grids],
        "grids_without_full_time": [f.grids - f.staffed_grids],
    }
    index, parts = score_components(measures, _month_days(month), components)

    def num(x) -> float | None:
        x = float(x[0])
        return x if np.isfinite(x) else None

    out = []
    for p in parts:
        comp, value = p["component"], num(p["value"])
        missing = None
        if value is None:
            missing = (
                "no population"
                if comp.id in ("caseload", "serious")
                else f"fewer than {p['need']} in the denominator"
            )
        out.append(
            {
                "id": comp.id,
                "label_zh": comp.label_zh,
                "label_en": comp.label_en,
                "unit": comp.unit,
                "value": value,
                "numerator": num(p["numerator"]),
                "denominator": num(p["denominator"]),
                "weight": comp.weight,
                "best": comp.best,
                "worst": comp.worst,
                "score": num(p["score"]),
                "effective_weight": float(p["effective_weight"][0]),
                "contribution": num(p["contribution"]),
                "missing": missing,
            }
        )
    return {
        "month": month_bounds(month)[0].strftime("%Y-%m"),
        "index": num(index),
        "components": out,
    }


def safety_index(session: Session, codes: Sequence[str], month: dt.date) -> dict[str, dict]:
    """The index of every unit in ``codes`` for ``month`` (any day in it)."""
    figures = unit_figures(session, codes, month)
    components = load_components()
    return {code: index_of(f, month, components) for code, f in figures.items()}
