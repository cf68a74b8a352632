"""Check boundary files of any kind: read, reproject, repair, validate, plan the versions.

One file holds one level. It is read with pyogrio (GeoJSON, GeoPackage, Shapefile,
FlatGeobuf, anything GDAL reads), reprojected to WGS84 (CGCS2000 / EPSG:4490 included),
repaired (``make_valid``, said so with the reason) and turned into MultiPolygons, then
checked (:mod:`geo.validate`) against the units there are now. Any error refuses the whole
file (:class:`ImportRefused`).

The plan follows the units' history: a unit whose name, parent, population or shape
changed gets a new version from ``valid_from``; unchanged units are left out, so planning
the same file again plans nothing. Units of the level that the file does not mention are
not touched (a file may cover part of a city).

Files and the current units in, a report and the versions to write out: the database
(levels, reading the current units, writing the versions) is
``api.services.boundaries.import_boundaries``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyogrio
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from geo.validate import (
    ERROR,
    INFO,
    WARNING,
    AreaFrame,
    Problem,
    Thresholds,
    hierarchy_problems,
    problems_geojson,
)


class ExistingUnit(Protocol):
    """A current unit as the check needs it (a database row fits)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    population: int | None
    households: int | None
    valid_from: dt.date
    geom: BaseGeometry | None


@dataclass(frozen=True)
class BoundaryVersion:
    """A new version of a unit to write, from ``valid_from`` on."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: BaseGeometry | None
    population: int | None
    households: int | None
    area_km2: float
    valid_from: dt.date


@dataclass(frozen=True)
class ImportPlan:
    """What a checked file would change: its report, the new versions to write and how
    many units are new, changed and unchanged (the report counts them once written)."""

    report: ImportReport
    versions: list[BoundaryVersion]
    created: int
    changed: int
    unchanged: int


class ImportRefused(ValueError):
    """The file has errors; nothing was written. ``report`` says what and where."""

    def __init__(self, report: ImportReport) -> None:
        errors = [p for p in report.problems if p.severity == ERROR]
        super().__init__(
            f"{report.file}: {len(errors)} error(s), nothing imported; first: {errors[0].message}"
        )
        self.report = report


@dataclass
class ImportReport:
    """What an import found and did."""

    file: str
    level: str
    features: int = 0
    source_crs: str | None = None
    problems: list[Problem] = field(default_factory=list)
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    written: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    def count(self, severity: str) -> int:
        return sum(p.severity == severity for p in self.problems)

    def to_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "file": self.file,
            "level": self.level,
            "features": self.features,
            "source_crs": self.source_crs,
            "written": self.written,
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "errors": self.count(ERROR),
            "warnings": self.count(WARNING),
            "infos": self.count(INFO),
            "problems": [p.to_dict() for p in self.problems],
        }

    def problems_geojson(self) -> bytes:
        """The problem spots as GeoJSON."""
        return problems_geojson(self.problems)


def _text(value) -> str | None:
    """A code or name as text: integral floats (Shapefile numbers) lose their '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _integer(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else round(number)


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty]
    return MultiPolygon(polys)


