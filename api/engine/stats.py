"""Small-number statistics: Wilson intervals for proportions, exact Poisson intervals for
per-capita rates, empirical-Bayes smoothing towards the parent's rate, percentiles from
histograms. All vectorised over the units shown."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np
from scipy.special import gammaincinv

Z95 = 1.959963984540054


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95% interval of the proportion k/n (NaN where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = centre - half, centre + half
    bad = n <= 0
    lo[bad] = np.nan
    hi[bad] = np.nan
    return np.clip(lo, 0, 1), np.clip(hi, 0, 1)


def poisson_rate_interval(
    k: np.ndarray, exposure: np.ndarray, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) 95% interval of a Poisson count k per ``exposure``, times ``scale``."""
    k = np.asarray(k, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    lo_k, hi_k = _count_quantiles(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(exposure > 0, lo_k / exposure * scale, np.nan)
        hi = np.where(exposure > 0, hi_k / exposure * scale, np.nan)
    return lo, hi


POISSON_TABLE_SIZE = 1 << 14  # counts below this come from a table built once (~0.1 s)


@functools.cache
def _poisson_table() -> tuple[np.ndarray, np.ndarray]:
    return _garwood(np.arange(POISSON_TABLE_SIZE, dtype=float))


def _garwood(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2.5% and 97.5% quantiles of the Poisson mean given the count k.
    chi2.ppf(q, 2a) / 2 == gammaincinv(a, q), without scipy.stats' per-call overhead."""
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, gammaincinv(np.maximum(k, 1e-300), 0.025), 0.0)
    return lo, gammaincinv(k + 1, 0.975)


def _count_quantiles(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_garwood`` of each count: from the table for whole counts below its size (the
    usual case: a map's units are counted in cases), computed for the rest."""
    whole = (k >= 0) & (k < POISSON_TABLE_SIZE) & (k == np.floor(k))
    lo_table, hi_table = _poisson_table()
    index = np.where(whole, k, 0).astype(np.int64)
    lo, hi = lo_table[index], hi_table[index]
    if not whole.all():
        lo[~whole], hi[~whole] = _garwood(k[~whole])
    return lo, hi


def eb_smooth(k: np.ndarray, exposure: np.ndarray, prior_rate: float | None = None) -> np.ndarray:
    """Empirical-Bayes (Marshall 1991, method of moments) smoothed rates k/exposure, shrunk
    towards ``prior_rate`` (default: Σk/Σexposure, the parent's rate) the more, the smaller
    a unit's exposure. Units with no exposure get NaN."""
    k = np.asarray(k, dtype=float)
    e = np.asarray(exposure, dtype=float)
    ok = e > 0
    out = np.full(k.shape, np.nan)
    if not ok.any():
        return out
    m = prior_rate if prior_rate is not None else k[ok].sum() / e[ok].sum()
    r = k[ok] / e[ok]
    total = e[ok].sum()
    s2 = (e[ok] * (r - m) ** 2).sum() / total
    a = max(0.0, s2 - m / (total / ok.sum()))
    weight = a / (a + m / e[ok]) if a > 0 else np.zeros_like(r)
    out[ok] = weight * r + (1 - weight) * m
    return out


def histogram_quantile(hist: np.ndarray, q: float) -> np.ndarray:
    """Per row of ``hist`` (units × whole-day bins), the smallest bin at which the
    cumulative count reaches ceil(q·n) (nearest rank); NaN for an empty row."""
    hist = np.asarray(hist)
    n = hist.sum(axis=1)
    rank = np.maximum(1, np.ceil(q * n - 1e-9))
    cum = np.cumsum(hist, axis=1)
    idx = (cum < rank[:, None]).sum(axis=1).astype(float)
    idx[n == 0] = np.nan
    return idx


GROUP_SHIFT = 4  # ``counted_quantile`` counts by groups of 2**4 = 16 bins first


@dataclass
class BinCounts:
    """Counts of days to close (or any whole-number bins) of the units shown: item ``i``
    counts ``sign · count[i]`` in bin ``bin[i]`` of the unit ``unit_of[key[i]]`` (a position
    among the units shown; −1: a unit not shown). The key is a leaf: the lookup is made in
    the compiled loop, not first as a gathered array of units."""

    unit_of: np.ndarray
    key: np.ndarray
    bin: np.ndarray
    count: np.ndarray
    sign: int = 1

    def add_to_groups(self, coarse: np.ndarray) -> None:
        """Add the counts to ``coarse`` (units × groups of bins)."""
        _add_to_groups(coarse, self.unit_of, self.key, self.bin, self.count, self.sign)

    def add_within_group(self, fine: np.ndarray, group: np.ndarray) -> None:
        """Add the counts in each unit's ``group`` of bins to ``fine`` (units × bins of a
        group)."""
        _add_within_group(fine, group, self.unit_of, self.key, self.bin, self.count, self.sign)


class Counts(Protocol):
    """A part of ``counted_quantile``: ``BinCounts``, or the cells of a summed histogram."""

    def add_to_groups(self, coarse: np.ndarray) -> None: ...
    def add_within_group(self, fine: np.ndarray, group: np.ndarray) -> None: ...


def counted_quantile(
    parts: list[Counts], units: int, q: float, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """``histogram_quantile`` of the units' histograms given in parts (``BinCounts``, or
    any with the same two methods; a unit and bin may repeat), and each unit's total count,
    without the dense units × bins matrix (8,820 grids × 366 days: 26 MB to fill and to sum
    up, per period). Counts by groups of bins first, finds the group where each unit's rank
    falls, then counts the bins of that group only: two compiled passes over the parts."""
    coarse = np.zeros((units, ((bins - 1) >> GROUP_SHIFT) + 1), dtype=np.int32)
    for part in parts:
        part.add_to_groups(coarse)
    group, before, rank, total = _rank_groups(coarse, q)
    fine = np.zeros((units, 1 << GROUP_SHIFT), dtype=np.int32)
    for part in parts:
        part.add_within_group(fine, group)
    return _rank_bins(fine, group, before, rank, total), total.astype(float)


@numba.njit(cache=True, nogil=True)
def _add_to_groups(coarse, unit_of, key, bins, count, sign):  # pragma: no cover - compiled
    for i in range(len(key)):
        u = unit_of[key[i]]
        if u >= 0:
            coarse[u, bins[i] >> GROUP_SHIFT] += sign * count[i]


@numba.njit(cache=True, nogil=True)
def _add_within_group(fine, group, unit_of, key, bins, count, sign):  # pragma: no cover
    mask = (1 << GROUP_SHIFT) - 1
    for i in range(len(key)):
        u = unit_of[key[i]]
        if u >= 0 and bins[i] >> GROUP_SHIFT == group[u]:
            fine[u, bins[i] & mask] += sign * count[i]


@numba.njit(cache=True, nogil=True)
def _rank_groups(coarse, q):  # pragma: no cover - compiled
    """Per unit: the group where the nearest rank falls, the count before that group, the
    rank and the total."""
    units, groups = coarse.shape
    group, before = np.zeros(units, np.int64), np.zeros(units, np.int64)
    rank, total = np.zeros(units, np.int64), np.zeros(units, np.int64)
    for u in range(units):
        total[u] = coarse[u].sum()
        rank[u] = max(1, int(np.ceil(q * total[u] - 1e-9)))
        g, seen = 0, 0
        while g < groups - 1 and seen + coarse[u, g] < rank[u]:
            seen += coarse[u, g]
            g += 1
        group[u], before[u] = g, seen
    return group, before, rank, total


@numba.njit(cache=True, nogil=True)
def _rank_bins(fine, group, before, rank, total):  # pragma: no cover - compiled
    """Per unit: the bin where the cumulative count reaches the rank (NaN: no count)."""
    units, width = fine.shape
    found = np.full(units, np.nan)
    for u in range(units):
        if total[u] > 0:
            k, seen = 0, before[u] + fine[u, 0]
            while k < width - 1 and seen < rank[u]:
                k += 1
                seen += fine[u, k]
            found[u] = group[u] * width + k
    return found
