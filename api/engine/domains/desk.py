"""The case desk's figures by level (分级分流), from the cases' timelines (``case_action``):
a table-backed domain. Each action moves its daily rollup row (``desk_rollup_daily``,
keyed by leaf, day, action and the flow ``from_node`` → ``to_node``) through
``api.engine.apply_changes`` in its own transaction, and the cube catches up from the
change log: an action costs the same whatever the size of the timeline. The Sankey
(``api.services.desk_flow``) sums the same rows.

- 就地化解率 ``resolved_locally_rate``: cases closed (办) while held at a village or grid
  (``api.domain.LOCAL_LEVELS``), not by a department, of all closed;
- ``escalation_rate``: escalations (上报) per 100 cases reported in the period (the cases
  domain's ``cases``);
- ``desk_returns``: returns (退回); ``dispatch_wait_hours``: hours from 受理 (or from the
  case's arrival, when not accepted) to 下派, on average;
- ``hours_at_<level>``: how long a handler at that level held a case before it moved it on
  or closed it, on average, one metric per level of ``LEVELS``.

Each action counts on the local day it was taken, in the case's leaf unit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from api.domain import DEPARTMENT_KINDS, DESK_ACTIONS, LOCAL_LEVELS, desk_node
from api.engine.domain import Dimension, FactDomain, Metric, RollupTables, Source, Tally
from api.engine.facts import utc_us

# the levels handling time is shown for (a level a city lacks simply has no turns)
LEVELS: dict[str, tuple[str, str]] = {
    "grid": ("网格", "grid"),
    "village": ("村（社区）", "village"),
    "town": ("镇（街道）", "town"),
    "district": ("区", "district"),
    "city": ("市", "city"),
}
MOVES_AND_CLOSE = "('escalate', 'dispatch', 'transfer', 'return', 'handle')"
_LOCAL = ", ".join(f"'{level}'" for level in LOCAL_LEVELS)


def _when(condition: str, value: str = "1") -> str:
    return f"CASE WHEN {condition} THEN {value} ELSE 0 END"


def _seconds(column: str) -> str:
    return f"CAST(COALESCE({column}, 0) AS BIGINT)"


def _turn(level: str) -> str:
    return f"action IN {MOVES_AND_CLOSE} AND from_level = '{level}'"


TURNS = ("escalate", "dispatch", "transfer", "return", "handle")
NODES: tuple[str, ...] = tuple(
    desk_node(level, kind) for level in LEVELS for kind in (None, *DEPARTMENT_KINDS)
)
NODE_LABELS = {n: (n, n) for n in NODES}


class DeskFacts:
    """Timeline entries as columns (``leaf_unit_id``, ``at``, ``action``, ``from_level``,
    ``from_department_id`` (−1 or NaN: none), ``from_node``, ``to_node``,
    ``held_seconds``, ``wait_seconds`` (NaN: none)), for the vectorised tallies."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.n = len(columns["leaf_unit_id"])
        self.leaf_unit_id = np.asarray(columns["leaf_unit_id"], dtype=np.int64)
        self.at = utc_us(columns["at"])
        self.action = np.asarray(columns["action"], dtype=object)
        self.from_level = np.asarray(columns["from_level"], dtype=object)
        self.from_node = np.asarray(columns["from_node"], dtype=object)
        self.to_node = np.asarray(columns["to_node"], dtype=object)
        dept = np.asarray(columns["from_department_id"], dtype=np.float64)
        self.from_department = ~np.isnan(dept) & (dept >= 0)
        self.held = self._seconds(columns["held_seconds"])
        self.wait = self._seconds(columns["wait_seconds"])

    @staticmethod
    def _seconds(values) -> np.ndarray:
        """As SQL's ``CAST(COALESCE(x, 0) AS BIGINT)`` (rounded to the nearest second)."""
        v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
        return np.round(v).astype(np.int64)

    def is_(self, action: str) -> np.ndarray:
        return self.action == action

    def turn(self, level: str) -> np.ndarray:
        """Entries that end a turn of a handler at ``level``."""
        return np.isin(self.action, TURNS) & (self.from_level == level)

    def local_close(self) -> np.ndarray:
        local = np.isin(self.from_level, LOCAL_LEVELS)
        return self.is_("handle") & local & ~self.from_department


