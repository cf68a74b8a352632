"""Disclosure control against an adversary: every figure one role can read (all levels,
all months, JSON and CSV, time series), and for each suppressed count the least and
greatest value the rest allows (scipy's linprog). Every interval must be at least the
protection width; every figure shown must equal a recount of the stored rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from api.db.session import session_scope
from api.engine.disclosure import month_of, protect_hierarchy
from api.engine.periods import Period
from tests.populations.adversary import MEASURES, gather, intervals, recount

WIDTH = 5  # the default protection width and threshold


def _check(url: str, known: dict, months: list[str], root: str) -> int:
    truth, parents, _ = recount(url)
    codes = {c for c in parents if c == root or _under(c, root, parents)}
    for (measure, code, month), value in known.items():  # what is shown is the truth
        assert value == truth.get((measure, code, month), 0), (measure, code, month)
    suppressed = 0
    for month in months:
        for (measure, code), (lo, hi, true) in intervals(
            truth, parents, known, month, codes
        ).items():
            assert lo - 1e-6 <= true <= hi + 1e-6, (measure, code, month, lo, hi, true)
            assert hi - lo >= WIDTH - 1e-6, (
                f"{measure} of {code} in {month} is known to lie in [{lo:g}, {hi:g}]"
            )
            suppressed += 1
        for code in codes:  # every small count is among them
            for measure in MEASURES:
                if 1 <= truth.get((measure, code, month), 0) < WIDTH:
                    assert (measure, code, month) not in known
    return suppressed


def _under(code: str, root: str, parents: dict) -> bool:
    p = parents.get(code)
    while p is not None:
        if p == root:
            return True
        p = parents.get(p)
    return False


def test_small_world_survives_the_adversary(small_populations):
    """A town official of the small world (1/8 of it: the LPs of the whole city take
    minutes, see docs/populations.md) reading the last month."""
    url, town, client = small_populations
    months = ["2026-10"]
    known = gather(client, town, months)
    suppressed = _check(url, known, months, town)
    assert suppressed > 100  # small cells are many: suppression has work to do


def test_a_hard_world_of_only_children_and_totals_of_two(db_url, tmp_path):
    """One child per parent and totals of two: nothing shown gives a count away."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.services.population_import import store_counts
    from api.services.units import CITY_TOWN_VILLAGE_GRID, UnitRecord, add_units, ensure_levels
    from api.settings import Settings
    from tests.populations.conftest import token_with
    from tests.utils.world import mbox

    tree = [
        ("990001", "city", None),
        ("990001001", "town", "990001"),  # one village, one grid
        ("990001001001", "village", "990001001"),
        ("990001001001001", "grid", "990001001001"),
        ("990001002", "town", "990001"),  # one village, two grids
        ("990001002001", "village", "990001002"),
        ("990001002001001", "grid", "990001002001"),
        ("990001002001002", "grid", "990001002001"),
        ("990001003", "town", "990001"),  # one village without grids
        ("990001003001", "village", "990001003"),
    ]
    with session_scope(db_url) as s:
        ensure_levels(s, CITY_TOWN_VILLAGE_GRID)
        add_units(
            s,
            [
                UnitRecord(c, c, lv, p, mbox(121 + i / 100, 31, 121.01 + i / 100, 31.01), 1000)
                for i, (c, lv, p) in enumerate(tree)
            ],
        )
    counts = {  # month → leaf → (under management, visited, lost contact, floating)
        dt.date(2026, 9, 1): {
            "990001001001001": (2, 2, 0, 2),
            "990001002001001": (1, 1, 1, 1),
            "990001002001002": (1, 0, 0, 1),
            "990001003001": (2, 1, 1, 2),
        },
        dt.date(2026, 10, 1): {  # a total of two
            "990001001001001": (0, 0, 0, 0),
            "990001002001001": (1, 1, 0, 1),
            "990001002001002": (1, 1, 1, 1),
            "990001003001": (0, 0, 0, 0),
        },
        dt.date(2026, 11, 1): {  # one big grid beside small ones
            "990001001001001": (40, 30, 1, 200),
            "990001002001001": (3, 2, 0, 3),
            "990001002001002": (9, 9, 0, 1),
            "990001003001": (7, 6, 2, 12),
        },
    }
    with session_scope(db_url) as s:
        for month, leaves in counts.items():
            rows = [
                (
                    code,
                    "key_youth",
                    {"registered": m, "under_management": m, "visited": v, "lost_contact": lost},
                )
                for code, (m, v, lost, _) in leaves.items()
            ] + [(code, "floating", {"registered": f}) for code, (*_, f) in leaves.items()]
            store_counts(s, month, "团委", rows)
    token = token_with(db_url, "official", "990001", permitted=True)
    app = create_app(Settings(database_url=db_url, cache_dir=tmp_path / "c"), with_dashboard=False)
    months = ["2026-09", "2026-10", "2026-11"]
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        known = gather(client, "990001", months)
    assert _check(db_url, known, months, "990001") > 10


def test_protect_hierarchy_rules():
    """The method on a hand-made table: primary cells, a lone suppressed child pulls its
    smallest non-zero sibling, a group whose suppressed counts add to less than the
    width pulls more, and a group with nothing left to pull suppresses its parent."""
    #          0 root  1 a  2 b  3 c   4 a1 5 a2   6 b1
    parent = np.array([-1, 0, 0, 0, 1, 1, 2])
    values = np.array([[40, 12, 3, 25, 10, 2, 3]])
    mask = protect_hierarchy(values, parent, 5, 5)[0]
    assert mask[5] and mask[4]  # a2 primary, a1 its complement
    assert mask[6] and mask[2]  # b1 = b: the only child, so b (its parent) too
    assert mask[1]  # b alone at the root's level: a (12) is the smallest sibling
    assert not mask[0] and not mask[3]
    zeros = np.array([[2, 2, 0]])
    assert protect_hierarchy(zeros, np.array([-1, 0, 0]), 5, 5)[0].tolist() == [
        True,
        True,
        False,  # a zero protects nothing: the parent goes instead
    ]


def test_protected_figures_are_published_per_month():
    assert month_of(Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))) == dt.date(2026, 10, 1)
    assert month_of(Period(dt.date(2026, 10, 5), dt.date(2026, 10, 9))) is None
    with pytest.raises(ValueError, match="per calendar month"):
        month_of(Period(dt.date(2026, 7, 1), dt.date(2026, 9, 30)))
