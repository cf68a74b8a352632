"""平安指数: the safety index, 0–100 per unit and month, from weighted components.

Components, weights and reference scales live in ``safety_index.toml`` (the one place);
the formula is written in docs/safety_index.md. Every component is returned with its raw
value, numerator and denominator, score, effective weight and contribution, so a person
can check the index: index = Σ contribution.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, CaseRollupDaily, GridWorker, UnitAncestry
from api.domain import CATEGORIES
from api.settings import get_settings

CONFIG_PATH = Path(__file__).with_name("safety_index.toml")
SERIOUS = tuple(c.code for c in CATEGORIES if c.serious)


@dataclass(frozen=True)
class Component:
    """One weighted component and its fixed reference scale."""

    id: str
    label_zh: str
    label_en: str
    unit: str
    weight: float
    best: float  # scores 100
    worst: float  # scores 0

    def score(self, value: float) -> float:
        """The value on the 0–100 scale (clipped)."""
        t = (value - self.worst) / (self.best - self.worst)
        return 100.0 * min(max(t, 0.0), 1.0)


@lru_cache
def load_components(path: Path = CONFIG_PATH) -> tuple[Component, ...]:
    """The components of the index, as configured (checked: positive weights, best ≠ worst)."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))["components"]
    out = []
    for cid, spec in raw.items():
        comp = Component(id=cid, **spec)
        if comp.weight <= 0 or comp.best == comp.worst:
            raise ValueError(f"{path}: component {cid!r} needs weight > 0 and best != worst")
        out.append(comp)
    return tuple(out)


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


def score_components(
    measures: Mapping[str, np.ndarray],
    days: int,
    components: Sequence[Component] | None = None,
    min_denominator: int | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """The index (NaN where no component can be computed) and per component the arrays
    value, numerator, denominator, score, effective weight and contribution, for units
    whose measures (the metric registry's names) are given one array each."""
    components = components or load_components()
    min_den = get_settings().min_denominator if min_denominator is None else min_denominator
    m = {k: np.asarray(v, dtype=np.float64) for k, v in measures.items()}
    per = 10_000 * 30 / days
    grids = m["grids"]
    sources = {
        "caseload": (m["cases"] * per, m["population"], 1),
        "serious": (m["serious_cases"] * per, m["population"], 1),
        "resolution": (m["closed"], m["cases"], min_den),
        "on_time": (m["closed_on_time"], m["closed"], min_den),
        "satisfaction": (m["satisfaction_sum"], m["evaluated"], min_den),
        "grid_coverage": (grids - m["grids_without_full_time"], grids, 1),
    }
    parts = []
    for comp in components:
        num, den, need = sources[comp.id]
        ok = den >= need
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
        t = (value - comp.worst) / (comp.best - comp.worst)
        score = 100.0 * np.clip(t, 0.0, 1.0)
        parts.append(
            {
                "component": comp,
                "value": value,
                "score": score,
                "need": need,
                "numerator": num / per if comp.id in ("caseload", "serious") else num,
                "denominator": den,
            }
        )
    weights = np.array([p["component"].weight for p in parts])[:, None]
    scores = np.array([p["score"] for p in parts])
    have = np.isfinite(scores)
    total = (weights * have).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(have, weights / np.where(total > 0, total, 1.0), 0.0)
    contrib = np.where(have, eff * np.nan_to_num(scores), np.nan)
    index = np.where(total > 0, np.nansum(np.where(have, contrib, 0.0), axis=0), np.nan)
    for i, p in enumerate(parts):
        p["effective_weight"], p["contribution"] = eff[i], contrib[i]
    return index, parts


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


def _registry_compute(frame) -> tuple[np.ndarray, np.ndarray]:
    """The registry's hook: the index of the units of a metrics frame over its period."""
    period = getattr(frame, "period", None)
    days = (period.end - period.start).days + 1 if period is not None else 30
    names = (
        "cases", "serious_cases", "closed", "closed_on_time", "evaluated",
        "satisfaction_sum", "population", "grids", "grids_without_full_time",
    )  # fmt: skip
    measures = {name: frame[name] for name in names}
    index, _ = score_components(measures, days)
    return index, measures["cases"]


def safety_index_metric():
    """The ``safety_index`` entry of the metric registry (maps, ranks and exports)."""
    from api.engine.registry import Metric

    return Metric(
        "safety_index", "平安指数", "Safety index (0-100)", "分", "cases", None, "decimal1",
        True, "caseload", "mean", compute=_registry_compute,
    )  # fmt: skip


def safety_index(session: Session, codes: Sequence[str], month: dt.date) -> dict[str, dict]:
    """The index of every unit in ``codes`` for ``month`` (any day in it)."""
    figures = unit_figures(session, codes, month)
    components = load_components()
    return {code: index_of(f, month, components) for code, f in figures.items()}
