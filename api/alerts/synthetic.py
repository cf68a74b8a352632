"""Synthetic daily counts with a known truth, to evaluate the detector honestly.

Villages draw Poisson counts per category from a rate with a weekly rhythm, a yearly
season (a phase per category), a Spring-Festival dip, a per-village trend and day-to-day
over-dispersion (a gamma multiplier shared by the categories of a village-day). Bursts add
Poisson(extra_per_day) cases of one category in one village for a few days. Towns are the
sums of their villages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from api.domain import CATEGORIES

WEEKLY = np.array([1.10, 1.05, 1.00, 1.00, 1.05, 0.85, 0.75])  # Monday first
SHARES = np.array([0.22, 0.12, 0.08, 0.07, 0.10, 0.07, 0.06, 0.03, 0.04, 0.08, 0.05, 0.08])


@dataclass(frozen=True)
class PlantedBurst:
    """A planted incident burst: extra cases of one category in one village."""

    village: int
    category: int  # index into CATEGORIES
    start: int  # day index
    days: int
    extra_per_day: float


@dataclass
class SyntheticWorld:
    """Counts per category × village × day, towns by membership, the planted bursts."""

    start: dt.date
    counts: np.ndarray  # (categories, villages, days) int32
    town_of: np.ndarray  # village index → town index
    n_towns: int
    bursts: list[PlantedBurst] = field(default_factory=list)

    @property
    def n_days(self) -> int:
        return self.counts.shape[2]

    def village_series(self) -> list[np.ndarray]:
        """[all cases, category 1, …] as villages × days matrices."""
        return [self.counts.sum(axis=0), *self.counts]

    def town_series(self) -> list[np.ndarray]:
        """The same for towns (sums of their villages)."""
        member = np.zeros((self.n_towns, len(self.town_of)))
        member[self.town_of, np.arange(len(self.town_of))] = 1.0
        return [member @ s for s in self.village_series()]


def synthetic_world(
    n_villages: int = 300,
    n_towns: int = 15,
    days: int = 540,
    n_bursts: int = 0,
    seed: int = 0,
    rate_mean: float = 0.8,
    dispersion: float = 20.0,
    start: dt.date = dt.date(2023, 1, 2),
    burst_from: int | None = None,
    burst_size: tuple[float, float] = (2.0, 5.0),
) -> SyntheticWorld:
    """A world of ``n_villages`` in ``n_towns`` over ``days`` days from ``start``.

    ``rate_mean``: mean cases per village-day; ``dispersion``: shape k of the gamma
    multiplier (variance/mean of a daily count = 1 + λ/k). Bursts start after
    ``burst_from`` (default: day 28, as the seed does), last 3–10 days and add
    ``burst_size`` (uniform low–high) cases a day.
    """
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    t = np.arange(days)
    doy = np.array([(start + dt.timedelta(days=int(i))).timetuple().tm_yday for i in t])
    weekday = np.array([(start + dt.timedelta(days=int(i))).weekday() for i in t])
    festival = np.where((doy >= 25) & (doy < 40), 0.6, 1.0)
    base = rng.lognormal(np.log(rate_mean) - 0.18, 0.6, n_villages)
    trend = rng.normal(0.0, 0.12, n_villages)
    noise = rng.gamma(dispersion, 1.0 / dispersion, (n_villages, days))
    rhythm = WEEKLY[weekday] * festival
    counts = np.empty((n_cat, n_villages, days), dtype=np.int32)
    shares = SHARES / SHARES.sum()
    for c in range(n_cat):
        season = 1.0 + 0.2 * np.sin(2 * np.pi * (doy / 365.25) + 0.5 * c)
        lam = (base * shares[c])[:, None] * np.exp(np.outer(trend, t / 365.25))
        lam = lam * (rhythm * season)[None, :] * noise
        counts[c] = rng.poisson(lam)
    world = SyntheticWorld(
        start=start,
        counts=counts,
        town_of=np.sort(rng.integers(0, n_towns, n_villages)),
        n_towns=n_towns,
    )
    first = 28 if burst_from is None else burst_from
    for _ in range(n_bursts):
        burst = PlantedBurst(
            village=int(rng.integers(n_villages)),
            category=int(rng.choice(n_cat, p=shares)),
            start=int(rng.integers(first, days - 10)),
            days=int(rng.integers(3, 11)),
            extra_per_day=float(rng.uniform(*burst_size)),
        )
        span = slice(burst.start, burst.start + burst.days)
        counts[burst.category, burst.village, span] += rng.poisson(
            burst.extra_per_day, burst.days
        ).astype(np.int32)
        world.bursts.append(burst)
    return world
