"""Days-to-close histograms summed per class of leaves as running counts, so that the
percentiles of a period cost a pass over the cells of the units shown, not over its cases.

A class is the leaves that share their ancestors down to one depth (for a level above the
leaves, nearly one per unit); a cell is a (class, whole days to close) pair, and a group
cell the same for a group of ``2**GROUP_SHIFT`` days (``counted_quantile`` finds the group
where a unit's rank falls first, then the day within it: only one group's cells are read
per class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from api.engine.state import State
from api.engine.stats import GROUP_SHIFT
from api.engine.tuning import engine_settings


class SummedHistogram:
    """The cube's histogram rows summed per cell and per group cell, as running counts
    every ``step`` days (as many as fit in ``summed_histogram_bytes``, ``api.engine.tuning``):
    the count of a cell between two checkpoints is one subtraction, whatever the number of
    cases between them.
    A period is taken between the checkpoints nearest its ends, the days in excess or
    missing read from the rows (``span``)."""

    def __init__(self, state: State, domain: str, distribution: str, depth: int) -> None:
        cube, units, leaves = state.cubes[domain], state.units, state.leaves[domain]
        hist = cube.histograms[distribution]
        nbins = cube.domain.distribution(distribution).bins
        chain = [lv for lv in units.levels if units.depth[lv] <= depth]
        ancestors = np.stack([leaves.ancestor_at(lv) for lv in chain], axis=1)
        _, leaf_class = np.unique(ancestors, axis=0, return_inverse=True)
        leaf_class = leaf_class.ravel()
        classes = int(leaf_class.max(initial=-1)) + 1
        self.class_leaf = np.zeros(classes, dtype=np.int64)
        self.class_leaf[leaf_class] = np.arange(len(leaf_class))  # one leaf of each class
        cells, cell_of_row = np.unique(
            leaf_class[hist.leaf] * nbins + hist.bin, return_inverse=True
        )
        self.cell_class = (cells // nbins).astype(np.int32)
        self.cell_bin = (cells % nbins).astype(np.int16)
        # cells come sorted by (class, day): those of one group cell follow each other
        group_key = (cells // nbins) * nbins + (self.cell_bin >> GROUP_SHIFT)
        starts = np.flatnonzero(np.diff(group_key, prepend=-1))
        self.group_first = np.append(starts, len(cells))  # its cells: [first[j], first[j+1])
        self.group_class = self.cell_class[starts]
        self.group_of = (self.cell_bin[starts] >> GROUP_SHIFT).astype(np.int16)
        self.class_first = np.searchsorted(self.group_class, np.arange(classes + 1))

        totals = np.bincount(cell_of_row, weights=hist.n, minlength=len(cells))
        group_totals = np.add.reduceat(totals, starts) if len(starts) else totals
        tuning = engine_settings()
        narrow = group_totals.max(initial=0) < tuning.narrow_counts_below
        counts = np.uint16 if narrow else np.int32
        per_day = (len(cells) + len(starts)) * np.dtype(counts).itemsize
        self.step = max(1, -(-per_day * cube.ndays // tuning.summed_histogram_bytes))
        self.count = -(-cube.ndays // self.step)  # checkpoints after day 0
        at = np.arange(self.count + 1) * self.step
        row_at = np.searchsorted(hist.day, at.astype(hist.day.dtype))
        self.running = np.zeros((self.count + 1, len(cells)), dtype=counts)
        self.running_groups = np.zeros((self.count + 1, len(starts)), dtype=counts)
        total = np.zeros(len(cells))
        for m in range(self.count):
            rows = slice(row_at[m], row_at[m + 1])
            total += np.bincount(cell_of_row[rows], weights=hist.n[rows], minlength=len(cells))
            self.running[m + 1] = total
            if len(starts):
                self.running_groups[m + 1] = np.add.reduceat(total, starts)

    @property
    def cells(self) -> int:
        return len(self.cell_bin)

    def span(self, first: int, last: int) -> tuple[int, int, list[tuple[int, int, int]]] | None:
        """The checkpoints nearest the days ``first`` and ``last + 1`` (the checkpoint
        ``m`` stands before the day ``m·step``), and the days to add (sign +1) or take
        away (−1) at the edges, as inclusive (first, last, sign); None when both ends are
        nearest the same checkpoint."""
        m1, m2 = (min(max((day + self.step // 2) // self.step, 0), self.count)
                  for day in (first, last + 1))  # fmt: skip
        if m2 <= m1:
            return None
        edges = []
        for day, checkpoint, sign in ((first, m1 * self.step, 1), (last + 1, m2 * self.step, -1)):
            if day < checkpoint:
                edges.append((day, checkpoint - 1, sign))
            elif checkpoint < day:
                edges.append((checkpoint, day - 1, -sign))
        return m1, m2, edges

    def between(self, m1: int, m2: int) -> np.ndarray:
        """The count of each cell between the two checkpoints."""
        return self.running[m2].astype(np.int64) - self.running[m1]


@dataclass
class CellCounts:
    """A part of ``counted_quantile``: the cells of a ``SummedHistogram`` between two
    checkpoints, each class counted for the unit shown at ``class_unit`` (−1: none)."""

    summed: SummedHistogram
    class_unit: np.ndarray
    m1: int
    m2: int

    def add_to_groups(self, coarse: np.ndarray) -> None:
        s = self.summed
        hi, lo = s.running_groups[self.m2], s.running_groups[self.m1]
        _add_groups(coarse, self.class_unit, s.group_class, s.group_of, hi, lo)

    def add_within_group(self, fine: np.ndarray, group: np.ndarray) -> None:
        s = self.summed
        hi, lo = s.running[self.m2], s.running[self.m1]
        _add_cells_of_group(
            fine, group, self.class_unit, s.class_first, s.group_of, s.group_first,
            s.cell_bin, hi, lo,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _add_groups(coarse, class_unit, group_class, group_of, hi, lo):  # pragma: no cover
    for j in range(len(group_class)):
        u = class_unit[group_class[j]]
        if u >= 0:
            coarse[u, group_of[j]] += np.int64(hi[j]) - lo[j]


@numba.njit(cache=True, nogil=True)
def _add_cells_of_group(
    fine, group, class_unit, class_first, group_of, group_first, cell_bin, hi, lo
):  # pragma: no cover - compiled
    mask = (1 << GROUP_SHIFT) - 1
    for k in range(len(class_unit)):
        u = class_unit[k]
        if u < 0:
            continue
        for j in range(class_first[k], class_first[k + 1]):  # the class's groups, in order
            if group_of[j] == group[u]:
                for c in range(group_first[j], group_first[j + 1]):
                    fine[u, cell_bin[c] & mask] += np.int64(hi[c]) - lo[c]
            if group_of[j] >= group[u]:
                break


@dataclass(frozen=True)
class SummedKey:
    """A summed histogram of a cube: of one distribution, its classes down to ``depth``."""

    distribution: str
    depth: int


def summed_histogram(
    state: State, domain: str, distribution: str, depth: int
) -> SummedHistogram | None:
    """The ``SummedHistogram`` of ``distribution`` in ``domain``'s cube for classes down to
    ``depth`` (built on first use, about a second at metro scale, and kept with the cube's
    arrays: cubes made from it by changes share it); None when it has no rows."""
    cube = state.cubes[domain]
    if not len(cube.histograms[distribution]):
        return None
    key = SummedKey(distribution, depth)
    found = cube.derived.get(key)
    if found is None:
        found = cube.derived[key] = SummedHistogram(state, domain, distribution, depth)
    return found
