"""Cases (案件): disputes, petitions, hotline and 110 events, hazards, each moving through
接-约-办-访-评. Counted on the local day they were reported (a cohort: ``closed`` counts the
cases of that day closed so far), by category and channel.

Tallies (``case_rollup_daily``): cases; closed (办结, handled); closed_on_time (handled at or
before the deadline); mediated (a mediation outcome); mediation_success; visited (回访);
evaluated (a satisfaction rating given, 评); satisfied (rated 4 or 5); satisfaction_sum;
close_days_sum (whole seconds to close / 86400, kept for analysts, not read by figures).

Events (``case_flow_daily``, on the day they happen): opened (reported), closed (handled),
became_overdue (deadline day, when still open at the deadline), overdue_closed (handled
after the deadline). Stocks: backlog = opened − closed; overdue = became_overdue −
overdue_closed, at the period's end.

Distribution (``case_close_histogram``): whole days to close (0..365) of the closed cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np

from api.domain import CATEGORIES, CHANNELS, MEDIATION_OUTCOMES
from api.engine.domain import (
    Dimension,
    Distribution,
    Event,
    FactDomain,
    Metric,
    RollupTables,
    Share,
    Source,
    Stock,
    Tally,
)
from api.engine.facts import NAT, floor_seconds, utc_us

MAX_CLOSE_DAYS = 365
SERIOUS = frozenset(c.code for c in CATEGORIES if c.serious)
DISPUTES = frozenset(c.code for c in CATEGORIES if c.group == "dispute")
_MEDIATION_SQL = ", ".join(f"'{o}'" for o in sorted(MEDIATION_OUTCOMES))


class CaseFacts:
    """Cases as columns (``leaf_unit_id``, ``reported_at``, ``category``, ``channel``,
    ``deadline`` required; ``handled_at``, ``visited_at``, ``outcome``, ``satisfaction``
    optional), with what the tallies derive from them."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.n = n = len(columns["leaf_unit_id"])
        self.leaf_unit_id = np.asarray(columns["leaf_unit_id"], dtype=np.int64)
        self.category = np.asarray(columns["category"], dtype=object)
        self.channel = np.asarray(columns["channel"], dtype=object)
        self.reported_at = utc_us(columns["reported_at"])
        self.deadline = utc_us(columns["deadline"])

        def optional(name: str, default: np.ndarray) -> np.ndarray:
            return np.asarray(columns[name]) if name in columns else default

        self.handled_at = utc_us(optional("handled_at", np.full(n, NAT)))
        self.visited_at = utc_us(optional("visited_at", np.full(n, NAT)))
        self.outcome = optional("outcome", np.full(n, None, dtype=object))
        self.satisfaction = np.asarray(optional("satisfaction", np.full(n, np.nan)), np.float64)

    @cached_property
    def every(self) -> np.ndarray:
        return np.ones(self.n, dtype=bool)

    @cached_property
    def closed(self) -> np.ndarray:
        return ~np.isnat(self.handled_at)

    @cached_property
    def late(self) -> np.ndarray:
        """Closed after the deadline."""
        with np.errstate(invalid="ignore"):
            return self.closed & (self.handled_at > self.deadline)

    @cached_property
    def rated(self) -> np.ndarray:
        return ~np.isnan(self.satisfaction)

    @cached_property
    def seconds_to_close(self) -> np.ndarray:
        """Whole seconds from report to close (0 for open cases)."""
        secs = floor_seconds(self.handled_at) - floor_seconds(self.reported_at)
        return np.where(self.closed, np.maximum(0, secs), 0)


