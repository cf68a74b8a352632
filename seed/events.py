"""Dispatch events for a seeded world (``docs/events.md``): patrol bases and units, and a
year (metro) or a quarter (small) of events at the report's scale — 2.318 M effective
dispatches in half a year for Suzhou's ~12.9 M residents, scaled by the world's population
— with its type split (crime 5.2 %, disputes 12.3 %, traffic 26.2 %, help 51.2 %, the rest
other).

Response times are drawn, not constant: setting off takes longer at night and in small
villages; the way to the scene grows with the straight-line distance from the nearest base
of the answering force (a road factor of 1.35) at a speed that is lower in the rush hours
(07-09, 17-19) and in the town centres' traffic, higher on rural roads but from bases
farther away; support comes from the next base; a cordon takes the city's forces.

Reads the world from the database (grids with their points, people and towns), so it runs
as a phase of ``seed.build`` and on its own over an existing world (``seed_events``).
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from scipy.spatial import cKDTree
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.events import HISTOGRAMS, DispatchEvent, EventRollupDaily, PatrolBase, PatrolUnit
from api.db.models import AdminUnit, UnitAncestry
from api.engine import EVENTS, rebuild
from api.services.bulk import bulk_loading, copy_column_chunks, copy_rows
from api.settings import get_settings

REPORT_DISPATCHES = 2_318_000 * 2  # a year: twice the report's half year
REPORT_POPULATION = 12_900_000
TYPE_SPLIT = {"crime": 0.052, "dispute": 0.123, "traffic": 0.262, "help": 0.512}
TYPE_SPLIT["other"] = 1 - sum(TYPE_SPLIT.values())
CATEGORIES = {
    "crime": ("theft", "fraud", "assault", "robbery"),
    "dispute": ("neighbour", "family", "labour", "commercial"),
    "traffic": ("collision", "congestion", "illegal_parking"),
    "help": ("medical", "lost_person", "locked_out", "elderly"),
    "other": ("noise", "animal", "hazard"),
}
HISTORY_DAYS = {"metro": 365, "small": 45, "tiny": 31}
# the hour of receipt: quiet at night, peaks late morning and evening
HOURLY = np.array([2.2, 1.6, 1.2, 1.0, 1.0, 1.4, 2.6, 4.0, 5.0, 5.4, 5.6, 5.6,
                   5.2, 5.0, 5.2, 5.4, 5.6, 5.8, 5.8, 5.6, 5.2, 4.6, 3.8, 3.0])  # fmt: skip
ROAD_FACTOR = 1.35  # road distance / straight line
CHUNK = 200_000


def _plane(lat0: float) -> np.ndarray:
    """Metres per degree (lon, lat) around ``lat0``."""
    return np.array([111_320.0 * math.cos(math.radians(lat0)), 110_574.0])


def _grids(session: Session) -> dict[str, np.ndarray]:
    """The current leaf grids: id, code, village code, town index, point, people, area."""
    rows = session.execute(
        select(AdminUnit.id, AdminUnit.code, AdminUnit.parent_code, AdminUnit.population,
               AdminUnit.area_km2, AdminUnit.geom)
        .where(AdminUnit.level == "grid").where(AdminUnit.valid_to.is_(None))
        .order_by(AdminUnit.id)
    ).all()  # fmt: skip
    towns = dict(
        session.execute(
            select(UnitAncestry.unit_id, UnitAncestry.ancestor_code).where(
                UnitAncestry.ancestor_level == "town"
            )
        ).all()
    )
    points = shapely.point_on_surface(np.array([r.geom for r in rows], dtype=object))
    xy = shapely.get_coordinates(points)
    town_codes = np.array([towns.get(r.id, "") for r in rows], dtype=object)
    _, town = np.unique(town_codes, return_inverse=True)
    area = np.array([r.area_km2 or 0.0 for r in rows])
    if not area.any():
        area = shapely.area(np.array([r.geom for r in rows], dtype=object)) * 1.2e4
    return {
        "id": np.array([r.id for r in rows], dtype=np.int64),
        "code": np.array([r.code for r in rows], dtype=object),
        "village": np.array([r.parent_code for r in rows], dtype=object),
        "town": town.ravel(),
        "lon": xy[:, 0],
        "lat": xy[:, 1],
        "population": np.array([r.population or 0 for r in rows], dtype=np.float64),
        "area": np.maximum(area, 0.01),
    }


def plan_bases(g: dict[str, np.ndarray], rng: np.random.Generator) -> list[tuple]:
    """Bases: a police station at each town's busiest grid and its second busiest (towns
    of over 60,000), a grid-patrol post in about half the villages, unit security at the
    busiest grids, volunteer posts in a few. Rows (code, name, kind, lon, lat, unit)."""
    out = []
    pop = g["population"]
    for t in np.unique(g["town"]):
        members = np.flatnonzero(g["town"] == t)
        ranked = members[np.argsort(-pop[members], kind="stable")]
        for k, i in enumerate(ranked[: 2 if pop[members].sum() > 60_000 else 1]):
            out.append((f"PS{t:03d}{k}", f"派出所{t:03d}-{k}", "police", i))
    villages = np.unique(g["village"])
    people = {v: pop[g["village"] == v].sum() for v in villages}
    busiest = sorted(villages, key=lambda v: -people[v])[: max(1, int(len(villages) * 0.35))]
    for v in busiest:  # 警务站 in the busiest third of the villages
        members = np.flatnonzero(g["village"] == v)
        i = members[np.argmax(pop[members])]
        out.append((f"PP{v}", f"警务站{v[-6:]}", "police", i))
    for v in villages[rng.random(len(villages)) < 0.5]:
        members = np.flatnonzero(g["village"] == v)
        out.append((f"GP{v}", f"网格巡防站{v[-6:]}", "grid_patrol", members[0]))
    busy = np.argsort(-pop / g["area"], kind="stable")[: max(1, len(pop) // 40)]
    for i in busy:
        out.append((f"US{g['code'][i]}", f"单位保安{g['code'][i][-6:]}", "unit_security", i))
    for i in rng.choice(len(pop), max(1, len(pop) // 60), replace=False):
        out.append((f"VO{g['code'][i]}", f"志愿者站{g['code'][i][-6:]}", "volunteer", i))
    jitter = rng.normal(0, 0.002, (len(out), 2))
    return [
        (code, name, kind, float(g["lon"][i] + jitter[j, 0] * 0.1),
         float(g["lat"][i] + jitter[j, 1] * 0.1), g["code"][i])
        for j, (code, name, kind, i) in enumerate(out)
    ]  # fmt: skip


def generate(
    g: dict[str, np.ndarray],
    bases: list[tuple],
    days: int,
    end: dt.date,
    seed: int,
    timezone: str,
):
    """Event column chunks for ``days`` days ending on ``end``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 21]))
    total = REPORT_DISPATCHES * g["population"].sum() / REPORT_POPULATION * days / 365
    n = int(rng.poisson(total))
    density = g["population"] / g["area"]
    urban = np.clip(np.log10(np.maximum(density, 1)) / 4.5, 0, 1)  # 0 rural .. 1 dense core
    weight = g["population"] ** 0.9 * (0.6 + 0.8 * urban)
    weight /= weight.sum()
    kinds = np.array([b[2] for b in bases], dtype=object)
    scale = _plane(float(np.mean(g["lat"])))
    base_xy = np.array([[b[3], b[4]] for b in bases]) * scale
    trees = {k: cKDTree(base_xy[kinds == k]) for k in np.unique(kinds)}
    all_tree = cKDTree(base_xy)
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time(), zone)
    start_s = int(start.timestamp())
    types = np.array(list(TYPE_SPLIT), dtype=object)
    type_p = np.array(list(TYPE_SPLIT.values()))
    hour_p = HOURLY / HOURLY.sum()
    serial = 0
    for first in range(0, n, CHUNK):
        m = min(CHUNK, n - first)
        grid = rng.choice(len(weight), m, p=weight)
        typ = rng.choice(len(types), m, p=type_p)
        day = rng.integers(0, days, m)
        hour = rng.choice(24, m, p=hour_p)
        received = start_s + day * 86400 + hour * 3600 + rng.integers(0, 3600, m)
        # the local hour (the day's start is local midnight; DST aside, Shanghai has none)
        night = (hour < 7) | (hour >= 19)
        rush = np.isin(hour, (7, 8, 17, 18))
        # the answering force: volunteers off-peak, unit security in dense places
        u = rng.random(m)
        p_vol = np.where(night | (hour < 9), 0.04, 0.12)
        p_sec = 0.04 + 0.12 * urban[grid]
        p_grid = 0.14 + 0.10 * (1 - urban[grid])
        force = np.where(u < p_vol, "volunteer",
                 np.where(u < p_vol + p_sec, "unit_security",
                 np.where(u < p_vol + p_sec + p_grid, "grid_patrol", "police")))  # fmt: skip
        force[typ == 0] = "police"  # crime: the police
        xy = np.column_stack([g["lon"][grid], g["lat"][grid]]) * scale
        xy += rng.normal(0, 250, (m, 2)) * (1.5 - urban[grid])[:, None]
        dist = np.empty(m)
        for k, tree in trees.items():
            rows = force == k
            if rows.any():
                dist[rows] = tree.query(xy[rows])[0]
        far = (force != "police") & (dist > 1500)  # no post of that force near: the police
        force[far] = "police"
        dist[far] = trees["police"].query(xy[far])[0]
        # set off: about a minute and a half, longer at night and where posts are thin
        set_off = rng.lognormal(np.log(75 + 45 * night + 40 * (1 - urban[grid])), 0.55, m)
        speed_kmh = np.where(rush, 22, 32) + 18 * (1 - urban[grid]) - 6 * urban[grid]
        travel = dist * ROAD_FACTOR / (speed_kmh / 3.6) * rng.lognormal(0, 0.25, m)
        on_scene = set_off + 30 + travel
        support_p = np.array([0.35, 0.10, 0.08, 0.03, 0.03])[typ]
        support = rng.random(m) < support_p
        second = all_tree.query(xy, k=2)[0][:, 1]
        support_s = (
            on_scene + 120 + second * ROAD_FACTOR / (speed_kmh / 3.6) * rng.lognormal(0, 0.3, m)
        )
        cordon = (typ == 0) & (rng.random(m) < 0.04)
        cordon_s = on_scene + rng.lognormal(np.log(900 + 600 * (1 - urban[grid])), 0.35, m)
        no_scene = rng.random(m) < 0.015  # still without an on-scene time
        closed = on_scene + rng.lognormal(np.log(2400), 0.6, m)
        closed = np.maximum(closed, np.where(support, support_s, 0) + 300)
        closed = np.maximum(closed, np.where(cordon, cordon_s, 0) + 600)
        lonlat = xy / scale
        cats = np.array([CATEGORIES[t][0] for t in types], dtype=object)[typ]
        pick = rng.integers(0, 4, m)
        for j, t in enumerate(types):
            rows = typ == j
            options = np.array(CATEGORIES[t], dtype=object)
            cats[rows] = options[pick[rows] % len(options)]
        outcome = np.where(rng.random(m) < 0.04, "became_case",
                  np.where(rng.random(m) < 0.05, "false_alarm", "handled"))  # fmt: skip

        def ts(seconds: np.ndarray, keep: np.ndarray | None = None, at=received) -> np.ndarray:
            out = (at + np.round(seconds)).astype("datetime64[s]").astype("datetime64[us]")
            if keep is not None:
                out[~keep] = np.datetime64("NaT")
            return out

        rec = received.astype("datetime64[s]").astype("datetime64[us]")
        serials = np.arange(serial, serial + m)
        serial += m
        yield {
            "source": np.full(m, "110", dtype=object),
            "external_id": np.char.add(f"ev{seed}-", np.char.zfill(serials.astype("U"), 9)),
            "type": types[typ],
            "category": cats,
            "priority": np.where(typ == 0, 1, np.where(typ == 3, 2, 3)).astype(np.int16),
            "lon": np.round(lonlat[:, 0], 6),
            "lat": np.round(lonlat[:, 1], 6),
            "leaf_unit_id": g["id"][grid],
            "village_code": g["village"][grid],
            "grid_code": g["code"][grid],
            "placed_by_tolerance": np.zeros(m, dtype=bool),
            "shift": np.where(night, "night", "day").astype(object),
            "received_at": rec,
            "set_off_at": ts(set_off),
            "on_scene_at": ts(on_scene, ~no_scene),
            "support_requested": support,
            "support_at": ts(support_s, support),
            "cordon_ordered": cordon,
            "cordon_at": ts(cordon_s, cordon),
            "closed_at": ts(closed),
            "force_kind": force.astype(object),
            "outcome": outcome.astype(object),
            "created_at": rec,
            "updated_at": ts(closed),
        }


