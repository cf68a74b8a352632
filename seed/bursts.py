"""Planted incident bursts: a known list, so alerting can be scored for recall.

A burst adds ``extra_per_day`` expected cases of one category in one village on each of
``days`` consecutive local days from ``start`` — clear, but of a size real incidents have
(a wage arrears dispute at a factory, a property dispute in an estate, a pollution event).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from seed.layout import make_layout, stream
from seed.presets import get_preset

BURST_CATEGORIES = (
    "labour",
    "property",
    "environment",
    "land_housing",
    "neighbour",
    "safety_hazard",
    "consumer",
)
WARM_UP_DAYS = 28  # history before the first burst, so a baseline exists


@dataclass(frozen=True)
class Burst:
    """Extra cases of ``category`` in village ``village_code`` from ``start`` for ``days``."""

    village_code: str
    category: str
    start: dt.date
    days: int
    extra_per_day: float

    @property
    def end(self) -> dt.date:
        """The last day of the burst."""
        return self.start + dt.timedelta(days=self.days - 1)

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` is one of the burst's days."""
        return self.start <= day <= self.end


def planted_bursts(preset: str, seed: int = 1) -> list[Burst]:
    """The bursts planted in world ``preset`` with ``seed`` (deterministic, by start date)."""
    layout = make_layout(get_preset(preset).name, seed)
    spec = layout.preset
    rng = stream(seed, "bursts")
    villages = rng.permutation(len(layout.village_codes))[: spec.bursts]
    span = spec.days - WARM_UP_DAYS - 8
    out = []
    for v in villages:
        out.append(
            Burst(
                village_code=layout.village_codes[v],
                category=BURST_CATEGORIES[rng.integers(len(BURST_CATEGORIES))],
                start=spec.start + dt.timedelta(days=WARM_UP_DAYS + int(rng.integers(span))),
                days=int(rng.integers(3, 8)),
                extra_per_day=float(np.round(rng.uniform(6, 15) * 2) / 2),
            )
        )
    return sorted(out, key=lambda b: (b.start, b.village_code))