def _when(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _category_labels() -> dict[str, tuple[str, str]]:
    return {c.code: (c.name_zh, c.name_en) for c in CATEGORIES}


CAT_CHAN = ("category", "channel")
CAT_CHAN_STATUS = ("category", "channel", "status")

# fmt: off
CASES = FactDomain(
    name="cases",
    source=Source("case", leaf="leaf_unit_id", date="reported_at"),
    facts=CaseFacts,
    dimensions=(
        Dimension("category", tuple(c.code for c in CATEGORIES), _category_labels()),
        Dimension("channel", tuple(c.code for c in CHANNELS),
                  {c.code: (c.name_zh, c.name_en) for c in CHANNELS}),
    ),
    tables=RollupTables("case_rollup_daily", flow="case_flow_daily",
                        flow_dimensions=("category",)),
    measures=(
        Tally("cases", lambda d: "1", lambda f: f.every),
        Tally("closed", lambda d: _when("handled_at IS NOT NULL"), lambda f: f.closed),
        Tally("closed_on_time", lambda d: _when(
                  f"handled_at IS NOT NULL AND {d.at_or_before('handled_at', 'deadline')}"),
              lambda f: f.closed & ~f.late),
        Tally("mediated", lambda d: _when(f"outcome IN ({_MEDIATION_SQL})"),
              lambda f: np.isin(f.outcome, list(MEDIATION_OUTCOMES))),
        Tally("mediation_success", lambda d: _when("outcome = 'mediated_success'"),
              lambda f: f.outcome == "mediated_success"),
        Tally("visited", lambda d: _when("visited_at IS NOT NULL"),
              lambda f: ~np.isnat(f.visited_at)),
        Tally("evaluated", lambda d: _when("satisfaction IS NOT NULL"), lambda f: f.rated),
        Tally("satisfied", lambda d: _when("satisfaction >= 4"),
              lambda f: f.rated & (np.nan_to_num(f.satisfaction) >= 4)),
        Tally("satisfaction_sum", lambda d: "COALESCE(satisfaction, 0)",
              lambda f: np.nan_to_num(f.satisfaction).astype(np.int64)),
        Tally("close_days_sum",
              lambda d: f"CASE WHEN handled_at IS NOT NULL "
                        f"THEN {d.seconds('reported_at', 'handled_at')} / 86400.0 ELSE 0 END",
              lambda f: f.seconds_to_close / 86400.0, read=False),
        Share("serious_cases", of="cases", dimension="category", codes=SERIOUS),
        Share("disputes_closed", of="closed", dimension="category", codes=DISPUTES),
        Stock("backlog", up="opened", down="closed"),
        Stock("overdue", up="became_overdue", down="overdue_closed"),
    ),
    events=(
        Event("opened", on="reported_at"),
        Event("closed", on="handled_at", when_sql=lambda d: "handled_at IS NOT NULL",
              when_rows=lambda f: f.closed),
        Event("became_overdue", on="deadline",
              when_sql=lambda d: f"handled_at IS NULL OR {d.after('handled_at', 'deadline')}",
              when_rows=lambda f: ~f.closed | f.late),
        Event("overdue_closed", on="handled_at",
              when_sql=lambda d: f"handled_at IS NOT NULL AND {d.after('handled_at', 'deadline')}",
              when_rows=lambda f: f.late),
    ),
    distributions=(Distribution(
        "days_to_close",
        "case_close_histogram",
        value_sql=lambda d: f"({d.seconds('reported_at', 'handled_at')}) / 86400",
        value_rows=lambda f: f.seconds_to_close // 86400,
        when_sql=lambda d: "handled_at IS NOT NULL",
        when_rows=lambda f: f.closed,
        most=MAX_CLOSE_DAYS,
    ),),
    metrics=(
        Metric("caseload", "案件量", "Caseload", "件", "cases", None, "integer", None,
               "caseload", "count", breakdowns=CAT_CHAN_STATUS),
        Metric("caseload_per_10k", "万人案件量", "Cases per 10,000 residents", "件/万人",
               "cases", "population", "decimal1", False, "caseload", "per_capita", 10_000,
               CAT_CHAN),
        Metric("serious_cases", "重点案件量", "Serious cases", "件", "serious_cases", None,
               "integer", False, "caseload", "count", breakdowns=CAT_CHAN),
        Metric("resolution_rate", "办结率", "Resolution rate", "%", "closed", "cases",
               "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
        Metric("mediation_rate", "调解率", "Mediation rate (of closed disputes)", "%",
               "mediated", "disputes_closed", "percent", True, "resolution", "proportion",
               breakdowns=CAT_CHAN),
        Metric("mediation_success_rate", "调解成功率", "Mediation success rate", "%",
               "mediation_success", "mediated", "percent", True, "resolution", "proportion",
               breakdowns=CAT_CHAN),
        Metric("on_time_rate", "按期办结率", "Closed by deadline", "%", "closed_on_time",
               "closed", "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
        Metric("overdue_open", "超期未办结", "Overdue open cases (at period end)", "件",
               "overdue", None, "integer", False, "resolution", "stock",
               breakdowns=("category",)),
        Metric("open_backlog", "积案量", "Open backlog (at period end)", "件", "backlog", None,
               "integer", False, "resolution", "stock", breakdowns=("category",)),
        Metric("median_days_to_close", "办结天数中位数", "Median days to close", "天",
               "closed", None, "integer", False, "resolution", "percentile", quantile=0.5,
               distribution="days_to_close"),
        Metric("p90_days_to_close", "办结天数90分位", "90th percentile days to close", "天",
               "closed", None, "integer", False, "resolution", "percentile", quantile=0.9,
               distribution="days_to_close"),
        Metric("visit_rate", "回访率", "Follow-up visit rate (访)", "%", "visited", "closed",
               "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
        Metric("satisfaction", "满意度评分", "Satisfaction score (评, 1-5)", "分",
               "satisfaction_sum", "evaluated", "decimal2", True, "resolution", "mean",
               breakdowns=CAT_CHAN),
        Metric("satisfaction_rate", "满意率", "Satisfied (rated 4-5, 评)", "%", "satisfied",
               "evaluated", "percent", True, "resolution", "proportion", breakdowns=CAT_CHAN),
    ),
)
# fmt: on
