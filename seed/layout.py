"""The layout of a world: where the grid cells sit and who belongs to whom.

Cheap (points and nearest-neighbour queries only, no polygons), so that
``planted_bursts`` can name villages without drawing any boundary. Everything is in a
local plane in kilometres around the city centre; ``seed.geometry`` turns it into
polygons in WGS84.

Grids are Voronoi cells of sites sampled with an urban density (dense core, a few
sub-centres, sparse countryside). Villages are clusters of grids, towns clusters of
villages, districts clusters of towns, so every level nests exactly in the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, cKDTree
from shapely.geometry import Polygon

from seed.names import TOWN_POOL, VILLAGE_POOL, draw_names, grid_name
from seed.presets import Preset, get_preset

STREAMS = {
    "layout": 1,
    "warp": 2,
    "people": 3,
    "network": 4,
    "cases": 5,
    "bursts": 6,
    "routing": 7,
}
STREET_SHARE = 0.35  # share of towns that are urban 街道 (the most urban ones)
COMMUNITY_URBAN = 0.4  # villages more urban than this are 社区, the rest 村


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per purpose, so one part never shifts another."""
    return np.random.default_rng(np.random.SeedSequence([seed, STREAMS[name]]))


@dataclass
class Density:
    """Urban intensity: a dense core, sub-centres, and a sparse base everywhere."""

    base: float
    centers: np.ndarray  # (k, 2) km
    peaks: np.ndarray  # (k,)
    sigmas: np.ndarray  # (k,) km

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        d2 = ((xy[:, None, :] - self.centers[None, :, :]) ** 2).sum(-1)
        return self.base + (self.peaks * np.exp(-d2 / (2 * self.sigmas**2))).sum(-1)

    def urban(self, xy: np.ndarray) -> np.ndarray:
        """0 (countryside) .. 1 (city core)."""
        return np.clip(self(xy) - self.base, 0.0, 1.0)


@dataclass
class Layout:
    """Sites of all grid cells and the hierarchy above them, in code order."""

    preset: Preset
    seed: int
    sites: np.ndarray  # (n_sites, 2) km: the first ``n_grids`` are grids, the rest bound them
    outline: Polygon  # the city's outline in km (before the warp)
    lake: Polygon
    density: Density
    urban: np.ndarray  # (n_grids,) 0..1
    grid_village: np.ndarray  # (n_grids,) village index
    village_town: np.ndarray  # (n_villages,) town index
    town_district: np.ndarray | None  # (n_towns,) district index, None without districts
    grid_codes: list[str]
    grid_names: list[str]
    village_codes: list[str]
    village_names: list[str]
    town_codes: list[str]
    town_names: list[str]
    district_codes: list[str]
    district_names: list[str]

    @property
    def n_grids(self) -> int:
        return len(self.grid_codes)

    def town_parent_codes(self) -> list[str]:
        """The parent code of each town (its district, or the city)."""
        if self.town_district is None:
            return [self.preset.city_code] * len(self.town_codes)
        return [self.district_codes[d] for d in self.town_district]


def _outline(rng: np.random.Generator, radius: float) -> Polygon:
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.04, 0.13) / k**0.4 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.55, None)
    return Polygon(np.c_[r * np.cos(theta), r * np.sin(theta)])


def _lake(rng: np.random.Generator, radius: float) -> Polygon:
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = 0.5 * radius * np.cos(angle), 0.5 * radius * np.sin(angle)
    theta = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    wobble = 1 + 0.15 * np.cos(3 * theta + rng.uniform(0, 6)) + 0.1 * np.cos(5 * theta)
    a, b, tilt = 0.14 * radius, 0.07 * radius, rng.uniform(0, np.pi)
    x, y = a * wobble * np.cos(theta), b * wobble * np.sin(theta)
    c, s = np.cos(tilt), np.sin(tilt)
    return Polygon(np.c_[cx + c * x - s * y, cy + s * x + c * y])


def _density(rng: np.random.Generator, preset: Preset) -> Density:
    radius = preset.radius_km
    k = preset.sub_centers
    angles = rng.uniform(0, 2 * np.pi, k)
    dists = rng.uniform(0.3, 0.75, k) * radius
    centers = np.vstack([[0.0, 0.0], np.c_[dists * np.cos(angles), dists * np.sin(angles)]])
    peaks = np.r_[1.0, rng.uniform(0.3, 0.6, k)]
    sigmas = np.r_[0.16 * radius, rng.uniform(0.04, 0.07, k) * radius]
    return Density(0.12, centers, peaks, sigmas)


