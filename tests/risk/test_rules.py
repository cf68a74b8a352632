"""Every review rule of the table, one test each: it fails with its reason, and a report
that meets it passes it. The rules are read from a migrated database (they are data)."""

from __future__ import annotations

import datetime as dt

import pytest

from api.db.session import session_scope
from api.services.risk_review import ReviewContext, RiskReportBody, active_rules, review
from tests.risk.helpers import good_report

SUBMITTED = dt.date(2026, 12, 1)
CTX = ReviewContext(people_affected=5000, planned_on=dt.date(2027, 1, 15), submitted_on=SUBMITTED)


@pytest.fixture(scope="module")
def rules(sqlite_template):
    with session_scope(f"sqlite:///{sqlite_template}") as session:
        found = active_rules(session)
        session.expunge_all()
    return found


def failures(rules, body: dict, ctx: ReviewContext = CTX) -> dict[str, str]:
    return {f.rule: f.reason for f in review(rules, RiskReportBody(**body), ctx)}


def test_the_table_holds_the_four_rules_and_a_good_report_passes_them(rules) -> None:
    assert [r.code for r in rules] == ["sections", "consultation", "high_risk_measures",
                                       "lead_time"]  # fmt: skip
    assert failures(rules, good_report()) == {}


def test_every_required_section_is_present(rules) -> None:
    got = failures(rules, good_report(feasibility=None, risk_points=[]))
    assert set(got) == {"sections"}
    assert "feasibility" in got["sections"] and "risk_points" in got["sections"]


def test_the_number_consulted_fits_the_people_affected(rules) -> None:
    got = failures(rules, good_report(consultation={"consulted": 12, "objections": []}))
    assert set(got) == {"consultation"}
    assert "consulted 12 of 5000 affected; at least 50 needed" in got["consultation"]
    small = ReviewContext(20, CTX.planned_on, SUBMITTED)  # never more than are affected
    assert failures(rules, good_report(consultation={"consulted": 20}), small) == {}


def test_a_high_risk_has_measures_with_owners_and_dates(rules) -> None:
    lacking = [{"action": "听证", "owner": "王", "due": "2027-01-01"}, {"action": "公示"}]
    got = failures(rules, good_report(measures=lacking))
    assert set(got) == {"high_risk_measures"}
    assert "measures 2 of a high risk lack an owner or a date" in got["high_risk_measures"]
    assert failures(rules, good_report(measures=lacking, risk_level="low")) == {}


def test_the_planned_date_leaves_time_for_the_assessment(rules) -> None:
    soon = ReviewContext(5000, SUBMITTED + dt.timedelta(days=3), SUBMITTED)
    got = failures(rules, good_report(), soon)
    assert set(got) == {"lead_time"}
    assert "3 days after submission; at least 10 needed" in got["lead_time"]


def test_a_rule_naming_an_unknown_check_fails_rather_than_passes(rules) -> None:
    from api.db.risk import RiskReviewRule

    typo = RiskReviewRule(code="typo", check="sections_presnt", name_zh="拼错", name_en="typo",
                          params={}, active=True, position=9)  # fmt: skip
    got = failures([*rules, typo], good_report())
    assert set(got) == {"typo"} and "unknown check" in got["typo"]
