"""Dispatch events (警情/事件): the 3/5/15/30-minute targets of the dynamic patrol system.
Counted on the local day they were received (a cohort: ``on_scene_5min`` counts the
events of that day on scene within five minutes so far), by type, force kind and shift.

Tallies (``event_rollup_daily``): events; per step (set off, on scene, support, cordon)
the events that needed it (``*_needed``; every event needs to set off and be on the scene,
support and cordon only when requested or ordered), those with a time for it
(``*_timed``) and those within the target (``set_off_3min``, ``on_scene_5min``,
``support_15min``, ``cordon_30min``). A step still without a time counts as missed: a late
update (the on-scene time arriving after the event) moves it into the target.

Distributions (one histogram table each): whole minutes from receipt to each step (0..120),
for the median and the 90th percentile.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np

from api.db.events import (
    CORDON_S,
    EVENT_TYPES,
    FORCE_KINDS,
    ON_SCENE_S,
    SET_OFF_S,
    SHIFTS,
    SUPPORT_S,
)
from api.engine.domain import (
    Dimension,
    Distribution,
    FactDomain,
    Metric,
    RollupTables,
    Share,
    Source,
    Tally,
)
from api.engine.facts import NAT, floor_seconds, utc_us

MAX_MINUTES = 120
STEPS = {  # step → (its time column, the events that need it, target seconds)
    "set_off": ("set_off_at", None, SET_OFF_S),
    "on_scene": ("on_scene_at", None, ON_SCENE_S),
    "support": ("support_at", "support_requested", SUPPORT_S),
    "cordon": ("cordon_at", "cordon_ordered", CORDON_S),
}


class EventFacts:
    """Events as columns (``leaf_unit_id``, ``received_at``, ``type``, ``force_kind``,
    ``shift`` required; step times and the two flags optional)."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.n = n = len(columns["leaf_unit_id"])
        self.leaf_unit_id = np.asarray(columns["leaf_unit_id"], dtype=np.int64)
        self.type = np.asarray(columns["type"], dtype=object)
        self.force_kind = np.asarray(columns["force_kind"], dtype=object)
        self.shift = np.asarray(columns["shift"], dtype=object)
        self.received_at = utc_us(columns["received_at"])
        for column, flag, _ in STEPS.values():
            at = columns.get(column)
            setattr(self, column, utc_us(at) if at is not None else np.full(n, NAT))
            if flag:
                given = columns.get(flag)
                setattr(self, flag, np.zeros(n, bool) if given is None else np.asarray(given, bool))

    @cached_property
    def every(self) -> np.ndarray:
        return np.ones(self.n, dtype=bool)

    def needed(self, step: str) -> np.ndarray:
        """The events that needed ``step``."""
        flag = STEPS[step][1]
        return self.every if flag is None else getattr(self, flag)

    def timed(self, step: str) -> np.ndarray:
        """The events that needed ``step`` and have a time for it."""
        return self.needed(step) & ~np.isnat(getattr(self, STEPS[step][0]))

    def seconds(self, step: str) -> np.ndarray:
        """Whole seconds from receipt to ``step`` (0 where there is no time)."""
        at = getattr(self, STEPS[step][0])
        secs = floor_seconds(at) - floor_seconds(self.received_at)
        return np.where(self.timed(step), np.maximum(0, secs), 0)

    def within(self, step: str) -> np.ndarray:
        return self.timed(step) & (self.seconds(step) <= STEPS[step][2])


