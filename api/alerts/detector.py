"""The anomaly detector, pure numpy over unit × day matrices (no loop per unit-day).

For each unit, series (all cases, then each category) and day *t*, the observed count O is
the sum of the last 7 days (every weekday once, so the weekly rhythm cancels). The
expectation comes from the unit's own history and the common movement of its level:

* baseline: the unit's 7-day sums ending 1 … N weeks before the observed window (N ≤ 12,
  at least 3; the week just before is skipped so an ongoing burst does not feed its own
  baseline), summed to S;
* common factor r: the rest of the level (every other unit of the same level, the unit
  left out) now against the same baseline weeks — seasonality, holidays and city-wide
  trend, estimated from thousands of cases rather than from the unit's few;
* expected μ = r · S / N.

The count model is Poisson–gamma: the unit's rate is uncertain after N weeks, so the
predictive distribution of O is negative binomial NB(n = a + S, p = N / (N + r)), a a weak
prior. Over-dispersion φ (variance / mean of the unit's baseline weeks, shrunk toward the
level's median) scales the counts quasi-Poisson style. The one-sided mid-p probability
P(Y ≥ O) is the regularised incomplete beta I_{r/(N+r)}((O + ½)/φ, (a + S)/φ).
Benjamini–Hochberg then runs across every unit × series tested on the same day, so a city
of 2,236 villages does not cry wolf daily; p ≤ ``max_p`` is also required, so that a
small world (where BH corrects little) does not either.

An alert opens on a day a cell is significant after the correction (and the excess is at
least ``min_excess`` cases); it stays open while the unit stays above its pattern
(uncorrected p < ``close_p``) and closes on the first day it does not.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc
from scipy.stats import poisson


@dataclass(frozen=True)
class DetectorConfig:
    """Knobs of the detector (defaults are the ones evaluated in tests and bench)."""

    baseline_weeks: int = 12  # N weekly windows of history (at most)
    min_baseline_weeks: int = 3  # a unit-day is tested once this many weeks of history exist
    guard_weeks: int = 1  # the baseline ends this many weeks before the observed window
    fdr: float = 0.05  # Benjamini–Hochberg level across units × series, per day
    max_p: float = 2e-5  # and never open above this p: caps false alerts in small worlds
    close_p: float = 0.05  # an open alert stays open while p < close_p and O > μ
    min_excess: float = 3.0  # fewer extra cases than this never open an alert
    mid_p: bool = True  # mid-p value for the discrete count (P(Y > O) + ½ P(Y = O), about)
    prior_shape: float = 0.5  # a: gamma prior shape for the unit's rate
    pooled_pseudo: float = 50.0  # pseudo-count pulling a sparse common factor to its fallback
    dispersion_prior_df: float = 12.0  # weight of the level's median dispersion
    # overdue pile-ups
    overdue_baseline_days: int = 28
    overdue_guard_days: int = 14
    overdue_ratio: float = 1.5  # opens when overdue open ≥ ratio × its recent level ...
    overdue_min_excess: float = 5.0  # ... and at least this many more
    overdue_close_ratio: float = 1.2  # closes when back under close_ratio × recent level

    @property
    def history_days(self) -> int:
        """Days of history needed before the first day that can be tested."""
        return 7 * (self.guard_weeks + self.min_baseline_weeks) - 1


@dataclass
class Cells:
    """Sparse cells of one or more series: where the unit is above its pattern."""

    series: np.ndarray  # int16: 0 = all cases, 1.. = categories
    unit: np.ndarray  # int32, index into the level's units
    day: np.ndarray  # int32, index into the day axis
    observed: np.ndarray
    expected: np.ndarray
    p: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[Cells]) -> Cells:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__annotations__))

    def take(self, mask: np.ndarray) -> Cells:
        return Cells(*(getattr(self, f)[mask] for f in self.__annotations__))

    def __len__(self) -> int:
        return len(self.p)


@dataclass
class Episodes:
    """Alert episodes: a unit × series above its pattern from ``first`` to ``last`` day."""

    series: np.ndarray
    unit: np.ndarray
    first: np.ndarray  # day index the alert opened
    last: np.ndarray  # last day index it was seen
    ongoing: np.ndarray  # bool: still open on the last day of the matrix
    observed: np.ndarray  # at ``last``
    expected: np.ndarray
    p: np.ndarray
    peak_day: np.ndarray  # the most significant day of the episode
    peak_observed: np.ndarray
    peak_expected: np.ndarray
    peak_p: np.ndarray
    trace: np.ndarray  # object: per episode a (days, 4) array of day, observed, expected, p

    def __len__(self) -> int:
        return len(self.unit)


def window_sums(counts: np.ndarray, width: int = 7) -> np.ndarray:
    """Sums of the last ``width`` days ending at each day (NaN before a full window)."""
    c = np.cumsum(counts, axis=-1, dtype=np.float64)
    out = c.copy()
    out[..., width:] -= c[..., :-width]
    out[..., : width - 1] = np.nan
    return out


def lagged(x: np.ndarray, lag: int) -> np.ndarray:
    """``x`` shifted ``lag`` days later along the last axis (NaN where there is no past)."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    if lag < x.shape[-1]:
        out[..., lag:] = x[..., : x.shape[-1] - lag]
    return out


