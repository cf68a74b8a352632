"""Point 26: every metric × every ``by`` × every level answers a breakdown with a 200 or a
4xx that says why, never a 500."""

from __future__ import annotations

import pytest

from api.engine import REGISTRY

BYS = ("category", "channel", "status")


@pytest.fixture(scope="module")
def one_unit_per_level(trust_client, trust_world) -> dict[str, str]:
    """The city and its first town, village and grid."""
    out = {"city": trust_world.city}
    code = trust_world.city
    for level in ("town", "village", "grid"):
        children = trust_client.get(f"/api/v1/units/{code}").json()["children"]
        code = children[0]["code"]
        out[level] = code
    return out


def test_every_metric_by_and_level_answers(trust_client, one_unit_per_level) -> None:
    bad = []
    for metric in REGISTRY:
        for by in BYS:
            for level, code in one_unit_per_level.items():
                r = trust_client.get(
                    f"/api/v1/units/{code}/breakdown",
                    params={"metric": metric, "by": by, "period": "2026"},
                )
                if r.status_code == 200:
                    assert r.json()["items"], (metric, by, level)
                    continue
                message = r.json().get("message", "")
                if r.status_code == 403 and "special_populations" in message:
                    continue  # a special-population figure: not for this caller at all
                if not (400 <= r.status_code < 500 and by in message):
                    bad.append((metric, by, level, r.status_code, message))
    assert not bad, bad


def test_per_capita_breakdown_divides_by_the_units_residents(
    trust_client, one_unit_per_level
) -> None:
    town = one_unit_per_level["town"]
    split = trust_client.get(
        f"/api/v1/units/{town}/breakdown",
        params={"metric": "caseload_per_10k", "by": "category", "period": "2026"},
    ).json()["items"]
    whole = trust_client.get(
        f"/api/v1/units/{town}/children/metrics",
        params={"metric": "caseload_per_10k", "period": "2026"},
    ).json()["self"]
    assert {i["denominator"] for i in split} == {whole["denominator"]}
    assert sum(i["numerator"] for i in split) == pytest.approx(whole["numerator"])
    assert sum(i["value"] for i in split) == pytest.approx(whole["value"])