def read_features(path: Path, layer: str | None = None):
    """The file as a GeoDataFrame in WGS84, and the name of its source CRS."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # GDAL's own message says what it could not read
        raise ValueError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if frame.crs is None:
        x0, y0, x1, y1 = frame.total_bounds if len(frame) else (0, 0, 0, 0)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise ValueError(
                f"{path} has no CRS and its coordinates are not longitude/latitude: "
                "give it a .prj or a CRS (e.g. EPSG:4490 or EPSG:4326)"
            )
        return frame.set_crs(4326), None
    source = frame.crs.to_string()
    return (frame if frame.crs.to_epsg() == 4326 else frame.to_crs(4326)), source


def plan_import(
    path: str | Path,
    *,
    level: str,
    code_field: str,
    name_field: str,
    depths: dict[str, int],
    current_units: Sequence[ExistingUnit],
    valid_from: dt.date,
    parent_field: str | None = None,
    population_field: str | None = None,
    layer: str | None = None,
    thresholds: Thresholds | None = None,
) -> ImportPlan:
    """Check the units of ``level`` in ``path`` against ``current_units`` (the current
    version of every unit) and plan their new versions.

    ``depths``: level code → depth of the level table. Without ``parent_field`` each
    unit's parent is the unit of the level above that holds most of its area. Raises
    :class:`ImportRefused` when the report has errors."""
    thresholds = thresholds or Thresholds()
    path = Path(path)
    report = ImportReport(file=str(path), level=level)
    if level not in depths:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(depths)}")
    frame, report.source_crs = read_features(path, layer)
    report.features = len(frame)
    fields = [c for c in frame.columns if c != frame.geometry.name]
    for option, name in (
        ("--code-field", code_field),
        ("--name-field", name_field),
        ("--parent-field", parent_field),
        ("--population-field", population_field),
    ):
        if name is not None and name not in frame.columns:
            raise ValueError(
                f"{option} {name!r} is not a field of {path.name}: it has {', '.join(fields)}"
            )
    if not len(frame):
        raise ValueError(f"{path} has no features")

    problems = report.problems
    codes = [_text(v) for v in frame[code_field]]
    names = [_text(v) for v in frame[name_field]]
    populations = (
        [_integer(v) for v in frame[population_field]] if population_field else [None] * len(frame)
    )
    geoms = _repaired_geometries(frame.geometry.to_numpy(), codes, problems)
    _code_problems(codes, names, problems)

    current = {u.code: u for u in current_units}
    parents = _parents(
        frame, parent_field, codes, geoms, level, depths, current, problems, thresholds
    )

    # hierarchy checks in metres
    area_frame = AreaFrame(np.array([g for g in geoms if g is not None], dtype=object))
    geoms_m = np.array([None if g is None else area_frame.project(g) for g in geoms], dtype=object)
    parent_geoms_m = {
        p: (area_frame.project(current[p].geom) if current[p].geom is not None else None)
        for p in {p for p in parents if p in current}
    }
    in_file = set(codes)
    other_siblings: dict[str, list] = {}
    parent_set = set(parents)
    for unit in current.values():
        if (
            unit.level == level
            and unit.code not in in_file
            and unit.geom is not None
            and unit.parent_code in parent_set
        ):
            other_siblings.setdefault(unit.parent_code, []).append(
                (unit.code, area_frame.project(unit.geom))
            )
    problems += hierarchy_problems(
        [c or "" for c in codes],
        parents,
        geoms_m,
        parent_geoms_m,
        other_siblings,
        area_frame,
        thresholds,
    )
    above = {u.code for u in current.values() if depths.get(u.level) == depths[level] - 1}
    kept = {u.parent_code for u in current.values() if u.level == level and u.code not in in_file}
    for code in sorted(above - parent_set - kept):
        problems.append(
            Problem(
                "no_children",
                INFO,
                code,
                f"{code} ({current[code].name}) has no {level}: it stays a leaf of its own",
            )
        )
    for geom, code in zip(geoms, codes, strict=True):
        if geom is not None and len(geom.geoms) > 1:
            problems.append(
                Problem("multipart", INFO, code, f"{code} has {len(geom.geoms)} parts (islets)")
            )
    for code in codes:
        old = current.get(code) if code else None
        if old is not None and old.valid_from > valid_from:
            problems.append(
                Problem(
                    "version_order",
                    ERROR,
                    code,
                    f"{code} has a version from {old.valid_from}: give a --valid-from after it",
                )
            )
        elif old is not None and old.level != level:
            problems.append(
                Problem(
                    "level_change",
                    ERROR,
                    code,
                    f"{code} is a {old.level} already, not a {level}: check --level",
                )
            )
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    problems.sort(key=lambda p: (order[p.severity], p.kind, p.code or ""))
    if report.errors:
        raise ImportRefused(report)

    versions = []
    created = changed = unchanged = 0
    for i, code in enumerate(codes):
        old = current.get(code)
        area_km2 = round(float(shapely.area(geoms_m[i])) / 1e6, 4)
        population = (
            populations[i] if populations[i] is not None else getattr(old, "population", None)
        )
        version = BoundaryVersion(
            code=code,
            name=names[i],
            level=level,
            parent_code=parents[i],
            geom=geoms[i],
            population=population,
            households=getattr(old, "households", None),
            area_km2=area_km2,
            valid_from=valid_from,
        )
        if old is not None and _same(old, version):
            unchanged += 1
            continue
        if old is None:
            created += 1
        else:
            changed += 1
        versions.append(version)
    return ImportPlan(report, versions, created, changed, unchanged)


def check_level_table(depths: dict[str, int], codes: list[str]) -> None:
    """Refuse (ValueError) a level table ``codes`` (root first) that would move a level
    of ``depths`` (code → depth, the levels defined already)."""
    for depth, code in enumerate(codes):
        if code in depths and depths[code] != depth:
            raise ValueError(
                f"level {code!r} is at depth {depths[code]} already, not {depth}: "
                f"the levels are {', '.join(depths)}"
            )
    by_depth = {d: c for c, d in depths.items()}
    for depth, code in enumerate(codes):
        if depth in by_depth and by_depth[depth] != code:
            raise ValueError(
                f"depth {depth} is level {by_depth[depth]!r} already, not {code!r}: "
                f"the levels are {', '.join(depths)}"
            )


def _same(old: ExistingUnit, new: BoundaryVersion) -> bool:
    if (old.name, old.level, old.parent_code, old.population) != (
        new.name,
        new.level,
        new.parent_code,
        new.population,
    ):
        return False
    if old.geom is None or new.geom is None:
        return old.geom is None and new.geom is None
    return bool(
        shapely.equals_exact(shapely.normalize(old.geom), shapely.normalize(new.geom), 1e-9)
    )


def _repaired_geometries(raw: np.ndarray, codes: list, problems: list[Problem]) -> list:
    out = []
    for geom, code in zip(raw, codes, strict=True):
        if geom is None or geom.is_empty:
            problems.append(Problem("empty_geometry", ERROR, code, f"{code} has no geometry"))
            out.append(None)
            continue
        geom = shapely.force_2d(geom)
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            geom = shapely.make_valid(geom)
            problems.append(
                Problem(
                    "invalid_geometry",
                    WARNING,
                    code,
                    f"{code}: {reason}; repaired with make_valid",
                    geom=geom,
                )
            )
            point = shapely.point_on_surface(geom)
            problems[-1].lon, problems[-1].lat = round(point.x, 6), round(point.y, 6)
        polygonal = _polygonal(geom)
        if polygonal.is_empty:
            problems.append(
                Problem("not_a_polygon", ERROR, code, f"{code} is a {geom.geom_type}, not an area")
            )
            out.append(None)
            continue
        out.append(polygonal)
    return out


def _code_problems(codes: list, names: list, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code is None:
            problems.append(Problem("empty_code", ERROR, None, f"feature #{i + 1} has no code"))
            continue
        if len(code) > 32:
            problems.append(Problem("long_code", ERROR, code, f"code {code!r} is over 32 chars"))
        if code in seen:
            problems.append(
                Problem(
                    "duplicate_code",
                    ERROR,
                    code,
                    f"code {code} appears in features #{seen[code] + 1} and #{i + 1}",
                )
            )
        seen.setdefault(code, i)
        if names[i] is None:
            problems.append(Problem("empty_name", ERROR, code, f"{code} has no name"))


def _parents(
    frame, parent_field, codes, geoms, level, depths, current, problems, thresholds
) -> list[str | None]:
    depth = depths[level]
    if depth == 0:
        return [None] * len(codes)
    if parent_field is not None:
        parents = [_text(v) for v in frame[parent_field]]
    else:
        parents = _parents_by_area(geoms, depth, depths, current)
    severity = ERROR if thresholds.unknown_parent_is_error else WARNING
    for i, (code, parent) in enumerate(zip(codes, parents, strict=True)):
        unit = current.get(parent) if parent else None
        if unit is None and parent_field is None and geoms[i] is None:
            continue  # no shape to place it by: its geometry error says so
        if unit is None:
            what = f"parent code {parent!r} is unknown" if parent else "no parent"
            problems.append(
                Problem(
                    "unknown_parent",
                    severity,
                    code,
                    f"{code}: {what}; import the level above first",
                    other_code=parent,
                )
            )
            if geoms[i] is not None:
                point = shapely.point_on_surface(geoms[i])
                problems[-1].lon, problems[-1].lat = round(point.x, 6), round(point.y, 6)
            parents[i] = None if severity == WARNING else parent
        elif depths.get(unit.level, 0) >= depth:
            problems.append(
                Problem(
                    "parent_level",
                    ERROR,
                    code,
                    f"{code}: parent {parent} is a {unit.level}, not above {level}",
                    other_code=parent,
                )
            )
    return parents


def _parents_by_area(geoms, depth, depths, current) -> list[str | None]:
    """The unit one level up (or the deepest above) holding most of each geometry."""
    above = [u for u in current.values() if depths.get(u.level, 0) < depth and u.geom is not None]
    if not above:
        return [None] * len(geoms)
    best_depth = max(depths.get(u.level, 0) for u in above)
    candidates = [u for u in above if depths.get(u.level, 0) == best_depth]
    tree = shapely.STRtree([u.geom for u in candidates])
    out: list[str | None] = []
    for geom in geoms:
        if geom is None:
            out.append(None)
            continue
        hits = tree.query(geom, predicate="intersects")
        if not len(hits):
            out.append(None)
            continue
        shared = shapely.area(shapely.intersection(tree.geometries[hits], geom))
        out.append(candidates[hits[int(np.argmax(shared))]].code)
    return out
