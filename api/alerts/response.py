"""Slow response: a village or grid whose share of events on scene within 5 minutes falls
significantly below its own history (alert kind ``slow_response``).

The count model is the caseload detector's, turned to a share: over the last 7 days a unit
had E events, M of them missed the 5-minute target. Its own miss rate is uncertain after
its baseline weeks (the same weeks as the caseload's, guarded the same way: S_m misses of
S_e events), so it is a beta posterior, shrunk toward the level's share with ``prior``
pseudo-events; the predictive distribution of M given E is beta-binomial, and the
one-sided mid-p probability P(Y ≥ M) is the cell's p-value. Benjamini–Hochberg then runs
across every unit tested on the same day (``api.alerts.detector.benjamini_hochberg``), an
alert opens where it rejects, p ≤ ``max_p`` and at least ``min_excess`` more events missed
than expected, and stays open while p < ``close_p`` (the detector's hysteresis).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.stats import betabinom
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.alerts.data import _leaf_maps, day_number, fetch_ints
from api.alerts.detector import (
    Cells,
    DetectorConfig,
    Episodes,
    benjamini_hochberg,
    episodes_of,
    stride_sums,
    window_sums,
)
from api.db.events import EventRollupDaily

RESPONSE_LEVELS = ("village", "grid")


@dataclass(frozen=True)
class ResponseConfig:
    """Knobs of the slow-response test."""

    fdr: float = 0.05
    max_p: float = 2e-5  # as the caseload detector: caps false alerts of a small level
    close_p: float = 0.05
    min_excess: float = 3.0  # extra missed events
    prior: float = 20.0  # pseudo-events of the level's share in the unit's own baseline
    min_events: int = 5  # a week with fewer events is not tested


def score_response(
    misses: np.ndarray, events: np.ndarray, cfg: ResponseConfig, base: DetectorConfig
):
    """(observed misses, expected misses, p) per unit × day; NaN where untested."""
    m, e = window_sums(misses.astype(np.float64)), window_sums(events.astype(np.float64))
    first, weeks, least = 7 * base.guard_weeks, base.baseline_weeks, base.min_baseline_weeks
    sm = stride_sums(m, first, weeks, min_terms=least)[0]
    se = stride_sums(e, first, weeks, min_terms=least)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.nansum(sm, axis=0, keepdims=True) / np.nansum(se, axis=0, keepdims=True)
        level = np.where(np.isfinite(level), level, 0.5)
        alpha = sm + cfg.prior * level + 0.5
        beta = se - sm + cfg.prior * (1 - level) + 0.5
        expected = e * alpha / (alpha + beta)
    tested = np.isfinite(expected) & (e >= cfg.min_events)
    p = np.where(tested, 1.0, np.nan)
    up = tested & (m > expected)
    n = e[up].astype(np.int64)
    k = m[up].astype(np.int64)
    tail = betabinom.sf(k, n, alpha[up], beta[up]) + 0.5 * betabinom.pmf(k, n, alpha[up], beta[up])
    p[up] = np.minimum(tail, 1.0)
    return m, np.where(tested, expected, np.nan), p


def detect_slow_response(
    levels: list[tuple[np.ndarray, np.ndarray]],
    cfg: ResponseConfig | None = None,
    base: DetectorConfig | None = None,
) -> list[Episodes]:
    """Slow-response episodes for several levels at once (one correction per day across
    every level and unit): ``levels[i]`` is (misses, events), units × days each."""
    cfg, base = cfg or ResponseConfig(), base or DetectorConfig()
    parts, tested = [], 0
    for misses, events in levels:
        observed, expected, p = score_response(misses, events, cfg, base)
        tested = tested + np.isfinite(expected).sum(axis=0)
        with np.errstate(invalid="ignore"):
            unit, day = np.nonzero((p < cfg.close_p) & (observed > expected))
        parts.append(Cells(np.zeros(len(unit), np.int16), unit.astype(np.int32),
                           day.astype(np.int32), observed[unit, day], expected[unit, day],
                           p[unit, day]))  # fmt: skip
    cells = Cells.concat(parts)
    level_of = np.concatenate([np.full(len(c), i) for i, c in enumerate(parts)])
    rejected, _ = benjamini_hochberg(cells.day, cells.p, np.asarray(tested), cfg.fdr)
    opening = (
        rejected & (cells.p <= cfg.max_p) & (cells.observed - cells.expected >= cfg.min_excess)
    )
    n_days = levels[0][0].shape[1]
    return [
        episodes_of(cells.take(level_of == i), opening[level_of == i], lv[0].shape[0], n_days, 1)
        for i, lv in enumerate(levels)
    ]


def load_response(
    session: Session, start: dt.date, end: dt.date, levels=RESPONSE_LEVELS
) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """(level, codes, misses, events) per level from ``event_rollup_daily`` (units × days
    ``start`` … ``end``); a miss is an event not on scene within 5 minutes."""
    levels, codes, lookup = _leaf_maps(session, levels)
    r = EventRollupDaily
    rows = fetch_ints(
        session,
        select(
            r.leaf_unit_id, day_number(session, r.day), r.events - r.on_scene_5min, r.events
        ).where(r.day >= start, r.day <= end),
        4,
    )
    base = (start - dt.date(1970, 1, 1)).days
    n_days = (end - start).days + 1
    out = []
    for lvl in levels:
        n = len(codes[lvl])
        unit = lookup[lvl][np.clip(rows[:, 0], 0, len(lookup[lvl]) - 1)]
        keep = unit >= 0
        flat = unit[keep] * n_days + rows[keep, 1] - base

        def matrix(col: int, flat=flat, keep=keep, n=n) -> np.ndarray:
            sums = np.bincount(flat, weights=rows[keep, col], minlength=n * n_days)
            return sums.reshape(n, n_days)

        out.append((lvl, codes[lvl], matrix(2), matrix(3)))
    return out
