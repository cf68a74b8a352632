"""Synthetic cases, generated as numpy columns, a month at a time.

Counts are Poisson per grid × day × category. The rate is driven by population and a
per-village risk with hot spots, times a weekly and seasonal rhythm, the Spring Festival
(a holiday lull, wage disputes before it, family disputes around it), a mild upward trend
and the planted bursts. Each case gets a point inside its grid, a channel, and the
接-约-办-访-评 steps (received, scheduled, handled, visited, evaluated) with realistic delays:
most close within days, a long tail runs overdue, recent ones are still open. Weak towns
mediate less successfully and close more slowly, so the maps have something to find.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from api.domain import CATEGORIES, CHANNELS
from seed.bursts import Burst
from seed.layout import Layout, stream

CATEGORY_CODES = [c.code for c in CATEGORIES]
CHANNEL_CODES = [c.code for c in CHANNELS]
CAT = {code: i for i, code in enumerate(CATEGORY_CODES)}
SLA_DAYS = np.array([c.sla_days for c in CATEGORIES], float)
GROUP = np.array([c.group for c in CATEGORIES])

# category shares: city communities vs countryside villages (same order as CATEGORIES)
SHARE_URBAN = np.array([16, 10, 9, 4, 16, 8, 8, 3, 5, 7, 4, 10], float)
SHARE_RURAL = np.array([22, 14, 8, 14, 2, 7, 3, 2, 7, 7, 5, 9], float)

# channel mix per category: 12345 hotline, 110 non-police, grid patrol, walk-in, online
_CHANNEL_DEFAULT = (30, 20, 20, 20, 10)
CHANNEL_MIX = np.array(
    [
        {
            "traffic": (20, 50, 10, 15, 5),
            "consumer": (45, 5, 5, 15, 30),
            "property": (40, 5, 20, 15, 20),
            "petition": (15, 1, 4, 55, 25),
            "safety_hazard": (15, 10, 65, 5, 5),
            "family": (20, 30, 15, 30, 5),
            "labour": (35, 10, 10, 35, 10),
        }.get(code, _CHANNEL_DEFAULT)
        for code in CATEGORY_CODES
    ],
    float,
)
SOURCES = np.array(["12345", "110", "grid_app", "visit_desk", "online"])
# hour-of-day profile of reports (local time)
HOURS = np.array(
    [2, 1.5, 1, 1, 1, 2, 4, 7, 10, 12, 12, 10, 7, 8, 10, 11, 10, 9, 8, 7, 6, 5, 4, 3], float
)
WEEKDAY = np.array([1.1, 1.05, 1.05, 1.0, 1.0, 0.8, 0.75])  # Monday first
SPRING_FESTIVALS = [
    dt.date(2023, 1, 22),
    dt.date(2024, 2, 10),
    dt.date(2025, 1, 29),
    dt.date(2026, 2, 17),
    dt.date(2027, 2, 6),
]
# satisfaction 1..5 given the case's fate: good, late, or an unhappy outcome
SATISFACTION = np.array(
    [[1, 2, 7, 30, 60], [8, 12, 30, 30, 20], [15, 25, 35, 15, 10]], float
).cumsum(1)
SATISFACTION /= SATISFACTION[:, -1:]
DAY = 86_400
HOT_SPOT_SPACINGS = 1.2  # least width (sigma) of a hot spot, in village spacings


@dataclass
class CaseModel:
    """Everything the generator needs, computed once per world."""

    layout: Layout
    grids: np.ndarray  # WGS84 grid polygons, prepared
    grid_ids: np.ndarray  # admin_unit.id of each grid
    days: np.ndarray  # datetime64[D] local days
    day_start: np.ndarray  # int64 UTC seconds of each local midnight
    end_ts: int  # UTC seconds of the end of the last day
    time_factor: np.ndarray  # (D,)
    cat_factor: np.ndarray  # (D, C)
    weights: np.ndarray  # (G, C) expected cases per day before the time factors
    bursts: list[tuple[np.ndarray, int, int, int, np.ndarray]]  # grids, cat, d0, d1, rates
    success: np.ndarray  # (G,) mediation success probability of the grid's town
    slowness: np.ndarray  # (G,) delay multiplier of the grid's town
    tail: np.ndarray  # (G,) probability of a case running far overdue


def _time_factors(days: list[dt.date], start: dt.date) -> tuple[np.ndarray, np.ndarray]:
    n = len(days)
    doy = np.array([d.timetuple().tm_yday for d in days], float)
    years = np.array([(d - start).days / 365.25 for d in days])
    t = WEEKDAY[[d.weekday() for d in days]]
    t *= 1 + 0.12 * np.cos(2 * np.pi * (doy - 200) / 365.25)  # summer peak
    t *= 1 + 0.05 * years  # slow growth
    cat = np.ones((n, len(CATEGORIES)))
    summer = np.exp(-(((doy - 205) / 40) ** 2))
    for code, gain in (("neighbour", 0.25), ("environment", 0.5), ("safety_hazard", 0.4)):
        cat[:, CAT[code]] += gain * summer
    for i, d in enumerate(days):
        for sf in SPRING_FESTIVALS:
            k = (d - sf).days
            if -1 <= k <= 6:
                t[i] *= 0.55  # the holiday lull
            if -30 <= k < -1:
                cat[i, CAT["labour"]] *= 2.2  # wages before going home
            if -3 <= k <= 14:
                cat[i, CAT["family"]] *= 1.6
                cat[i, CAT["neighbour"]] *= 1.2
    return t, cat


def _village_risk(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Per-village risk: smooth hot spots over a log-normal scatter."""
    n_v = len(layout.village_codes)
    xy = layout.sites[: layout.n_grids]
    counts = np.bincount(layout.grid_village, minlength=n_v)
    centre = np.c_[
        np.bincount(layout.grid_village, weights=xy[:, 0]) / counts,
        np.bincount(layout.grid_village, weights=xy[:, 1]) / counts,
    ]
    spots = centre[rng.choice(n_v, layout.preset.hot_spots, replace=False)]
    # a hot spot spans a few villages, not one: sigma of at least 1.2 village spacings
    spacing = np.sqrt(layout.outline.difference(layout.lake).area / n_v)
    sigma = max(0.06 * layout.preset.radius_km, HOT_SPOT_SPACINGS * spacing)
    d2 = ((centre[:, None, :] - spots[None]) ** 2).sum(-1)
    heat = (rng.uniform(0.8, 2.0, len(spots)) * np.exp(-d2 / (2 * sigma**2))).sum(1)
    return (1 + heat) * rng.lognormal(0, 0.3, n_v)


