"""The stability-risk register (社会稳定风险评估) as a fact domain: one row per item of
table ``risk_item``, counted for its deciding unit (any level: a town's decision counts for
the town and the city, not for any village) on the day it was registered (a cohort, like
cases by the day they were reported).

A small domain: read from ``risk_item`` with one GROUP BY whenever the dataset version
``risk_register`` moves (every write of the register bumps it). Measures that look at the
clock (open, overdue) are as of that read.

两覆盖: every major decision and project assessed before it is decided —
``assessed_before_decision_rate`` = items decided after a passed assessment / items decided.
"""

from __future__ import annotations

from api.engine.domain import Dimension, FactDomain, Metric, Source, Tally
from api.engine.sql import SqlDialect

KINDS = {
    "decision": ("重大决策", "Major decision"),
    "project": ("重大项目", "Major project"),
    "large_event": ("大型活动", "Large event"),
    "gathering": ("群众自发性节庆聚集", "Festive gathering"),
    "religious": ("宗教活动", "Religious activity"),
}
LEVELS = {"high": ("高", "High"), "medium": ("中", "Medium"), "low": ("低", "Low")}


def _now(d: SqlDialect) -> str:
    return "now()" if d.name == "postgresql" else "'now'"


def _when(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


DECIDED = "decided_at IS NOT NULL"


def _assessed_first(d: SqlDialect) -> str:
    return _when(
        f"{DECIDED} AND assessed_at IS NOT NULL AND {d.at_or_before('assessed_at', 'decided_at')}"
    )


def _unassessed(d: SqlDialect) -> str:
    return _when(f"{DECIDED} AND (assessed_at IS NULL OR {d.after('assessed_at', 'decided_at')})")


def _high_open(d: SqlDialect) -> str:
    return _when(
        f"risk_level = 'high' AND (decided_at IS NULL OR {d.after('follow_until', _now(d))})"
    )


def _overdue(d: SqlDialect) -> str:
    late = d.after("assessed_at", "assessment_due_at")
    return _when(
        f"assessment_due_at IS NOT NULL AND ((assessed_at IS NULL AND "
        f"{d.after(_now(d), 'assessment_due_at')}) OR (assessed_at IS NOT NULL AND {late}))"
    )


# fmt: off
RISK = FactDomain(
    name="risk_register",  # also its dataset version: the register's writers bump it
    source=Source("risk_item", leaf="deciding_unit_id", date="registered_at"),
    dimensions=(Dimension("kind", tuple(KINDS), KINDS), Dimension("risk_level", tuple(LEVELS),
                                                                   LEVELS)),
    measures=(
        Tally("risk_items", lambda d: "1"),
        Tally("risk_decided", lambda d: _when(DECIDED)),
        Tally("risk_assessed_before_decision", _assessed_first),
        Tally("risk_decided_unassessed", _unassessed),
        Tally("risk_high_open", _high_open),
        Tally("risk_overdue", _overdue),
        Tally("risk_incidents", lambda d: "incidents"),
        Tally("risk_items_with_incidents", lambda d: _when("incidents > 0")),
    ),
    metrics=(
        Metric("risk_items", "稳评事项登记数", "Risk-register items registered", "项",
               "risk_items", None, "integer", None, "risk", "count", breakdowns=("kind",)),
        Metric("assessed_before_decision_rate", "决策前评估率（两覆盖）",
               "Decided items assessed before the decision", "%",
               "risk_assessed_before_decision", "risk_decided", "percent", True, "risk",
               "proportion", breakdowns=("kind",)),
        Metric("decisions_without_assessment", "未经评估决策数", "Decisions without an assessment",
               "项", "risk_decided_unassessed", None, "integer", False, "risk", "count",
               breakdowns=("kind",)),
        Metric("high_risk_open", "高风险未结事项", "High-risk items open", "项", "risk_high_open",
               None, "integer", False, "risk", "count", breakdowns=("kind",)),
        Metric("overdue_assessments", "逾期评估", "Overdue assessments", "项", "risk_overdue",
               None, "integer", False, "risk", "count", breakdowns=("kind",)),
        Metric("incidents_after_decision", "决策后关联案事件", "Incidents after the decision",
               "件", "risk_incidents", None, "integer", False, "risk", "count",
               breakdowns=("kind", "risk_level")),
        Metric("risk_to_incident_rate", "风险转化率", "Decided items followed by incidents", "%",
               "risk_items_with_incidents", "risk_decided", "percent", False, "risk",
               "proportion", breakdowns=("kind", "risk_level")),
    ),
)
# fmt: on
