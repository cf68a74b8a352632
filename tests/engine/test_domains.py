"""The fact-domain declarations: each measure declared once, the rollup tables' columns
exactly what the declaration says, and a declaration that contradicts itself refused."""

from __future__ import annotations

import pytest

from api.db.models import Base
from api.engine import REGISTRY, FactDomain, Metric, Share, Stock, Tally, register_domain
from api.engine.registry import DOMAINS, MEASURES


def test_every_table_backed_domain_matches_its_tables() -> None:
    for domain in DOMAINS.values():
        if domain.tables is None:
            continue
        tables = Base.metadata.tables
        keys = ["leaf_unit_id", "day"]
        daily = [*keys, *(d.column for d in domain.dimensions), *(t.name for t in domain.tallies)]
        assert list(tables[domain.tables.daily].columns.keys()) == daily
        if domain.tables.flow:
            flow = [*keys, *domain.tables.flow_dimensions, *(e.name for e in domain.events)]
            assert list(tables[domain.tables.flow].columns.keys()) == flow
        for distribution in domain.distributions:
            histogram = [*keys, "days", "n"]
            assert list(tables[distribution.table].columns.keys()) == histogram


def test_every_metric_reads_declared_measures_of_one_name_each() -> None:
    names = [m.name for d in DOMAINS.values() for m in d.measures]
    assert len(names) == len(set(names)) == len(MEASURES)
    for metric in REGISTRY.values():
        assert set(metric.measures()) <= set(MEASURES), metric.id


def test_a_measure_declared_twice_is_refused() -> None:
    twice = FactDomain(name="again", measures=(Tally("cases", lambda d: "1"),))
    with pytest.raises(ValueError, match="already declared by 'cases'"):
        register_domain(twice)
    assert "again" not in DOMAINS and MEASURES["cases"].domain.name == "cases"


def test_a_declaration_that_contradicts_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        FactDomain(name="d", measures=(Tally("x", lambda d: "1"), Tally("x", lambda d: "1")))
    with pytest.raises(ValueError, match="no tally"):
        FactDomain(name="d", measures=(Share("s", of="x", dimension="kind", codes=frozenset()),))
    with pytest.raises(ValueError, match="undeclared"):
        FactDomain(name="d", measures=(Stock("open", up="in", down="out"),))


def test_a_metric_of_an_undeclared_measure_is_refused() -> None:
    stray = Metric("stray", "无", "Stray", "件", "nothing", None, "integer", None, "caseload",
                   "count")  # fmt: skip
    with pytest.raises(ValueError, match="undeclared measures"):
        register_domain(FactDomain(name="stray", metrics=(stray,)))
    assert "stray" not in REGISTRY and "stray" not in DOMAINS
