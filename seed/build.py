"""Build a whole world into a database, through the same services real imports use.

Units go through ``api.services.units.add_units``; grid workers, facilities and cases
through ``api.services.bulk`` (COPY on PostgreSQL); the rollups are rebuilt from the cases
at the end. One transaction: a world is written whole or not at all.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sqlalchemy import func, select, text
from tqdm import tqdm

from api.db.models import (
    AdminUnit,
    Case,
    CaseCloseHistogram,
    CaseFlowDaily,
    CaseRollupDaily,
    Facility,
    GridWorker,
)
from api.db.session import get_engine, session_scope
from api.db.versions import bump_version
from api.engine import rebuild_rollups, rollup_table_count
from api.services.bulk import bulk_loading, copy_column_chunks, copy_rows
from api.services.risk_follow import link_incidents
from api.services.units import UnitRecord, add_units, ensure_levels
from api.settings import get_settings
from seed.bursts import planted_bursts
from seed.cases import build_model, generate_cases
from seed.geometry import WorldGeometry, build_geometry
from seed.layout import Layout, make_layout
from seed.network import facilities, grid_population, grid_workers
from seed.populations import seed_populations
from seed.presets import get_preset
from seed.risk import seed_register
from seed.routing import SeedRouting

CHUNK_DAYS = 31


def unit_records(
    layout: Layout, geometry: WorldGeometry, population: np.ndarray, households: np.ndarray
) -> list[UnitRecord]:
    """Every unit of the world, parents first, with people and areas summed up the tree."""
    preset = layout.preset
    area = geometry.grid_area_km2
    n_v, n_t = len(layout.village_codes), len(layout.town_codes)

    def up(values: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
        return np.bincount(label, weights=values, minlength=k)

    per_level = {}
    v = (
        up(population, layout.grid_village, n_v),
        up(households, layout.grid_village, n_v),
        up(area, layout.grid_village, n_v),
    )
    t = tuple(up(x, layout.village_town, n_t) for x in v)
    per_level["grid"] = (population, households, area)
    per_level["village"], per_level["town"] = v, t

    def record(code, name, level, parent, geom, stats, i) -> UnitRecord:
        return UnitRecord(
            code=code,
            name=name,
            level=level,
            parent_code=parent,
            geom=geom,
            population=int(stats[0][i]),
            households=int(stats[1][i]),
            area_km2=round(float(stats[2][i]), 4),
        )

    city_stats = tuple(np.array([x.sum()]) for x in t)
    records = [
        record(preset.city_code, preset.city_name, "city", None, geometry.city, city_stats, 0)
    ]
    if layout.town_district is not None:
        d = tuple(up(x, layout.town_district, len(layout.district_codes)) for x in t)
        for i, code in enumerate(layout.district_codes):
            records.append(
                record(
                    code,
                    layout.district_names[i],
                    "district",
                    preset.city_code,
                    geometry.districts[i],
                    d,
                    i,
                )
            )
    town_parents = layout.town_parent_codes()
    for i, code in enumerate(layout.town_codes):
        records.append(
            record(code, layout.town_names[i], "town", town_parents[i], geometry.towns[i], t, i)
        )
    for i, code in enumerate(layout.village_codes):
        parent = layout.town_codes[layout.village_town[i]]
        records.append(
            record(code, layout.village_names[i], "village", parent, geometry.villages[i], v, i)
        )
    for i, code in enumerate(layout.grid_codes):
        parent = layout.village_codes[layout.grid_village[i]]
        records.append(
            record(
                code,
                layout.grid_names[i],
                "grid",
                parent,
                geometry.grids[i],
                per_level["grid"],
                i,
            )
        )
    return records


def seed_database(
    url: str,
    preset: str = "small",
    seed: int = 1,
    bursts: bool = True,
    progress: bool | None = None,
    events: bool | None = None,
) -> dict[str, object]:
    """Seed an empty, migrated database with world ``preset`` (deterministic for ``seed``).

    ``bursts=False`` builds a quiet world without the planted incident bursts. ``events``
    (default: the small and metro presets) adds patrol bases and dispatch events
    (``seed.events``). Refuses a
    database that has units already. Returns summary figures.
    """
    spec = get_preset(preset)
    if progress is None:
        progress = sys.stderr.isatty()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with session_scope(url) as session:
        if session.scalar(select(func.count()).select_from(AdminUnit)):
            raise ValueError("the database already has units: seed only into an empty one")
        layout = make_layout(spec.name, seed)
        geometry = build_geometry(layout)
        population, households = grid_population(layout, geometry.grid_area_km2)
        timings["geometry_s"] = time.perf_counter() - started

        ensure_levels(session, spec.levels)
        records = unit_records(layout, geometry, population, households)
        add_units(session, records)
        grid_id = dict(
            session.execute(
                select(AdminUnit.code, AdminUnit.id).where(AdminUnit.level == "grid")
            ).all()
        )
        grid_ids = np.array([grid_id[c] for c in layout.grid_codes], dtype=np.int64)
        workers = copy_rows(
            session,
            GridWorker.__table__,
            ["grid_code", "role", "active", "since"],
            grid_workers(layout, population),
        )
        stations = copy_rows(
            session,
            Facility.__table__,
            ["unit_code", "kind", "status", "rating", "video_linked"],
            facilities(layout),
        )
        bump_version(session, "grid_network")
        timings["units_s"] = time.perf_counter() - started - sum(timings.values())

        planted = planted_bursts(spec.name, seed) if bursts else []
        model = build_model(
            layout, geometry.grids, grid_ids, population, planted, get_settings().timezone
        )
        routing = SeedRouting(session, layout, grid_ids, seed)  # 分级分流 by the rules
        chunks = routing.route_chunks(generate_cases(model, seed, CHUNK_DAYS))
        with (
            tqdm(
                total=spec.cases,
                unit=" cases",
                unit_scale=True,
                disable=not progress,
                desc=spec.name,
            ) as bar,
            bulk_loading(session, Case.__table__),
        ):
            cases = copy_column_chunks(session, Case.__table__, chunks, on_chunk=bar.update)
        timings["cases_s"] = time.perf_counter() - started - sum(timings.values())
        actions = routing.write_actions(session, cases)  # and the desk's rollups
        timings["actions_s"] = time.perf_counter() - started - sum(timings.values())
        if session.get_bind().dialect.name == "postgresql":
            # millions of groups: let the aggregates hash in memory instead of spilling
            session.execute(text("SET LOCAL work_mem = '1GB'"))
        rollups = (CaseRollupDaily, CaseFlowDaily, CaseCloseHistogram)
        with (
            tqdm(
                total=rollup_table_count(),
                unit=" tables",
                disable=not progress,
                desc=f"{spec.name} rollups",
            ) as bar,
            bulk_loading(session, *(t.__table__ for t in rollups)),
        ):  # minutes at metro: a step per table filled, as the cases' bar
            rebuild_rollups(
                session, on_table=lambda name: bar.set_postfix_str(name) or bar.update()
            )
        timings["rollups_s"] = time.perf_counter() - started - sum(timings.values())
        register = seed_register(session, spec.name, seed, spec.end)
        timings["risk_s"] = time.perf_counter() - started - sum(timings.values())
        dispatch = {}
        if events if events is not None else spec.name in ("small", "metro"):
            from seed.events import seed_events

            dispatch = seed_events(session, spec.name, seed)
            timings["events_s"] = time.perf_counter() - started - sum(timings.values())
            link_incidents(session, everything=True)  # the register's follow-up counts events
            timings["risk_events_s"] = time.perf_counter() - started - sum(timings.values())
        months = 12 if spec.name == "metro" else 6
        population_rows = seed_populations(session, spec.end, months, seed)
        timings["populations_s"] = time.perf_counter() - started - sum(timings.values())
    if get_engine(url).dialect.name == "postgresql":
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    summary: dict[str, object] = {"preset": spec.name, "seed": seed}
    for level in [lv.code for lv in spec.levels]:
        plural = "cities" if level == "city" else f"{level}s"
        summary[plural] = sum(1 for r in records if r.level == level)
    summary.update(
        grid_workers=workers,
        facilities=stations,
        cases=cases,
        case_actions=actions,
        population_rows=population_rows,
        bursts=len(planted),
        **register,
        **dispatch,
        population=int(population.sum()),
        seconds=round(time.perf_counter() - started, 1),
    )
    summary.update({k: round(v, 1) for k, v in timings.items()})
    return summary
