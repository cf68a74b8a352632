"""The register's figures are registry metrics: served per level like any other, and equal
to a recount of the items, on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from api.db.risk import RiskItem
from api.db.session import session_scope
from api.principal import Principal
from api.services import risk, risk_assess, risk_follow
from api.services.risk_review import RiskReportBody
from tests.risk.helpers import add_agency, good_report, square

METRICS = (
    "risk_items",
    "assessed_before_decision_rate",
    "decisions_without_assessment",
    "high_risk_open",
    "overdue_assessments",
    "incidents_after_decision",
    "risk_to_incident_rate",
)


def build_register(db_url: str, world) -> None:
    """Items at the city, the towns and a village, through the service, in every state."""
    admin = Principal(0, "t-admin", "admin", world.city)
    now = dt.datetime.now(dt.UTC)
    units = [world.city, world.towns[0], world.towns[1], world.villages[0], world.villages[3]]
    with session_scope(db_url) as s:
        add_agency(db_url, "AGF")
        for k, unit in enumerate(units * 3):
            x = 121.01 + 0.09 * (k % 3) + 0.004 * k
            place = square(x, 31.41 + 0.01 * k, x + 0.005, 31.415 + 0.01 * k)
            kind = ["decision", "project", "large_event"][k % 3]
            planned = now + dt.timedelta(days=20 + k)
            new = risk.NewItem(kind, f"item {k}", unit, place, planned, 500 + 100 * k, "d")
            item = risk.register_item(s, admin, new)
            if k % 4 == 0:
                continue
            risk_assess.assign_agency(s, admin, item.id, "AGF",
                               due_at=now + dt.timedelta(days=1) if k % 5 else None)  # fmt: skip
            if k % 3 == 1:
                body = good_report(risk_level=["high", "medium", "low"][k % 3 - 1 + (k % 2)])
                risk_assess.submit_report(s, admin, item.id, RiskReportBody(**body))
            if k % 2 == 1:
                risk_follow.decide(s, admin, item.id, "implement")
        table = RiskItem.__table__
        s.execute(table.update().where(RiskItem.id % 3 == 0).values(incidents=2))
        late = now - dt.timedelta(days=2)  # an assessment past its due date
        assigned = RiskItem.assessment_due_at.is_not(None)
        s.execute(
            table.update().where(RiskItem.id % 4 == 2, assigned).values(assessment_due_at=late)
        )


def recount(db_url: str, world) -> dict[str, dict[str, float | None]]:
    """metric → unit code → value, from the rows, summed up the world's parent map."""
    now = dt.datetime.now(dt.UTC)
    sums: dict[str, dict[str, float]] = {}
    with session_scope(db_url) as s:
        rows = s.scalars(select(RiskItem)).all()
        for r in rows:
            decided = r.decided_at is not None
            first = decided and r.assessed_at is not None and r.assessed_at <= r.decided_at
            facts = {
                "items": 1,
                "decided": decided,
                "first": first,
                "unassessed": decided and not first,
                "high_open": r.risk_level == "high" and (not decided or r.follow_until > now),
                "overdue": r.assessment_due_at is not None
                and ((r.assessed_at is None and now > r.assessment_due_at)
                     or (r.assessed_at is not None and r.assessed_at > r.assessment_due_at)),
                "incidents": r.incidents,
                "with_incidents": r.incidents > 0,
            }  # fmt: skip
            code = r.deciding_unit_code
            while code is not None:
                for k, v in facts.items():
                    sums.setdefault(code, {}).setdefault(k, 0)
                    sums[code][k] += float(v)
                code = world.parent.get(code)

    def rate(a: float, b: float) -> float | None:
        return a / b if b else None

    out: dict[str, dict[str, float | None]] = {m: {} for m in METRICS}
    for code, f in sums.items():
        g = f.get
        out["risk_items"][code] = g("items", 0.0)
        out["assessed_before_decision_rate"][code] = rate(g("first", 0.0), g("decided", 0.0))
        out["decisions_without_assessment"][code] = g("unassessed", 0.0)
        out["high_risk_open"][code] = g("high_open", 0.0)
        out["overdue_assessments"][code] = g("overdue", 0.0)
        out["incidents_after_decision"][code] = g("incidents", 0.0)
        out["risk_to_incident_rate"][code] = rate(g("with_incidents", 0.0), g("decided", 0.0))
    return out


def test_the_registers_figures_equal_a_recount(client, db_url, world) -> None:
    build_register(db_url, world)
    expected = recount(db_url, world)
    listed = {m["id"] for m in client.get("/api/v1/metrics").json()}
    assert set(METRICS) <= listed
    today = dt.datetime.now(dt.UTC).date()
    period = {
        "start": (today - dt.timedelta(days=30)).isoformat(),
        "end": (today + dt.timedelta(days=2)).isoformat(),
    }  # local days run ahead of UTC
    for metric in METRICS:
        for parent in (world.city, world.towns[0], world.towns[1]):
            answer = client.get(f"/api/v1/units/{parent}/children/metrics",
                                params={"metric": metric, **period})  # fmt: skip
            assert answer.status_code == 200, answer.text
            body = answer.json()
            shown = {c["code"]: c["value"] for c in body["children"]} | {
                parent: body["self"]["value"]
            }
            for code, value in shown.items():
                want = expected[metric].get(code)
                if want is None and metric.endswith("rate"):
                    assert value is None, (metric, code, value)
                    continue
                assert value is not None or want in (None, 0), (metric, code)
                assert round(value or 0, 6) == round(want or 0, 6), (metric, code, value, want)
    from api.engine import reference

    with session_scope(db_url) as s:  # the engine's plain reference agrees too
        for metric in METRICS:
            plain = reference.recount(s, world.city, "town", metric,
                                      dt.date.fromisoformat(period["start"]),
                                      dt.date.fromisoformat(period["end"]))  # fmt: skip
            for code, figure in plain.items():
                want = expected[metric].get(code)
                assert round(figure.value or 0, 6) == round(want or 0, 6), (metric, code)
    for metric in METRICS:  # the recount is not one of zeros
        assert any(v for v in expected[metric].values()), metric
    split = client.get(f"/api/v1/units/{world.city}/breakdown",
                       params={"metric": "risk_items", "by": "kind", **period})  # fmt: skip
    assert split.status_code == 200, split.text
