"""A stability-risk assessment report (稳评报告) and its automatic review (自动审查).

The report is structured JSON, validated by pydantic (``RiskReportBody``): wrong types or
unknown values are refused (422) before any review. A section may be missing: saying
which is the review's job. The review runs the rules of table ``risk_review_rule`` in
order: each names one of the ``CHECKS`` below and carries its thresholds as data, so a
center tunes them without a release. A failing rule gives its reason; a report with any
failure stays a draft and goes back to the agency.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.risk import RiskReviewRule

Level = Literal["high", "medium", "low"]
LEVEL_ZH = {"high": "高", "medium": "中", "low": "低"}


class RiskPoint(BaseModel):
    """A risk found (风险点)."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, max_length=1000)
    level: Level | None = None


class Consultation(BaseModel):
    """The public consultation (征求意见): how many were consulted, what they objected to."""

    model_config = ConfigDict(extra="forbid")
    consulted: int = Field(ge=0, le=10_000_000)
    objections: list[str] = Field(default_factory=list, max_length=200)


class Measure(BaseModel):
    """A measure to defuse a risk (化解措施), with its owner (责任人) and date."""

    model_config = ConfigDict(extra="forbid")
    risk: str = Field(default="", max_length=1000)
    action: str = Field(min_length=1, max_length=1000)
    owner: str | None = Field(default=None, max_length=64)
    due: dt.date | None = None


class RiskReportBody(BaseModel):
    """What an agency submits. Sections are optional here: the review names the missing."""

    model_config = ConfigDict(extra="forbid")
    risk_points: list[RiskPoint] | None = Field(default=None, max_length=200)
    consultation: Consultation | None = None
    legality: str | None = Field(default=None, max_length=4000)  # 合法性
    reasonableness: str | None = Field(default=None, max_length=4000)  # 合理性
    feasibility: str | None = Field(default=None, max_length=4000)  # 可行性
    controllability: str | None = Field(default=None, max_length=4000)  # 可控性
    risk_level: Level | None = None
    measures: list[Measure] | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class ReviewContext:
    """What a rule may look at besides the report: the item and when it was submitted."""

    people_affected: int
    planned_on: dt.date
    submitted_on: dt.date


@dataclass(frozen=True)
class Failure:
    """A rule that failed, with its reason (zh, then en)."""

    rule: str
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "name": self.name, "reason": self.reason}


Check = Callable[[RiskReportBody, ReviewContext, dict[str, Any]], str | None]


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list) and not value)


def sections_present(report: RiskReportBody, _: ReviewContext, params: dict) -> str | None:
    """Every section named in ``params['sections']`` is present and not empty."""
    missing = [s for s in params.get("sections", []) if _empty(getattr(report, s, None))]
    if missing:
        return f"缺少报告要素 missing sections: {', '.join(missing)}"
    return None


def needed_consulted(people: int, params: dict) -> int:
    """How many must be consulted for ``people`` affected: a share of them, at least
    ``minimum`` and at most ``maximum`` (never more than are affected)."""
    share = math.ceil(people * float(params.get("share", 0.01)))
    wanted = max(share, int(params.get("minimum", 30)))
    return min(wanted, int(params.get("maximum", 400)), people)


def consultation_fits_affected(
    report: RiskReportBody, ctx: ReviewContext, params: dict
) -> str | None:
    """The number consulted fits the people affected (see ``needed_consulted``)."""
    if report.consultation is None:
        return "未填写征求意见情况 no public consultation given"
    consulted, needed = report.consultation.consulted, needed_consulted(ctx.people_affected, params)
    if consulted < needed:
        return (
            f"征求意见 {consulted} 人，影响 {ctx.people_affected} 人，至少应征求 {needed} 人 "
            f"consulted {consulted} of {ctx.people_affected} affected; at least {needed} needed"
        )
    return None


def measures_with_owners(report: RiskReportBody, _: ReviewContext, params: dict) -> str | None:
    """At a risk level in ``params['levels']``: measures exist, each with owner and date."""
    if report.risk_level not in params.get("levels", ["high"]):
        return None
    level = LEVEL_ZH.get(report.risk_level or "", "")
    if not report.measures:
        return f"{level}风险但无化解措施 a {report.risk_level} risk with no measures"
    lacking = [
        str(i + 1)
        for i, m in enumerate(report.measures)
        if not (m.owner or "").strip() or not m.due
    ]
    if lacking:
        return (
            f"{level}风险的措施 {', '.join(lacking)} 未落实责任人或完成日期 "
            f"measures {', '.join(lacking)} of a {report.risk_level} risk lack an owner or a date"
        )
    return None


def lead_time(_: RiskReportBody, ctx: ReviewContext, params: dict) -> str | None:
    """The planned date is at least ``min_days`` after the submission."""
    need = int(params.get("min_days", 10))
    left = (ctx.planned_on - ctx.submitted_on).days
    if left < need:
        return (
            f"计划日期 {ctx.planned_on} 距提交仅 {left} 天，至少需 {need} 天 "
            f"planned {ctx.planned_on} is {left} days after submission; at least {need} needed"
        )
    return None


CHECKS: dict[str, Check] = {
    "sections_present": sections_present,
    "consultation_fits_affected": consultation_fits_affected,
    "measures_with_owners": measures_with_owners,
    "lead_time": lead_time,
}


def active_rules(session: Session) -> list[RiskReviewRule]:
    """The active review rules, in order."""
    stmt = select(RiskReviewRule).where(RiskReviewRule.active).order_by(RiskReviewRule.position)
    return list(session.scalars(stmt))


def review(
    rules: list[RiskReviewRule], report: RiskReportBody, ctx: ReviewContext
) -> list[Failure]:
    """Every rule that fails, with its reason (empty: the report passes). A rule naming a
    check the code does not know fails, so a typo in the table never passes a report."""
    failures = []
    for rule in rules:
        check = CHECKS.get(rule.check)
        if check is None:
            reason = f"未知的审查规则 unknown check {rule.check!r}: fix table risk_review_rule"
        else:
            reason = check(report, ctx, dict(rule.params or {}))
        if reason:
            failures.append(Failure(rule.code, rule.name_zh, reason))
    return failures