@dataclass
class SeriesScore:
    """Dense scores of one series: observed, expected, p-value; NaN where untested."""

    observed: np.ndarray
    expected: np.ndarray
    p: np.ndarray
    ratio: np.ndarray  # the common factor r, reused as fallback by the category series


def stride_sums(
    z: np.ndarray, first_lag: int, n: int, valid_from: int = 6, min_terms: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k z[t − first_lag − 7k] over the (at most ``n``) terms at or after ``valid_from``,
    for every day t, and the number of terms per day. NaN where fewer than ``min_terms``.
    One cumulative sum per weekday, so O(1) per cell."""
    units, days = z.shape
    pad = (-days) % 7
    zz = np.zeros((units, days + pad))
    zz[:, valid_from:days] = z[:, valid_from:]
    acc = np.cumsum(zz.reshape(units, -1, 7), axis=1).reshape(units, -1)[:, :days]
    out = np.zeros((units, days))
    span = 7 * n
    if first_lag < days:
        out[:, first_lag:] = acc[:, : days - first_lag]
    if first_lag + span < days:
        out[:, first_lag + span :] -= acc[:, : days - first_lag - span]
    t = np.arange(days)
    terms = np.clip((t - first_lag - valid_from) // 7 + 1, 0, n)
    out[:, terms < min_terms] = np.nan
    return out, terms


def _level_dispersion(phi_hat: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The level's median dispersion per day (units with ≥ 1 case a week), weekly steps."""
    days = phi_hat.shape[1]
    cols = np.arange(0, days, 7)
    sample = np.where(mean[:, cols] >= 1.0, phi_hat[:, cols], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(sample, axis=0)
    med = np.where(np.isfinite(med), np.maximum(med, 1.0), 1.0)
    return np.repeat(med, 7)[None, :days]


def score_series(
    counts: np.ndarray,
    cfg: DetectorConfig,
    ratio_fallback: np.ndarray | float = 1.0,
    level_counts: np.ndarray | None = None,
) -> SeriesScore:
    """Score one series of a level: ``counts`` is units × days of daily counts.

    ``level_counts`` (1 × days): the level's daily totals when ``counts`` holds only some
    of its units (one unit's pattern); by default the sum of ``counts``.
    """
    a, pseudo, first = cfg.prior_shape, cfg.pooled_pseudo, 7 * cfg.guard_weeks
    weeks, min_weeks = cfg.baseline_weeks, cfg.min_baseline_weeks
    w = window_sums(counts)
    if level_counts is None:
        level = np.nansum(w, axis=0, keepdims=True)
    else:
        level = window_sums(np.asarray(level_counts, dtype=np.float64).reshape(1, -1))
    rest = level - w  # the rest of the level, the unit left out
    s, terms = stride_sums(w, first, weeks, min_terms=min_weeks)  # the unit's baseline weeks
    n = np.maximum(terms, min_weeks)[None, :].astype(np.float64)  # baseline weeks per day
    rest_mean = (stride_sums(level, first, weeks, min_terms=min_weeks)[0] - s) / n
    ratio = (rest + pseudo * ratio_fallback) / (rest_mean + pseudo)
    # dispersion of the baseline weeks, each scaled by the level's relative level that week:
    # y_k = b_k · (rest_mean + A) / (rest_k + A); Σy and Σy² are stride sums of per-day terms
    z1 = w / (rest + pseudo)
    scale = rest_mean + pseudo
    y_sum = scale * stride_sums(z1, first, weeks, min_terms=min_weeks)[0]
    y2_sum = scale * scale * stride_sums(z1 * z1, first, weeks, min_terms=min_weeks)[0]
    del z1
    mean = y_sum / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(y2_sum - n * mean * mean, 0.0) / (n - 1)
        phi_hat = np.where(mean > 0, var / mean, np.nan)
    phi_level = _level_dispersion(phi_hat, mean)
    df, d0 = n - 1, cfg.dispersion_prior_df
    phi = np.where(np.isfinite(phi_hat), (df * phi_hat + d0 * phi_level) / (df + d0), phi_level)
    phi = np.maximum(phi, 1.0)

    expected = ratio * s / n
    p = np.where(np.isfinite(expected), 1.0, np.nan)
    with np.errstate(invalid="ignore"):
        # p ≥ 0.05 for sure below one Poisson standard deviation: skip those cells
        up = np.isfinite(expected) & (w >= 1) & (w - expected >= np.sqrt(expected))
    n = np.broadcast_to(n, w.shape)
    x = ratio[up] / (n[up] + ratio[up])
    p[up] = betainc((w[up] + 0.5 * cfg.mid_p) / phi[up], (a + s[up]) / phi[up], x)
    return SeriesScore(observed=w, expected=expected, p=p, ratio=ratio)


def above_pattern(score: SeriesScore, series: int, cfg: DetectorConfig) -> Cells:
    """The sparse cells where the unit is above its pattern (p < close_p, O > μ)."""
    with np.errstate(invalid="ignore"):
        mask = (score.p < cfg.close_p) & (score.observed > score.expected)
    unit, day = np.nonzero(mask)
    return Cells(
        series=np.full(len(unit), series, dtype=np.int16),
        unit=unit.astype(np.int32),
        day=day.astype(np.int32),
        observed=score.observed[unit, day],
        expected=score.expected[unit, day],
        p=score.p[unit, day],
    )


def score_level(
    series_counts: Sequence[np.ndarray], cfg: DetectorConfig
) -> tuple[Cells, np.ndarray]:
    """Score every series of a level (``series_counts[0]`` is all cases, then categories).

    Returns the cells above the pattern and the number of cells tested per day.
    """
    parts, tested, fallback = [], 0, 1.0
    for i, counts in enumerate(series_counts):
        sc = score_series(np.asarray(counts, dtype=np.float64), cfg, ratio_fallback=fallback)
        if i == 0:
            fallback = sc.ratio
        tested = tested + np.isfinite(sc.expected).sum(axis=0)
        parts.append(above_pattern(sc, i, cfg))
    return Cells.concat(parts), np.asarray(tested)


def benjamini_hochberg(
    day: np.ndarray, p: np.ndarray, tested_per_day: np.ndarray, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg within each day over ``tested_per_day[day]`` tests, of which only
    the candidates given here (the smallest p-values) can be rejected.

    Returns (rejected mask, BH-adjusted p) in the order of the input.
    """
    n = len(p)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0)
    order = np.lexsort((p, day))
    d, ps = day[order], p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(d)) + 1]
    ends = np.r_[starts[1:], n]
    rank = np.arange(n) - np.repeat(starts, ends - starts) + 1
    raw = ps * tested_per_day[d].astype(np.float64) / rank
    adj = np.empty(n)
    for a, b in zip(starts, ends, strict=True):  # one step per day, not per cell
        adj[a:b] = np.minimum.accumulate(raw[a:b][::-1])[::-1]
    adjusted = np.empty(n)
    adjusted[order] = np.minimum(adj, 1.0)
    return adjusted <= q, adjusted


def hysteresis(opens: np.ndarray, stays: np.ndarray) -> np.ndarray:
    """Alert state (units × days): on from a day in ``opens`` through the following days in
    ``stays``; one vector step per day."""
    state = np.zeros_like(opens)
    stays = stays | opens
    prev = np.zeros(opens.shape[0], dtype=bool)
    for t in range(opens.shape[1]):
        prev = opens[:, t] | (prev & stays[:, t])
        state[:, t] = prev
    return state


def episodes_from_state(
    state: np.ndarray, lookup: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], series: int
) -> Episodes:
    """Runs of ``state`` (units × days) as episodes; ``lookup`` = (keys sorted, observed,
    expected, p) of the cells by key unit * days + day."""
    n_days = state.shape[1]
    padded = np.pad(state, ((0, 0), (1, 1)))
    starts_u, starts_d = np.nonzero(padded[:, 1:-1] & ~padded[:, :-2])
    ends_u, ends_d = np.nonzero(padded[:, 1:-1] & ~padded[:, 2:])
    keys, obs, exp, pv = lookup
    last_pos = np.searchsorted(keys, ends_u.astype(np.int64) * n_days + ends_d)
    # peak: the minimum p over each run's cells (cells are sorted by key = contiguous runs)
    first_pos = np.searchsorted(keys, starts_u.astype(np.int64) * n_days + starts_d)
    trace = np.empty(len(first_pos), dtype=object)
    peak_pos = first_pos.copy()
    for i, (a, b) in enumerate(zip(first_pos, last_pos, strict=True)):  # one step per episode
        peak_pos[i] = a + int(np.argmin(pv[a : b + 1]))
        trace[i] = np.column_stack(
            (keys[a : b + 1] % n_days, obs[a : b + 1], exp[a : b + 1], pv[a : b + 1])
        )
    peak_day = (keys[peak_pos] % n_days).astype(np.int32) if len(peak_pos) else starts_d
    return Episodes(
        series=np.full(len(starts_u), series, dtype=np.int16),
        unit=starts_u.astype(np.int32),
        first=starts_d.astype(np.int32),
        last=ends_d.astype(np.int32),
        ongoing=ends_d == n_days - 1,
        observed=obs[last_pos],
        expected=exp[last_pos],
        p=pv[last_pos],
        peak_day=peak_day,
        peak_observed=obs[peak_pos],
        peak_expected=exp[peak_pos],
        peak_p=pv[peak_pos],
        trace=trace,
    )


def concat_episodes(parts: Sequence[Episodes]) -> Episodes:
    """One table of episodes from several."""
    fields = Episodes.__annotations__
    if not parts:
        empty = {f: np.zeros(0, dtype=np.int32) for f in fields}
        empty["trace"] = np.empty(0, dtype=object)
        return Episodes(**empty)
    return Episodes(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def episodes_of(
    cells: Cells, opening: np.ndarray, n_units: int, n_days: int, n_series: int
) -> Episodes:
    """Episodes per series from the above-pattern cells and which of them open an alert."""
    parts = []
    for s in range(n_series):
        sel = cells.series == s
        if not sel.any():
            continue
        c = cells.take(sel)
        keys = c.unit.astype(np.int64) * n_days + c.day
        order = np.argsort(keys, kind="stable")
        stays = np.zeros((n_units, n_days), dtype=bool)
        opens = np.zeros((n_units, n_days), dtype=bool)
        stays[c.unit, c.day] = True
        o = opening[sel]
        opens[c.unit[o], c.day[o]] = True
        state = hysteresis(opens, stays)
        lookup = (keys[order], c.observed[order], c.expected[order], c.p[order])
        parts.append(episodes_from_state(state, lookup, s))
    return concat_episodes(parts)


def detect_caseload(
    levels: Sequence[Sequence[np.ndarray]], cfg: DetectorConfig | None = None
) -> list[Episodes]:
    """Caseload anomaly episodes for several levels at once (one correction per day across
    every level, unit and series). ``levels[i][0]`` is a units × days matrix of all cases,
    ``levels[i][1:]`` the same per category; all levels share the day axis."""
    cfg = cfg or DetectorConfig()
    scored = [score_level(series, cfg) for series in levels]
    n_days = levels[0][0].shape[1]
    tested = np.sum([t for _, t in scored], axis=0)
    all_cells = Cells.concat([c for c, _ in scored])
    level_of = np.concatenate([np.full(len(c), i) for i, (c, _) in enumerate(scored)])
    rejected, _ = benjamini_hochberg(all_cells.day, all_cells.p, tested, cfg.fdr)
    opening = (
        rejected
        & (all_cells.p <= cfg.max_p)
        & (all_cells.observed - all_cells.expected >= cfg.min_excess)
    )
    out = []
    for i, series in enumerate(levels):
        sel = level_of == i
        out.append(
            episodes_of(all_cells.take(sel), opening[sel], series[0].shape[0], n_days, len(series))
        )
    return out


def overdue_stock(became_overdue: np.ndarray, overdue_closed: np.ndarray) -> np.ndarray:
    """Overdue open cases at the end of each day (units × days) from the daily flows."""
    return np.cumsum(
        np.asarray(became_overdue, np.float64) - np.asarray(overdue_closed, np.float64), axis=1
    )


def detect_overdue(stock: np.ndarray, cfg: DetectorConfig | None = None) -> Episodes:
    """Overdue pile-ups: overdue open cases at the day against the unit's own recent level
    (mean over ``overdue_baseline_days`` ending ``overdue_guard_days`` before). Opens when at
    least ``overdue_ratio`` × that level and ``overdue_min_excess`` more, with a Poisson
    probability below the Bonferroni level across units; closes under
    ``overdue_close_ratio`` × the level."""
    cfg = cfg or DetectorConfig()
    stock = np.asarray(stock, dtype=np.float64)
    n_units, n_days = stock.shape
    width, guard = cfg.overdue_baseline_days, cfg.overdue_guard_days
    c = np.cumsum(stock, axis=1)
    level = np.full_like(stock, np.nan)
    hi = np.arange(n_days) - guard  # window (hi - width, hi]
    ok = hi - width >= 0
    level[:, ok] = (c[:, hi[ok]] - c[:, hi[ok] - width]) / width
    with np.errstate(invalid="ignore"):
        mu = np.maximum(level, 1.0)
        excess = stock - level
        p = np.where(np.isfinite(level), poisson.sf(stock - 1, mu), np.nan)
        opens = (
            (stock >= cfg.overdue_ratio * level)
            & (excess >= cfg.overdue_min_excess)
            & (p < cfg.fdr / max(n_units, 1))
        )
        stays = (stock > cfg.overdue_close_ratio * level) & (excess > 0)
    state = hysteresis(opens, stays | opens)
    unit, day = np.nonzero(state)
    keys = unit.astype(np.int64) * n_days + day
    lookup = (keys, stock[unit, day], level[unit, day], p[unit, day])
    return episodes_from_state(state, lookup, 0)
