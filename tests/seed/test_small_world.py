"""The small seed world looks and behaves like a real county-level city."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import func, select

from api.db.models import Facility, GridWorker
from api.db.session import session_scope
from api.domain import CATEGORIES, CATEGORY_BY_CODE, CHANNELS, OUTCOMES
from seed.bursts import planted_bursts

SHANGHAI = ZoneInfo("Asia/Shanghai")
# the end of the small world's history: the end of 2026-10-31, local time
END = dt.datetime(2026, 11, 1, tzinfo=SHANGHAI)
# the prefecture-level figures of the issue, scaled to 900 grids
METRO_GRIDS, LEADERS, FULL_TIME, PART_TIME = 8820, 9604, 9316, 63563


def within(value: float, target: float, share: float = 0.02) -> bool:
    return abs(value - target) <= share * target


def test_counts_match_the_table(small_world, small_world_url) -> None:
    levels = Counter(u.level for u in small_world.units)
    assert levels["city"] == 1
    assert levels["town"] == 8
    assert within(levels["village"], 120)
    assert within(levels["grid"], 900)
    assert within(len(small_world.cases["id"]), 60_000)
    grids = levels["grid"]
    with session_scope(small_world_url) as session:
        roles = dict(
            session.execute(select(GridWorker.role, func.count()).group_by(GridWorker.role)).all()
        )
        facilities = session.execute(
            select(Facility.kind, Facility.status, Facility.video_linked, Facility.unit_code)
        ).all()
    assert within(roles["leader"], grids * LEADERS / METRO_GRIDS)
    assert within(roles["full_time"], grids * FULL_TIME / METRO_GRIDS)
    assert within(roles["part_time"], grids * PART_TIME / METRO_GRIDS)
    centers = [f for f in facilities if f.kind == "center"]
    stations = [f for f in facilities if f.kind == "linkage_station"]
    towns = {u.code for u in small_world.level("town")}
    villages = {u.code for u in small_world.level("village")}
    assert {f.unit_code for f in centers} == towns
    assert all(f.status == "built" and f.video_linked for f in centers)  # all 8 linked
    assert sorted(f.unit_code for f in stations) == sorted(villages)
    built = sum(f.status == "built" for f in stations)
    assert within(built, len(villages) * 1803 / 2236, 0.05)
    under_construction = sum(f.status == "under_construction" for f in stations)
    assert within(under_construction, len(villages) * 430 / 2236, 0.05)
    assert sum(f.video_linked for f in stations) == 18


def test_grid_network_has_gaps_ratings_and_links(small_world, small_world_url) -> None:
    with session_scope(small_world_url) as session:
        staffed = set(
            session.scalars(
                select(GridWorker.grid_code).where(GridWorker.role == "full_time").distinct()
            )
        )
        led = set(
            session.scalars(
                select(GridWorker.grid_code).where(GridWorker.role == "leader").distinct()
            )
        )
        facilities = session.execute(
            select(Facility.status, Facility.rating, Facility.video_linked)
        ).all()
    grids = {u.code for u in small_world.level("grid")}
    assert led == grids  # every grid has a leader
    unstaffed = grids - staffed
    assert 0 < len(unstaffed) < 0.03 * len(grids)  # a few grids with no full-time worker
    built = [f for f in facilities if f.status == "built"]
    ratings = np.array([f.rating for f in built], float)
    assert (ratings >= 60).all() and (ratings <= 100).all() and ratings.std() > 2
    assert all(f.rating is None and not f.video_linked for f in facilities if f not in built)


def test_every_level_is_a_valid_coverage_that_nests_exactly(small_world) -> None:
    children = defaultdict(list)
    by_code = {u.code: u for u in small_world.units}
    for u in small_world.units:
        assert u.geom.geom_type == "MultiPolygon"
        if u.parent_code:
            children[u.parent_code].append(u.geom)
    assert shapely.is_valid(np.array([u.geom for u in small_world.units])).all()
    for parent, geoms in children.items():
        assert shapely.coverage_is_valid(np.array(geoms)), parent
        union = shapely.union_all(geoms)
        assert union.equals(by_code[parent].geom), parent
    # regular hierarchy: every town has villages, every village has grids
    for u in small_world.units:
        if u.level != "grid":
            assert children[u.code], u.code


def test_codes_and_names_follow_the_statistical_pattern(small_world) -> None:
    by_code = {u.code: u for u in small_world.units}
    lengths = {"city": 6, "town": 9, "village": 12, "grid": 15}
    for u in small_world.units:
        assert len(u.code) == lengths[u.level] and u.code.isdigit()
        if u.parent_code:
            assert u.code.startswith(u.parent_code)
            assert by_code[u.parent_code].level != u.level
    assert all(u.name.endswith(("镇", "街道")) for u in small_world.level("town"))
    assert any(u.name.endswith("街道") for u in small_world.level("town"))
    assert any(u.name.endswith("镇") for u in small_world.level("town"))
    assert all(u.name.endswith(("村", "社区")) for u in small_world.level("village"))
    grids = small_world.level("grid")
    assert all(u.name.startswith("第") and u.name.endswith("网格") for u in grids)
    for parent in {u.parent_code for u in small_world.units if u.parent_code}:
        names = [u.name for u in small_world.units if u.parent_code == parent]
        assert len(names) == len(set(names)), parent


def test_shapes_look_real(small_world) -> None:
    city = small_world.level("city")[0].geom
    lon, lat = city.centroid.x, city.centroid.y
    assert 120.5 < lon < 121.5 and 31 < lat < 32
    # not a circle: well below the area of its circumscribed circle
    radius = shapely.minimum_bounding_radius(city)
    assert city.area < 0.85 * np.pi * radius**2
    # a lake: the city has a hole
    assert sum(len(p.interiors) for p in city.geoms) >= 1
    villages = small_world.level("village")
    assert sum(len(v.geom.geoms) == 2 for v in villages) >= 2  # villages in two parts
    vertices = np.array([shapely.get_num_coordinates(v.geom) for v in villages])
    assert 150 <= vertices.mean() <= 1000  # a few hundred per village, not straight lines


def test_people_sum_up_the_tree_and_are_skewed(small_world) -> None:
    kids = defaultdict(list)
    for u in small_world.units:
        if u.parent_code:
            kids[u.parent_code].append(u)
    for u in small_world.units:
        if kids[u.code]:
            assert u.population == sum(k.population for k in kids[u.code])
            assert u.households == sum(k.households for k in kids[u.code])
            assert abs(u.area_km2 - sum(k.area_km2 for k in kids[u.code])) < 0.01
    density = np.array([v.population / v.area_km2 for v in small_world.level("village")])
    assert density.max() > 10 * np.median(density)  # dense communities, sparse villages
    for u in small_world.level("grid"):
        assert 1.5 < u.population / u.households < 4


def test_case_points_lie_inside_their_grid(small_world) -> None:
    cases = small_world.cases
    grids = {u.id: u for u in small_world.level("grid")}
    leaf = cases["leaf_unit_id"].astype(np.int64)
    ids = np.array(sorted(grids))
    geoms = np.array([grids[i].geom for i in ids])
    index = np.searchsorted(ids, leaf)
    assert (ids[index] == leaf).all()  # every case sits in a grid
    lon, lat = cases["lon"].astype(float), cases["lat"].astype(float)
    assert shapely.contains_xy(geoms[index], lon, lat).all()
    assert (cases["grid_code"] == np.array([grids[i].code for i in leaf], dtype=object)).all()
    assert (
        cases["village_code"] == np.array([grids[i].parent_code for i in leaf], dtype=object)
    ).all()


def test_workflow_steps_are_in_order_and_never_in_the_future(small_world) -> None:
    c = small_world.cases
    n = len(c["id"])
    steps = ["reported_at", "received_at", "scheduled_at", "handled_at", "visited_at"]
    steps.append("evaluated_at")
    status_steps = ("received", "scheduled", "handled", "visited", "evaluated")
    overdue_open = late_closed = open_cases = 0
    for i in range(n):
        times = [c[s][i] for s in steps]
        reached = [t for t in times if t is not None]
        assert times[: len(reached)] == reached, "a step is missing before a later one"
        assert reached == sorted(reached)
        assert reached[-1] <= END
        assert c["status"][i] == status_steps[len(reached) - 2]
        sla = CATEGORY_BY_CODE[c["category"][i]].sla_days
        assert c["deadline"][i] == c["reported_at"][i] + dt.timedelta(days=sla)
        handled = c["handled_at"][i]
        assert (c["outcome"][i] is None) == (handled is None)
        assert (c["satisfaction"][i] is None) == (c["evaluated_at"][i] is None)
        if handled is None:
            open_cases += 1
            overdue_open += c["deadline"][i] < END
        else:
            late_closed += handled > c["deadline"][i]
    assert 0.005 * n < open_cases < 0.2 * n  # some still open
    assert overdue_open > 0 and late_closed > 0.01 * n  # a long tail overdue
    close_days = [
        (h - r).total_seconds() / 86400
        for h, r in zip(c["handled_at"], c["reported_at"], strict=True)
        if h is not None
    ]
    assert np.median(close_days) < 7  # most close within days


def test_vocabularies_and_identity(small_world) -> None:
    c = small_world.cases
    assert set(c["category"]) == {cat.code for cat in CATEGORIES}
    assert set(c["channel"]) == {ch.code for ch in CHANNELS}
    assert set(c["outcome"]) - {None} <= set(OUTCOMES)
    assert set(c["satisfaction"]) - {None} <= {1, 2, 3, 4, 5}
    pairs = set(zip(c["source"], c["external_id"], strict=True))
    assert len(pairs) == len(c["id"])


def test_mediation_is_near_perfect_city_wide_but_worse_in_some_towns(small_world) -> None:
    c = small_world.cases
    mediated = np.isin(c["outcome"], ["mediated_success", "mediation_failed"])
    success = c["outcome"] == "mediated_success"
    dispute = np.array([CATEGORY_BY_CODE[k].group == "dispute" for k in c["category"]])
    disputes_closed = dispute & np.array([h is not None for h in c["handled_at"]])
    assert mediated[disputes_closed].mean() > 0.97  # mediation rate near 100%
    assert 0.965 < success[mediated].mean() < 0.99  # success near 98% city-wide
    town = np.array([g[:9] for g in c["grid_code"]])
    rates = {t: success[mediated & (town == t)].mean() for t in set(town)}
    assert min(rates.values()) < 0.94 and max(rates.values()) > 0.98


def test_weekly_seasonal_and_festival_rhythm(small_world) -> None:
    c = small_world.cases
    local = [r.astimezone(SHANGHAI) for r in c["reported_at"]]
    weekday = np.array([d.weekday() for d in local])
    per_day = np.bincount(weekday, minlength=7) / 52
    assert per_day[:5].mean() > 1.15 * per_day[5:].mean()  # quieter weekends
    festival = dt.date(2026, 2, 17)
    days = Counter(d.date() for d in local)
    holiday = np.mean([days[festival + dt.timedelta(days=k)] for k in range(0, 6)])
    autumn = np.mean([days[dt.date(2026, 10, 1) + dt.timedelta(days=k)] for k in range(14)])
    assert holiday < 0.8 * autumn  # the Spring Festival lull
    month = Counter(d.month for d in local)
    summer = np.mean([month[m] for m in (6, 7, 8)])
    winter = np.mean([month[m] for m in (11, 12, 1)])
    assert summer > 1.15 * winter  # a seasonal rhythm: busier summers


def test_hot_spots_cluster_in_space(small_world) -> None:
    """Neighbouring villages have similar case rates (Moran's I well above 0): hot spots
    span several villages, the map is not white noise."""
    villages = small_world.level("village")
    per_village = Counter(small_world.cases["village_code"])
    rate = np.log([per_village[v.code] / v.population for v in villages])
    geoms = np.array([v.geom for v in villages])
    a, b = shapely.STRtree(geoms).query(geoms, predicate="touches")
    a, b = a[a != b], b[a != b]
    z = rate - rate.mean()
    moran = len(z) / len(a) * (z[a] * z[b]).sum() / (z * z).sum()
    assert moran > 0.3
    assert np.exp(rate.max() - np.median(rate)) > 2.5  # hot spots stand out


def test_satisfaction_follows_the_outcome(small_world) -> None:
    c = small_world.cases
    score = np.array([s if s is not None else np.nan for s in c["satisfaction"]], float)
    happy = score[c["outcome"] == "mediated_success"]
    unhappy = score[np.isin(c["outcome"], ["mediation_failed", "referred", "withdrawn"])]
    assert np.nanmean(happy) > 4 and np.nanmean(unhappy) < np.nanmean(happy) - 1
    late = np.array(
        [h is not None and h > d for h, d in zip(c["handled_at"], c["deadline"], strict=True)]
    )
    success = c["outcome"] == "mediated_success"
    assert np.nanmean(score[success & late]) < np.nanmean(score[success & ~late]) - 0.5
    assert set(np.unique(score[~np.isnan(score)])) == {1, 2, 3, 4, 5}


def test_planted_bursts_stand_out(small_world) -> None:
    c = small_world.cases
    bursts = planted_bursts("small", 1)
    assert bursts == planted_bursts("small", 1)
    assert len(bursts) >= 3
    local_day = np.array([r.astimezone(SHANGHAI).date() for r in c["reported_at"]])
    for b in bursts:
        mine = (c["village_code"] == b.village_code) & (c["category"] == b.category)
        inside = np.array([b.covers(d) for d in local_day[mine]])
        during = inside.sum() / b.days
        before = (~inside).sum() / (365 - b.days)
        assert during - before > 0.5 * b.extra_per_day, b
