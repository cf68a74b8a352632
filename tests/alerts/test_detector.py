"""The detector on synthetic worlds with a known truth (numpy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import nbinom

from api.alerts.detector import (
    DetectorConfig,
    benjamini_hochberg,
    detect_caseload,
    detect_overdue,
    score_series,
)
from api.alerts.synthetic import synthetic_world

CFG = DetectorConfig()


def found_within(episodes, burst, days: int = 3) -> bool:
    """An alert on the burst's village (its category or all cases) on some day from the
    burst's first day to ``days`` days after it."""
    for i in range(len(episodes)):
        if episodes.unit[i] != burst.village:
            continue
        if episodes.series[i] not in (0, burst.category + 1):
            continue
        if episodes.first[i] <= burst.start + days and episodes.last[i] >= burst.start:
            return True
    return False


@pytest.fixture(scope="module")
def burst_world():
    return synthetic_world(n_villages=300, n_towns=15, days=400, n_bursts=50, seed=11)


@pytest.fixture(scope="module")
def quiet_world():
    return synthetic_world(n_villages=300, n_towns=15, days=400, n_bursts=0, seed=12)


def test_finds_most_planted_bursts_within_three_days(burst_world):
    villages, _towns = detect_caseload(
        [burst_world.village_series(), burst_world.town_series()], CFG
    )
    found = sum(found_within(villages, b) for b in burst_world.bursts)
    assert found / len(burst_world.bursts) >= 0.8, f"found {found} of {len(burst_world.bursts)}"


def test_quiet_world_has_at_most_one_false_alert_per_thousand_unit_days(quiet_world):
    villages, towns = detect_caseload([quiet_world.village_series(), quiet_world.town_series()])
    tested_days = quiet_world.n_days - CFG.history_days
    unit_days = (quiet_world.counts.shape[1] + quiet_world.n_towns) * tested_days
    alerts = len(villages) + len(towns)
    assert alerts * 1000 / unit_days <= 1.0


def test_alert_closes_when_the_unit_returns_to_its_pattern():
    world = synthetic_world(n_villages=120, n_towns=6, days=300, seed=5)
    village, category, start, days = 7, 3, 200, 5
    world.counts[category, village, start : start + days] += 8
    villages, _ = detect_caseload([world.village_series(), world.town_series()])
    mine = [
        i
        for i in range(len(villages))
        if villages.unit[i] == village and villages.series[i] == category + 1
    ]
    assert mine, "the burst raised no alert"
    i = mine[0]
    assert start <= villages.first[i] <= start + 1
    # the burst leaves the 7-day window 7 days after it ends: the alert closes by then
    assert not villages.ongoing[i]
    assert villages.last[i] <= start + days - 1 + 7
    assert villages.observed[i] > villages.expected[i]


def test_p_value_is_the_negative_binomial_predictive_tail():
    """A regular history (no over-dispersion) then a spike: P(Y ≥ O) from NB(a + S, N/(N+1))."""
    n_units, n_days = 40, 140
    counts = np.tile(np.array([1, 0, 2, 1, 0, 1, 2], float), (n_units, n_days // 7))
    counts[0, -3:] += 5
    cfg = DetectorConfig(mid_p=False, pooled_pseudo=1e12)  # common factor exactly 1
    score = score_series(counts, cfg)
    t = n_days - 1
    observed = counts[0, t - 6 : t + 1].sum()
    lags = [7 * (cfg.guard_weeks + k) for k in range(cfg.baseline_weeks)]
    baseline = sum(counts[0, t - lag - 6 : t - lag + 1].sum() for lag in lags)
    n = cfg.baseline_weeks
    want = nbinom.sf(observed - 1, cfg.prior_shape + baseline, n / (n + 1))
    assert score.observed[0, t] == observed == 7 + 15
    assert score.expected[0, t] == pytest.approx(baseline / n)
    assert score.p[0, t] == pytest.approx(want, rel=1e-6)


def test_benjamini_hochberg_matches_the_textbook_procedure():
    rng = np.random.default_rng(3)
    m = 200
    p = np.sort(rng.uniform(0, 1, m) ** 4)
    k = max((i + 1 for i in range(m) if p[i] <= (i + 1) / m * 0.05), default=0)
    want = np.zeros(m, bool)
    want[:k] = True
    candidates = p < 0.2  # only small p-values are handed over; m counts every test
    rejected, adjusted = benjamini_hochberg(
        np.zeros(candidates.sum(), np.int32), p[candidates], np.array([m]), 0.05
    )
    assert (rejected == want[candidates]).all()
    assert (adjusted[rejected] <= 0.05).all()


def test_overdue_pile_up_opens_and_closes():
    rng = np.random.default_rng(9)
    stock = rng.poisson(4, (50, 200)).astype(float)
    stock[10, 120:140] += np.linspace(5, 25, 20)  # piles up for 20 days, then cleared
    episodes = detect_overdue(stock)
    mine = [i for i in range(len(episodes)) if episodes.unit[i] == 10]
    assert mine and 120 <= episodes.first[mine[0]] <= 130
    assert episodes.last[mine[0]] < 145 and not episodes.ongoing[mine[0]]
    others = [i for i in range(len(episodes)) if episodes.unit[i] != 10]
    assert len(others) * 1000 / (49 * 150) <= 1.0