def _when(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _timed_sql(step: str) -> str:
    column, flag, _ = STEPS[step]
    return f"{column} IS NOT NULL" + (f" AND {flag}" if flag else "")


def _step_measures(step: str, target: str) -> tuple[Tally, ...]:
    column, flag, limit = STEPS[step]
    out = []
    if flag:
        out.append(Tally(f"{step}_needed", lambda d: _when(flag), lambda f: f.needed(step)))
    out.append(Tally(f"{step}_timed", lambda d: _when(_timed_sql(step)), lambda f: f.timed(step)))
    out.append(
        Tally(
            target,
            lambda d: _when(
                f"{_timed_sql(step)} AND {d.seconds('received_at', column)} <= {limit}"
            ),
            lambda f: f.within(step),
        )
    )
    return tuple(out)


def _distribution(step: str, table: str) -> Distribution:
    column = STEPS[step][0]
    return Distribution(
        f"minutes_to_{step}",
        table,
        value_sql=lambda d: f"({d.seconds('received_at', column)}) / 60",
        value_rows=lambda f: f.seconds(step) // 60,
        when_sql=lambda d: _timed_sql(step),
        when_rows=lambda f: f.timed(step),
        most=MAX_MINUTES,
    )


def _rate(id_, zh, en, num, den) -> Metric:
    return Metric(id_, zh, en, "%", num, den, "percent", True, "resolution", "proportion",
                  breakdowns=BY)  # fmt: skip


def _minutes(id_, zh, en, count, dist, q) -> Metric:
    return Metric(id_, zh, en, "分钟", count, None, "integer", False, "resolution",
                  "percentile", quantile=q, distribution=dist)  # fmt: skip


BY = ("type", "force_kind", "shift")
TYPE_COUNTS = {"crime": "违法犯罪", "dispute": "纠纷", "traffic": "交通", "help": "求助"}

# fmt: off
EVENTS = FactDomain(
    name="events",
    source=Source("dispatch_event", leaf="leaf_unit_id", date="received_at"),
    facts=EventFacts,
    dimensions=(
        Dimension("type", tuple(EVENT_TYPES), EVENT_TYPES),
        Dimension("force_kind", tuple(FORCE_KINDS), FORCE_KINDS),
        Dimension("shift", tuple(SHIFTS), SHIFTS),
    ),
    tables=RollupTables("event_rollup_daily"),
    measures=(
        Tally("events", lambda d: "1", lambda f: f.every),
        *_step_measures("set_off", "set_off_3min"),
        *_step_measures("on_scene", "on_scene_5min"),
        *_step_measures("support", "support_15min"),
        *_step_measures("cordon", "cordon_30min"),
        *(Share(f"{t}_events", of="events", dimension="type", codes=frozenset({t}))
          for t in TYPE_COUNTS),
        Share("night_events", of="events", dimension="shift", codes=frozenset({"night"})),
    ),
    distributions=(
        _distribution("set_off", "event_set_off_histogram"),
        _distribution("on_scene", "event_scene_histogram"),
        _distribution("support", "event_support_histogram"),
        _distribution("cordon", "event_cordon_histogram"),
    ),
    metrics=(
        Metric("dispatch_events", "警情量", "Dispatch events", "起", "events", None, "integer",
               None, "caseload", "count", breakdowns=BY),
        Metric("events_per_10k", "万人警情量", "Dispatch events per 10,000 residents",
               "起/万人", "events", "population", "decimal1", False, "caseload", "per_capita",
               10_000, BY),
        *(Metric(f"{t}_events", f"{zh}警情", f"{EVENT_TYPES[t][1]} events", "起",
                 f"{t}_events", None, "integer", None, "caseload", "count",
                 breakdowns=("force_kind", "shift"))
          for t, zh in TYPE_COUNTS.items()),
        Metric("night_event_rate", "夜间警情占比", "Events at night (19-07)", "%",
               "night_events", "events", "percent", None, "caseload", "proportion",
               breakdowns=("type", "force_kind")),
        _rate("set_off_3min_rate", "3分钟响应出击率", "Set off within 3 minutes",
              "set_off_3min", "events"),
        _rate("on_scene_5min_rate", "5分钟现场处警率", "On scene within 5 minutes",
              "on_scene_5min", "events"),
        _rate("support_15min_rate", "15分钟区域支援率", "Support within 15 minutes",
              "support_15min", "support_needed"),
        _rate("cordon_30min_rate", "30分钟全市合围率", "Cordon closed within 30 minutes",
              "cordon_30min", "cordon_needed"),
        _minutes("median_minutes_to_set_off", "出击用时中位数", "Median minutes to set off",
                 "set_off_timed", "minutes_to_set_off", 0.5),
        _minutes("p90_minutes_to_set_off", "出击用时90分位", "90th percentile minutes to set off",
                 "set_off_timed", "minutes_to_set_off", 0.9),
        _minutes("median_minutes_to_scene", "到场用时中位数", "Median minutes to the scene",
                 "on_scene_timed", "minutes_to_on_scene", 0.5),
        _minutes("p90_minutes_to_scene", "到场用时90分位", "90th percentile minutes to the scene",
                 "on_scene_timed", "minutes_to_on_scene", 0.9),
        _minutes("median_minutes_to_support", "支援用时中位数", "Median minutes to support",
                 "support_timed", "minutes_to_support", 0.5),
        _minutes("p90_minutes_to_support", "支援用时90分位", "90th percentile minutes to support",
                 "support_timed", "minutes_to_support", 0.9),
        _minutes("median_minutes_to_cordon", "合围用时中位数", "Median minutes to the cordon",
                 "cordon_timed", "minutes_to_cordon", 0.5),
        _minutes("p90_minutes_to_cordon", "合围用时90分位", "90th percentile minutes to cordon",
                 "cordon_timed", "minutes_to_cordon", 0.9),
    ),
)
# fmt: on
