"""Small-number statistics: Wilson intervals for proportions, exact Poisson intervals for
per-capita rates, empirical-Bayes smoothing towards the parent's rate, percentiles from
histograms. All vectorised over the units shown."""

from __future__ import annotations

import functools

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


def counted_quantile(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], units: int, q: float, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """``histogram_quantile`` of histograms given as parts of (unit, bin, count) columns
    (a unit and bin may repeat), and each unit's total count, without the dense units ×
    bins matrix (8,820 grids × 366 days: 26 MB to fill and to sum up, per period). Counts
    by groups of ``_WIDTH`` bins first, finds the group where each unit's rank falls, then
    counts the bins of that group only."""
    groups = -(-bins // _WIDTH)

    def dense(width: int, keep=None, slot=None) -> np.ndarray:
        out = np.zeros(units * width)
        for k, (unit, b, n) in enumerate(parts):
            rows = slice(None) if keep is None else keep[k]
            at = unit[rows] * width + (b[rows] // _WIDTH if slot is None else b[rows] % _WIDTH)
            out += np.bincount(at, weights=n[rows], minlength=units * width)
        return out.reshape(units, width)

    coarse = np.cumsum(dense(groups), axis=1)
    total = coarse[:, -1] if units else np.zeros(0)
    rank = np.maximum(1, np.ceil(q * total - 1e-9))
    group = np.minimum((coarse < rank[:, None]).sum(axis=1), groups - 1)
    before = np.where(group > 0, coarse[np.arange(units), group - 1], 0.0)
    keep = [b // _WIDTH == group[unit] for unit, b, _ in parts]
    fine = np.cumsum(dense(_WIDTH, keep, slot=True), axis=1) + before[:, None]
    found = (group * _WIDTH + (fine < rank[:, None]).sum(axis=1)).astype(float)
    found[total == 0] = np.nan
    return found, total


_WIDTH = 16  # bins per group in ``counted_quantile``
