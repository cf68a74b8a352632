"""Slow-response alerts: on a synthetic level whose right answer is known — one unit's
on-scene-within-5 share collapses in its last two weeks — only that unit alerts, after
the multiple-test correction across the level; a unit that merely gets busier (the same
share of misses) does not."""

from __future__ import annotations

import numpy as np

from api.alerts.response import detect_slow_response


def test_a_collapsing_share_alerts_and_a_busier_unit_does_not() -> None:
    rng = np.random.default_rng(3)
    units, days = 60, 140
    events = rng.poisson(4.0, (units, days))
    events[7, -14:] = rng.poisson(12.0, 14)  # busier, same share
    share_missed = np.full((units, days), 0.3)
    share_missed[11, -14:] = 0.85  # the collapse
    misses = rng.binomial(events, share_missed)
    (episodes,) = detect_slow_response([(misses, events)])
    alerted = set(episodes.unit.tolist())
    assert alerted == {11}
    i = list(episodes.unit).index(11)
    assert episodes.first[i] >= days - 14 and episodes.ongoing[i]
    assert episodes.observed[i] > episodes.expected[i] + 3