def _n(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.int64)


# fmt: off
DESK = FactDomain(
    name="desk",
    source=Source("case_action", leaf="leaf_unit_id", date="at"),
    facts=DeskFacts,
    dimensions=(
        Dimension("action", tuple(DESK_ACTIONS), DESK_ACTIONS),
        Dimension("from_node", NODES, NODE_LABELS),
        Dimension("to_node", NODES, NODE_LABELS),
    ),
    tables=RollupTables("desk_rollup_daily"),
    measures=(
        Tally("desk_actions", lambda d: "1", lambda f: np.ones(f.n, dtype=np.int64)),
        Tally("desk_closes", lambda d: _when("action = 'handle'"), lambda f: _n(f.is_("handle"))),
        Tally(
            "desk_closes_local",
            lambda d: _when(
                f"action = 'handle' AND from_level IN ({_LOCAL}) AND from_department_id IS NULL"
            ),
            lambda f: _n(f.local_close()),
        ),
        Tally("desk_escalations", lambda d: _when("action = 'escalate'"),
              lambda f: _n(f.is_("escalate"))),
        Tally("desk_dispatches", lambda d: _when("action = 'dispatch'"),
              lambda f: _n(f.is_("dispatch"))),
        Tally("desk_returns", lambda d: _when("action = 'return'"),
              lambda f: _n(f.is_("return"))),
        Tally(
            "desk_dispatch_wait_seconds",
            lambda d: _when("action = 'dispatch'", _seconds("wait_seconds")),
            lambda f: np.where(f.is_("dispatch"), f.wait, 0),
        ),
        *(
            m
            for level in LEVELS
            for m in (
                Tally(f"desk_turns_{level}", lambda d, lv=level: _when(_turn(lv)),
                      lambda f, lv=level: _n(f.turn(lv))),
                Tally(
                    f"desk_held_seconds_{level}",
                    lambda d, lv=level: _when(_turn(lv), _seconds("held_seconds")),
                    lambda f, lv=level: np.where(f.turn(lv), f.held, 0),
                ),
            )
        ),
    ),
    metrics=(
        Metric(
            "resolved_locally_rate",
            "就地化解率",
            "Resolved at village or grid",
            "%",
            "desk_closes_local",
            "desk_closes",
            "percent",
            True,
            "resolution",
            "proportion",
        ),
        Metric(
            "escalation_rate",
            "上报率",
            "Escalations per 100 cases",
            "%",
            "desk_escalations",
            "cases",
            "percent",
            False,
            "resolution",
            "ratio",
        ),
        Metric(
            "desk_returns",
            "退回次数",
            "Returns (退回)",
            "次",
            "desk_returns",
            None,
            "integer",
            False,
            "resolution",
            "count",
        ),
        Metric(
            "desk_dispatches",
            "下派次数",
            "Dispatches (下派)",
            "次",
            "desk_dispatches",
            None,
            "integer",
            None,
            "resolution",
            "count",
        ),
        Metric(
            "dispatch_wait_hours",
            "受理至下派时长",
            "Hours from accept to dispatch",
            "小时",
            "desk_dispatch_wait_seconds",
            "desk_dispatches",
            "decimal1",
            False,
            "resolution",
            "mean",
            scale=1 / 3600,
        ),
        *(
            Metric(
                f"hours_at_{level}",
                f"{zh}处置时长",
                f"Hours held at the {en} level",
                "小时",
                f"desk_held_seconds_{level}",
                f"desk_turns_{level}",
                "decimal1",
                False,
                "resolution",
                "mean",
                scale=1 / 3600,
            )
            for level, (zh, en) in LEVELS.items()
        ),
    ),
)
# fmt: on
