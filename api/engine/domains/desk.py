"""The case desk's figures by level (分级分流), from the cases' timelines (``case_action``):
a small domain, read from its table with one GROUP BY whenever the ``desk`` dataset
version moves (every action bumps it).

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

from api.domain import DESK_ACTIONS, LOCAL_LEVELS
from api.engine.domain import Dimension, FactDomain, Metric, Source, Tally

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


# fmt: off
DESK = FactDomain(
    name="desk",
    source=Source("case_action", leaf="leaf_unit_id", date="at"),
    dimensions=(Dimension("action", tuple(DESK_ACTIONS), DESK_ACTIONS),),
    measures=(
        Tally("desk_actions", lambda d: "1"),
        Tally("desk_closes", lambda d: _when("action = 'handle'")),
        Tally(
            "desk_closes_local",
            lambda d: _when(
                f"action = 'handle' AND from_level IN ({_LOCAL}) AND from_department_id IS NULL"
            ),
        ),
        Tally("desk_escalations", lambda d: _when("action = 'escalate'")),
        Tally("desk_dispatches", lambda d: _when("action = 'dispatch'")),
        Tally("desk_returns", lambda d: _when("action = 'return'")),
        Tally(
            "desk_dispatch_wait_seconds",
            lambda d: _when("action = 'dispatch'", _seconds("wait_seconds")),
        ),
        *(
            m
            for level in LEVELS
            for m in (
                Tally(f"desk_turns_{level}", lambda d, lv=level: _when(_turn(lv))),
                Tally(
                    f"desk_held_seconds_{level}",
                    lambda d, lv=level: _when(_turn(lv), _seconds("held_seconds")),
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