def build_model(
    layout: Layout,
    grids: np.ndarray,
    grid_ids: np.ndarray,
    population: np.ndarray,
    bursts: list[Burst],
    timezone: str,
) -> CaseModel:
    """Rates and per-town quality for ``layout`` (deterministic)."""
    preset = layout.preset
    rng = stream(layout.seed, "cases")
    zone = ZoneInfo(timezone)
    days = [preset.start + dt.timedelta(days=i) for i in range(preset.days)]
    starts = [dt.datetime.combine(d, dt.time(), zone).timestamp() for d in days]
    after = preset.end + dt.timedelta(days=1)
    end_ts = int(dt.datetime.combine(after, dt.time(), zone).timestamp())
    time_factor, cat_factor = _time_factors(days, preset.start)

    u = layout.urban[:, None]
    share = u * SHARE_URBAN / SHARE_URBAN.sum() + (1 - u) * SHARE_RURAL / SHARE_RURAL.sum()
    risk = _village_risk(layout, rng)[layout.grid_village]
    w = population.astype(float) ** 0.85 * risk
    weights = w[:, None] * share
    expected = (time_factor[:, None] * cat_factor * weights.sum(0)[None, :]).sum()
    weights *= preset.cases / expected

    n_towns = len(layout.town_codes)
    grid_town = layout.village_town[layout.grid_village]
    town_load = np.bincount(grid_town, weights=weights.sum(1), minlength=n_towns)
    quiet = np.flatnonzero(town_load <= np.median(town_load))  # weak towns are the smaller
    weak = rng.choice(quiet, min(len(quiet), preset.weak_towns), replace=False)
    town_success = rng.uniform(0.984, 0.995, n_towns)
    town_success[weak] = rng.uniform(0.89, 0.92, len(weak))
    town_slow = rng.uniform(0.85, 1.15, n_towns)
    town_slow[weak] = rng.uniform(1.6, 2.0, len(weak))
    town_tail = np.full(n_towns, 0.04)
    town_tail[weak] = 0.14

    village_index = {code: i for i, code in enumerate(layout.village_codes)}
    planted = []
    for b in bursts:
        members = np.flatnonzero(layout.grid_village == village_index[b.village_code])
        d0 = (b.start - preset.start).days
        rates = b.extra_per_day * w[members] / w[members].sum()
        planted.append((members, CAT[b.category], d0, d0 + b.days, rates))

    shapely.prepare(grids)
    return CaseModel(
        layout=layout,
        grids=grids,
        grid_ids=grid_ids,
        days=np.array(days, dtype="datetime64[D]"),
        day_start=np.array(starts, dtype=np.int64),
        end_ts=end_ts,
        time_factor=time_factor,
        cat_factor=cat_factor,
        weights=weights,
        bursts=planted,
        success=town_success[grid_town],
        slowness=town_slow[grid_town],
        tail=town_tail[grid_town],
    )