def _sample_sites(
    rng: np.random.Generator, preset: Preset, outline: Polygon, lake: Polygon, density: Density
) -> np.ndarray:
    """``preset.grids`` sites inside the city (not in the lake) first, then bounding sites."""
    land = outline.difference(lake)
    shapely.prepare(land)
    x0, y0, x1, y1 = outline.bounds
    margin = 0.25 * preset.radius_km
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    peak = density.base + density.peaks.sum()
    inside: list[np.ndarray] = []
    outside: list[np.ndarray] = []
    n_inside = 0
    while n_inside < preset.grids:
        n = 4 * preset.grids
        xy = np.c_[rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]
        xy = xy[rng.uniform(0, peak, n) < density(xy)]
        is_in = shapely.contains_xy(land, xy[:, 0], xy[:, 1])
        need = preset.grids - n_inside
        cut = len(xy) if is_in.sum() <= need else int(np.flatnonzero(is_in)[need - 1]) + 1
        xy, is_in = xy[:cut], is_in[:cut]
        inside.append(xy[is_in])
        outside.append(xy[~is_in])
        n_inside += int(is_in.sum())
    # a few more sites in the lake so that its hole takes its shape
    lx0, ly0, lx1, ly1 = lake.bounds
    lxy = np.c_[rng.uniform(lx0, lx1, 400), rng.uniform(ly0, ly1, 400)]
    lxy = lxy[shapely.contains_xy(lake, lxy[:, 0], lxy[:, 1])][:12]
    # a coarse ring far out so that no kept cell is unbounded
    ring = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    far = 2.2 * preset.radius_km * np.c_[np.cos(ring), np.sin(ring)]
    return np.vstack([*inside, *outside, lxy, far])


def _smooth_shift(rng: np.random.Generator, xy: np.ndarray, scale: float, amp: float) -> np.ndarray:
    """A smooth random displacement (a few sinusoids) used to bend assignment borders."""
    out = np.zeros_like(xy)
    for _ in range(6):
        k = rng.normal(size=2)
        k *= 2 * np.pi / (scale * rng.uniform(0.7, 1.5) * np.linalg.norm(k))
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction)
        out += amp * direction * np.sin(xy @ k + rng.uniform(0, 2 * np.pi))[:, None]
    return out


def _cluster(
    rng: np.random.Generator, points: np.ndarray, k: int, rounds: int = 5, balance_rounds: int = 12
) -> np.ndarray:
    """Split ``points`` into ``k`` compact, non-empty clusters of similar size (k-medoids
    on nearest seeds, then size balancing with weighted distances).

    Seeds are always points of their own cluster, so no cluster is ever empty.
    """
    seeds = np.sort(rng.choice(len(points), k, replace=False))
    for _ in range(rounds):
        _, label = cKDTree(points[seeds]).query(points)
        counts = np.bincount(label, minlength=k)
        sums = np.zeros((k, 2))
        np.add.at(sums, label, points)
        means = sums / counts[:, None]
        dist = ((points - means[label]) ** 2).sum(1)
        order = np.lexsort((dist, label))
        first = np.r_[0, np.flatnonzero(np.diff(label[order])) + 1]
        seeds = order[first]
    # balance: multiplicatively weighted distances grow small clusters, shrink big ones
    near = min(12, k)
    d, idx = cKDTree(points[seeds]).query(points, k=near)
    d2, idx = (d**2).reshape(len(points), near), idx.reshape(len(points), near)
    rows = np.arange(len(points))
    scale = np.ones(k)
    target = len(points) / k
    for _ in range(balance_rounds):
        label = idx[rows, np.argmin(d2 / scale[idx], axis=1)]
        size = np.bincount(label, minlength=k)
        scale *= np.clip((target / np.maximum(size, 0.5)) ** 0.3, 0.7, 1.4)
    label = idx[rows, np.argmin(d2 / scale[idx], axis=1)]
    label[seeds] = np.arange(k)  # every seed keeps its own point: no cluster is empty
    return label


