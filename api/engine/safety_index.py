"""平安指数: the safety index, 0–100 per unit, from weighted components of the cases and
grid-network measures.

Components, weights and reference scales live in ``safety_index.toml`` beside this file
(the one place); the formula is written in docs/safety_index.md. The registry lists the
index as the metric ``safety_index`` (maps, ranks, exports); the alerts' monthly report
(``api.alerts.safety``) shows its components.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from api.engine.domain import Metric
from api.settings import get_settings

CONFIG_PATH = Path(__file__).with_name("safety_index.toml")


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


SAFETY_INDEX = Metric(
    "safety_index", "平安指数", "Safety index (0-100)", "分", "cases", None, "decimal1",
    True, "caseload", "mean", compute=_registry_compute,
)  # fmt: skip