def seed_events(session: Session, preset: str, seed: int = 1, end: dt.date | None = None) -> dict:
    """Bases, patrol units and events for the world in ``session`` (the preset names the
    history's length), then the events' rollups rebuilt; in the caller's transaction.
    Returns counts."""
    from seed.presets import get_preset

    spec = get_preset(preset)
    g = _grids(session)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 22]))
    bases = plan_bases(g, rng)
    copy_rows(session, PatrolBase.__table__,
              ["code", "name", "force_kind", "lon", "lat", "unit_code"], bases)  # fmt: skip
    units = [(f"{b[0]}-{k}", b[2], b[0]) for b in bases for k in range(2)]
    copy_rows(session, PatrolUnit.__table__, ["code", "force_kind", "base_code"], units)
    days = HISTORY_DAYS.get(spec.name, 91)
    chunks = generate(g, bases, days, end or spec.end, seed, get_settings().timezone)
    with bulk_loading(session, DispatchEvent.__table__):
        events = copy_column_chunks(session, DispatchEvent.__table__, chunks)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '512MB'"))
    tables = (EventRollupDaily, *HISTOGRAMS)
    with bulk_loading(session, *(t.__table__ for t in tables)):
        rebuild(session, EVENTS)
    return {"patrol_bases": len(bases), "patrol_units": len(units), "events": events}