def _means(values: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(label, minlength=k)
    if values.ndim == 1:
        return np.bincount(label, weights=values, minlength=k) / counts
    return (
        np.c_[[np.bincount(label, weights=values[:, j], minlength=k) for j in range(2)]].T
        / (counts[:, None])
    )


def _grid_edges(sites: np.ndarray, n_grids: int) -> np.ndarray:
    """Pairs (i, j), i < j, of grid cells that share a border (Delaunay neighbours)."""
    indptr, indices = Delaunay(sites).vertex_neighbor_vertices
    src = np.repeat(np.arange(len(sites)), np.diff(indptr))
    keep = (src < indices) & (indices < n_grids)
    return np.c_[src[keep], indices[keep]]


def _make_contiguous(label: np.ndarray, edges: np.ndarray, rounds: int = 20) -> None:
    """Hand every detached fragment of a cluster to the neighbour it shares most border
    with, until each cluster is one piece (in place)."""
    n = len(label)
    for _ in range(rounds):
        same = label[edges[:, 0]] == label[edges[:, 1]]
        e = edges[same]
        graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        size = np.bincount(comp)
        # the biggest component of each label stays; the others move
        order = np.lexsort((-size[comp], label))
        first = np.r_[0, np.flatnonzero(np.diff(label[order])) + 1]
        keep = np.zeros(size.size, bool)
        keep[comp[order[first]]] = True
        stray = ~keep[comp]
        if not stray.any():
            return
        cross = edges[~same]
        new_label = label.copy()
        for c in np.unique(comp[stray]):
            members = comp == c
            touching = np.r_[
                label[cross[members[cross[:, 0]], 1]], label[cross[members[cross[:, 1]], 0]]
            ]
            if touching.size:
                new_label[members] = np.bincount(touching).argmax()
        if (new_label == label).all():
            return
        label[:] = new_label


def _plant_exclaves(
    rng: np.random.Generator,
    sites: np.ndarray,
    n_grids: int,
    grid_village: np.ndarray,
    village_town: np.ndarray,
    count: int,
) -> None:
    """Give ``count`` villages a second, detached part: a grid of a neighbouring village
    of the same town that does not touch them (an enclave, as real villages have)."""
    indptr, indices = Delaunay(sites).vertex_neighbor_vertices
    neighbours = [indices[indptr[g] : indptr[g + 1]] for g in range(n_grids)]
    n_villages = len(village_town)
    centre = _means(sites[:n_grids], grid_village, n_villages)
    moved: set[int] = set()
    for village in rng.permutation(n_villages):
        if count == 0:
            break
        town = village_town[village]
        members = np.bincount(grid_village, minlength=n_villages)
        best, best_d = -1, np.inf
        for g in np.flatnonzero(village_town[grid_village] == town):
            owner = grid_village[g]
            if owner == village or members[owner] < 3 or g in moved:
                continue
            near = neighbours[g][neighbours[g] < n_grids]
            if (grid_village[near] == village).any():
                continue  # a detached part must not touch the village
            d = ((sites[g] - centre[village]) ** 2).sum()
            if d < best_d:
                best, best_d = g, d
        if best >= 0:
            grid_village[best] = village
            moved.add(int(best))
            count -= 1


def _order(keys: list[tuple], n: int) -> np.ndarray:
    return np.array(sorted(range(n), key=lambda i: keys[i]), dtype=np.int64)


@lru_cache(maxsize=4)
def make_layout(preset_name: str, seed: int) -> Layout:
    """The layout of world ``preset_name`` with ``seed`` (deterministic, cached)."""
    preset = get_preset(preset_name)
    rng = stream(seed, "layout")
    outline = _outline(rng, preset.radius_km)
    lake = _lake(rng, preset.radius_km)
    density = _density(rng, preset)
    sites = _sample_sites(rng, preset, outline, lake, density)
    n = preset.grids
    grid_xy = sites[:n]
    urban = density.urban(grid_xy)

    # villages: clusters of grids, with bent borders; towns: clusters of villages; ...
    spacing = np.sqrt(outline.area / n)
    q = grid_xy + _smooth_shift(rng, grid_xy, 6 * spacing, 0.8 * spacing)
    edges = _grid_edges(sites, n)
    grid_village = _cluster(rng, q, preset.villages)
    _make_contiguous(grid_village, edges)
    qv = _means(q, grid_village, preset.villages)
    qv = qv + _smooth_shift(rng, qv, 15 * spacing, 2.0 * spacing)
    village_edges = np.unique(np.sort(grid_village[edges], axis=1), axis=0)
    village_edges = village_edges[village_edges[:, 0] != village_edges[:, 1]]
    village_town = _cluster(rng, qv, preset.towns)
    _make_contiguous(village_town, village_edges)
    town_district = None
    if preset.districts:
        qt = _means(qv, village_town, preset.towns)
        town_edges = np.unique(np.sort(village_town[village_edges], axis=1), axis=0)
        town_edges = town_edges[town_edges[:, 0] != town_edges[:, 1]]
        town_district = _cluster(rng, qt, preset.districts)
        _make_contiguous(town_district, town_edges)
    _plant_exclaves(rng, sites, n, grid_village, village_town, preset.exclaves)

    # urbanness of each level decides 街道/镇, 社区/村 and the code order
    v_urban = _means(urban, grid_village, preset.villages)
    v_weight = np.bincount(grid_village, minlength=preset.villages)
    t_urban = np.bincount(village_town, weights=v_urban * v_weight, minlength=preset.towns) / (
        np.bincount(village_town, weights=v_weight, minlength=preset.towns)
    )
    n_streets = max(1, round(STREET_SHARE * preset.towns))
    is_street = np.zeros(preset.towns, bool)
    is_street[np.argsort(-t_urban, kind="stable")[:n_streets]] = True

    district_codes: list[str] = []
    district_names: list[str] = []
    names = draw_names(rng, TOWN_POOL, preset.towns + preset.districts)
    if town_district is not None:
        d_urban = np.bincount(town_district, weights=t_urban, minlength=preset.districts) / (
            np.bincount(town_district, minlength=preset.districts)
        )
        d_order = np.argsort(-d_urban, kind="stable")
        n_urban_districts = round(0.6 * preset.districts)
        rank = np.empty_like(d_order)
        rank[d_order] = np.arange(preset.districts)
        town_district = rank[town_district]
        for r in range(preset.districts):
            urban_district = r < n_urban_districts
            number = r + 2 if urban_district else 21 + r - n_urban_districts
            district_codes.append(f"{preset.city_code[:4]}{number:02d}")
            district_names.append(names[preset.towns + r] + ("区" if urban_district else "县"))

    parents = (
        [district_codes[d] for d in town_district]
        if town_district is not None
        else [preset.city_code] * preset.towns
    )
    t_order = _order(
        [(parents[t], not is_street[t], -t_urban[t], t) for t in range(preset.towns)],
        preset.towns,
    )
    town_codes = [""] * preset.towns
    town_names = [""] * preset.towns
    counters: dict[tuple[str, bool], int] = {}
    for t in t_order:
        key = (parents[t], bool(is_street[t]))
        counters[key] = counters.get(key, 0) + 1
        number = counters[key] if is_street[t] else 99 + counters[key]
        town_codes[t] = f"{parents[t]}{number:03d}"
        town_names[t] = names[t] + ("街道" if is_street[t] else "镇")

    is_community = is_street[village_town] | (v_urban > COMMUNITY_URBAN)
    v_order = _order(
        [
            (town_codes[village_town[v]], not is_community[v], -v_urban[v], v)
            for v in range(preset.villages)
        ],
        preset.villages,
    )
    village_codes = [""] * preset.villages
    village_names = [""] * preset.villages
    pools = {
        town_codes[t]: draw_names(rng, VILLAGE_POOL, int((village_town == t).sum()))
        for t in range(preset.towns)
    }
    counters = {}
    taken: dict[str, int] = {}
    for v in v_order:
        town = town_codes[village_town[v]]
        key = (town, bool(is_community[v]))
        counters[key] = counters.get(key, 0) + 1
        number = counters[key] if is_community[v] else 199 + counters[key]
        village_codes[v] = f"{town}{number:03d}"
        i = taken.get(town, 0)
        taken[town] = i + 1
        village_names[v] = pools[town][i] + ("社区" if is_community[v] else "村")

    g_order = _order(
        [(village_codes[grid_village[g]], -grid_xy[g, 1], grid_xy[g, 0], g) for g in range(n)],
        n,
    )
    grid_codes = [""] * n
    grid_names = [""] * n
    within: dict[str, int] = {}
    for g in g_order:
        village = village_codes[grid_village[g]]
        within[village] = within.get(village, 0) + 1
        grid_codes[g] = f"{village}{within[village]:03d}"
        grid_names[g] = grid_name(within[village])

    # renumber everything so that index order is code order
    grid_perm = np.argsort(np.array(grid_codes), kind="stable")
    village_perm = np.argsort(np.array(village_codes), kind="stable")
    town_perm = np.argsort(np.array(town_codes), kind="stable")
    v_rank = np.empty_like(village_perm)
    v_rank[village_perm] = np.arange(len(village_perm))
    t_rank = np.empty_like(town_perm)
    t_rank[town_perm] = np.arange(len(town_perm))
    sites = np.vstack([grid_xy[grid_perm], sites[n:]])
    return Layout(
        preset=preset,
        seed=seed,
        sites=sites,
        outline=outline,
        lake=lake,
        density=density,
        urban=urban[grid_perm],
        grid_village=v_rank[grid_village[grid_perm]],
        village_town=t_rank[village_town[village_perm]],
        town_district=None if town_district is None else town_district[town_perm],
        grid_codes=[grid_codes[g] for g in grid_perm],
        grid_names=[grid_names[g] for g in grid_perm],
        village_codes=[village_codes[v] for v in village_perm],
        village_names=[village_names[v] for v in village_perm],
        town_codes=[town_codes[t] for t in town_perm],
        town_names=[town_names[t] for t in town_perm],
        district_codes=district_codes,
        district_names=district_names,
    )