def _points_in(
    rng: np.random.Generator, grids: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random point inside grid ``g[i]`` for each i (rejection in the bbox)."""
    bounds = shapely.bounds(grids)[g]
    lon = np.empty(len(g))
    lat = np.empty(len(g))
    todo = np.arange(len(g))
    while todo.size:
        b = bounds[todo]
        x = b[:, 0] + (b[:, 2] - b[:, 0]) * rng.random(todo.size)
        y = b[:, 1] + (b[:, 3] - b[:, 1]) * rng.random(todo.size)
        ok = shapely.contains_xy(grids[g[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    return lon, lat


def _pick(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw a column index from the cumulative distribution ``cum[rows[i]]``."""
    u = rng.random(len(rows))
    return (u[:, None] > cum[rows]).sum(1)


def _lognormal_days(rng, median_days, sigma, n) -> np.ndarray:
    return rng.lognormal(np.log(median_days * DAY), sigma, n)


def generate_cases(
    model: CaseModel, seed: int, chunk_days: int = 31
) -> Iterator[dict[str, np.ndarray]]:
    """Case columns for ``copy_columns``, one chunk of days at a time, in reported order."""
    layout = model.layout
    rng = stream(seed, "cases")
    rng = np.random.default_rng(rng.integers(2**63))  # apart from build_model's draws
    grid_codes = np.array(layout.grid_codes, dtype="U")
    village_codes = np.array(layout.village_codes, dtype="U")[layout.grid_village]
    categories = np.array(CATEGORY_CODES, dtype="U")
    channels = np.array(CHANNEL_CODES, dtype="U")
    channel_cum = CHANNEL_MIX.cumsum(1) / CHANNEL_MIX.sum(1, keepdims=True)
    hour_cum = (HOURS.cumsum() / HOURS.sum())[None, :]
    sla = (SLA_DAYS * DAY).astype(np.int64)
    median_close = np.maximum(0.6, 0.12 * SLA_DAYS)
    serial = 0
    n_days = len(model.days)
    for d0 in range(0, n_days, chunk_days):
        d1 = min(n_days, d0 + chunk_days)
        lam = (
            model.time_factor[d0:d1, None, None]
            * model.weights[None, :, :]
            * model.cat_factor[d0:d1, None, :]
        )
        for members, c, b0, b1, rates in model.bursts:
            lo, hi = max(b0, d0), min(b1, d1)
            if lo < hi:
                lam[lo - d0 : hi - d0, members, c] += rates[None, :]
        counts = rng.poisson(lam)
        di, g, c = np.nonzero(counts)
        reps = counts[di, g, c]
        di, g, c = np.repeat(di + d0, reps), np.repeat(g, reps), np.repeat(c, reps)
        n = len(g)
        if n == 0:
            continue
        hour = _pick(rng, hour_cum, np.zeros(n, np.int64))
        reported = model.day_start[di] + hour * 3600 + rng.integers(0, 3600, n)
        order = np.argsort(reported, kind="stable")
        di, g, c, reported = di[order], g[order], c[order], reported[order]
        ch = _pick(rng, channel_cum, c)
        lon, lat = _points_in(rng, model.grids, g)

        # 接-约-办-访-评 (seconds since the epoch, UTC; -1 = not yet)
        quick = np.isin(ch, [CHANNEL_CODES.index("grid_patrol"), CHANNEL_CODES.index("walk_in")])
        received = reported + rng.exponential(np.where(quick, 60, 600)).astype(np.int64)
        received = np.minimum(received, model.end_ts - 1)
        received = np.maximum(received, reported)
        scheduled = received + rng.lognormal(np.log(3 * 3600), 0.8, n).astype(np.int64)
        close = _lognormal_days(rng, median_close[c] * model.slowness[g], 0.9, n)
        late = rng.random(n) < model.tail[g]
        close[late] = sla[c[late]] * rng.uniform(1.05, 3.0, late.sum())
        handled = scheduled + close.astype(np.int64)
        visited = handled + _lognormal_days(rng, 1.5, 0.7, n).astype(np.int64)
        evaluated = visited + _lognormal_days(rng, 0.6, 0.8, n).astype(np.int64)
        never_visited = rng.random(n) > 0.92
        visited[never_visited] = np.iinfo(np.int64).max
        evaluated[never_visited | (rng.random(n) > 0.88)] = np.iinfo(np.int64).max
        steps = [received, scheduled, handled, visited, evaluated]
        reached = np.ones(n, bool)
        for step in steps:
            reached &= step < model.end_ts
            step[~reached] = -1
        status_index = sum((s >= 0).astype(np.int64) for s in steps) - 1
        deadline = reported + sla[c]

        # outcomes for closed cases, satisfaction for evaluated ones
        closed = handled >= 0
        group = GROUP[c]
        r = rng.random(n)
        mediated_ok = rng.random(n) < model.success[g]
        outcome = np.where(
            group == "dispute",
            np.where(
                r < 0.006,
                "withdrawn",
                np.where(
                    r < 0.012,
                    "referred",
                    np.where(mediated_ok, "mediated_success", "mediation_failed"),
                ),
            ),
            np.where(
                group == "petition",
                np.where(r < 0.88, "resolved", np.where(r < 0.98, "referred", "withdrawn")),
                np.where(r < 0.98, "resolved", "referred"),
            ),
        )
        unhappy = np.isin(outcome, ["mediation_failed", "referred", "withdrawn"])
        fate = np.where(unhappy, 2, np.where(handled > deadline, 1, 0))
        satisfaction = _pick(rng, SATISFACTION, fate) + 1

        serials = np.arange(serial, serial + n)
        serial += n
        latest = np.max(np.vstack(steps), axis=0)
        yield {
            "source": SOURCES[ch],
            "external_id": np.char.add(f"seed{seed}-", np.char.zfill(serials.astype("U"), 9)),
            "channel": channels[ch],
            "category": categories[c],
            "reported_at": _ts(reported),
            "lon": lon,
            "lat": lat,
            "leaf_unit_id": model.grid_ids[g],
            "village_code": village_codes[g],
            "grid_code": grid_codes[g],
            "status": np.array([s.encode() for s in _STATUS], dtype="U")[status_index],
            "received_at": _ts(received),
            "scheduled_at": _ts(scheduled),
            "handled_at": _ts(handled),
            "visited_at": _ts(visited),
            "evaluated_at": _ts(evaluated),
            "outcome": np.ma.masked_array(outcome, mask=~closed),
            "deadline": _ts(deadline),
            "satisfaction": np.ma.masked_array(satisfaction, mask=evaluated < 0),
            "created_at": _ts(received),
            "updated_at": _ts(latest),
        }


_STATUS = ("received", "scheduled", "handled", "visited", "evaluated")


def _ts(seconds: np.ndarray) -> np.ndarray:
    """UTC seconds (-1 = none) → datetime64[us] with NaT."""
    out = seconds.astype("datetime64[s]").astype("datetime64[us]")
    out[seconds < 0] = np.datetime64("NaT")
    return out
