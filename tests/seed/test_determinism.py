"""Same seed, same world, byte for byte; a world is built on PostGIS as on SQLite."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select, text

from api.db.models import AdminUnit, Case, Facility, GridWorker
from api.db.session import dispose_engines, session_scope
from seed.build import seed_database
from seed.bursts import planted_bursts
from seed.presets import TINY


def world_hash(url: str) -> str:
    """A digest of every unit (with its geometry's WKB) and every case, in id order."""
    digest = hashlib.sha256()
    with session_scope(url) as session:
        for unit in session.scalars(select(AdminUnit).order_by(AdminUnit.code)):
            fields = ("code", "name", "level", "parent_code", "population", "households")
            digest.update(repr([getattr(unit, f) for f in (*fields, "area_km2")]).encode())
            digest.update(shapely.to_wkb(unit.geom))
        for row in session.execute(select(Case.__table__).order_by(Case.id)):
            digest.update(repr(tuple(row)).encode())
        for table in (GridWorker, Facility):
            for row in session.execute(select(table.__table__).order_by(table.id)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def seeded(template: Path, folder: Path, name: str, seed: int, bursts: bool = True) -> str:
    path = folder / f"{name}.db"
    shutil.copy(template, path)
    url = f"sqlite:///{path}"
    seed_database(url, preset="tiny", seed=seed, bursts=bursts, progress=False)
    return url


def test_same_seed_same_world(sqlite_template: Path, tmp_path: Path) -> None:
    first = world_hash(seeded(sqlite_template, tmp_path, "a", seed=7))
    again = world_hash(seeded(sqlite_template, tmp_path, "b", seed=7))
    other = world_hash(seeded(sqlite_template, tmp_path, "c", seed=8))
    dispose_engines()
    assert first == again
    assert first != other
    assert planted_bursts("tiny", 7) == planted_bursts("tiny", 7)
    assert planted_bursts("tiny", 7) != planted_bursts("tiny", 8)


def test_quiet_world_has_no_burst(sqlite_template: Path, tmp_path: Path) -> None:
    (burst,) = planted_bursts("tiny", 3)
    counts = {}
    for bursts in (True, False):
        url = seeded(sqlite_template, tmp_path, f"q{bursts}", seed=3, bursts=bursts)
        with session_scope(url) as session:
            counts[bursts] = session.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.village_code == burst.village_code)
                .where(Case.category == burst.category)
            )
    dispose_engines()
    assert counts[True] - counts[False] > burst.days * burst.extra_per_day / 2


def test_a_database_with_units_is_refused(sqlite_template: Path, tmp_path: Path) -> None:
    url = seeded(sqlite_template, tmp_path, "once", seed=1)
    with pytest.raises(ValueError, match="already has units"):
        seed_database(url, preset="tiny", seed=1, progress=False)
    dispose_engines()


def test_unknown_preset_is_a_clear_error(sqlite_template: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        seed_database(f"sqlite:///{tmp_path / 'x.db'}", preset="huge")


def test_tiny_world_on_each_database(db_url: str) -> None:
    """The same world on SQLite and PostGIS: counts, valid shapes, points in their grids."""
    summary = seed_database(db_url, preset="tiny", seed=2, progress=False)
    with session_scope(db_url) as session:
        levels = dict(
            session.execute(select(AdminUnit.level, func.count()).group_by(AdminUnit.level)).all()
        )
        n_cases = session.scalar(select(func.count()).select_from(Case))
        grids = dict(
            session.execute(
                select(AdminUnit.id, AdminUnit.geom).where(AdminUnit.level == "grid")
            ).all()
        )
        points = session.execute(select(Case.leaf_unit_id, Case.lon, Case.lat)).all()
        if session.get_bind().dialect.name == "postgresql":
            outside = session.scalar(
                text(
                    'SELECT count(*) FROM "case" c JOIN admin_unit u ON u.id = c.leaf_unit_id '
                    "WHERE NOT ST_Contains(u.geom, ST_SetSRID(ST_Point(c.lon, c.lat), 4326))"
                )
            )
            invalid = session.scalar(
                text("SELECT count(*) FROM admin_unit WHERE NOT ST_IsValid(geom)")
            )
            assert outside == 0 and invalid == 0
    assert levels == {"city": 1, "town": TINY.towns, "village": TINY.villages, "grid": TINY.grids}
    assert n_cases == summary["cases"]
    assert abs(n_cases - TINY.cases) < 0.1 * TINY.cases
    leaf = np.array([p[0] for p in points])
    geoms = np.array([grids[i] for i in leaf])
    lon = np.array([p[1] for p in points])
    lat = np.array([p[2] for p in points])
    assert shapely.contains_xy(geoms, lon, lat).all()
