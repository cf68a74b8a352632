"""The registry: every fact domain, every measure by name and every metric, read from the
domains' declarations (``api.engine.domains``). The one source of what each figure is.

A rate at every level is Σ numerator / Σ denominator over the leaves below (never an
average of the children's rates). A metric names its measures; a measure name belongs to
exactly one domain. A metric with its own arithmetic (``safety_index``) gives a ``compute``
function over a frame of measures (``frame["cases"]``: one float per unit shown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from api.engine.domain import Current, FactDomain, Metric, Share, Stock, Tally
from api.engine.domains import BUILT_IN_DOMAINS, METRICS_OF_SEVERAL_DOMAINS


@dataclass(frozen=True)
class MeasureRef:
    """Where a measure lives: its domain and its declaration."""

    domain: FactDomain
    measure: Tally | Share | Stock | Current

    @property
    def timed(self) -> bool:
        """True when the measure depends on the period (False: the state now)."""
        return not isinstance(self.measure, Current)


REGISTRY: dict[str, Metric] = {}  # metric id → metric, in declaration order
MEASURES: dict[str, MeasureRef] = {}  # measure name → where it lives
DOMAINS: dict[str, FactDomain] = {}  # domain name → declaration


def register_domain(domain: FactDomain) -> FactDomain:
    """Add a fact domain with its measures and metrics (one of the same name is replaced):
    they are served from the next request on. A domain whose metrics read measures that no
    domain declares is refused whole."""
    known = {n for n, ref in MEASURES.items() if ref.domain.name != domain.name}
    known |= {m.name for m in domain.measures}
    for metric in domain.metrics:
        unknown = [m for m in metric.measures() if m not in known]
        if unknown:
            raise ValueError(f"metric {metric.id!r} reads undeclared measures {unknown}")
    _add_measures(domain)
    for metric in domain.metrics:
        register(metric)
    return domain


def _add_measures(domain: FactDomain) -> None:
    forget_domain(domain.name)
    for measure in domain.measures:
        if measure.name in MEASURES:
            raise ValueError(
                f"measure {measure.name!r} of {domain.name!r} is already declared by "
                f"{MEASURES[measure.name].domain.name!r}"
            )
    for measure in domain.measures:
        MEASURES[measure.name] = MeasureRef(domain, measure)
    DOMAINS[domain.name] = domain


def forget_domain(name: str) -> None:
    """Remove a domain, its measures and its metrics."""
    old = DOMAINS.pop(name, None)
    if old is None:
        return
    for measure in old.measures:
        MEASURES.pop(measure.name, None)
    for metric in old.metrics:
        REGISTRY.pop(metric.id, None)


def register(metric: Metric) -> Metric:
    """Add (or replace) a metric; every measure it names must be declared."""
    unknown = [m for m in metric.measures() if m not in MEASURES]
    if unknown:
        raise ValueError(f"metric {metric.id!r} reads undeclared measures {unknown}")
    metric = replace(metric, timed=any(MEASURES[m].timed for m in metric.measures()))
    if metric.small_number_rule is None:
        metric = replace(metric, small_number_rule=metric.default_small_number_rule())
    REGISTRY[metric.id] = metric
    return metric


def get_metric(metric_id: str) -> Metric:
    """The metric ``metric_id``; KeyError lists the known ids."""
    try:
        return REGISTRY[metric_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown metric {metric_id!r}; known: {known}") from None


def distribution_domain(name: str) -> FactDomain:
    """The domain that keeps the distribution ``name``."""
    for domain in DOMAINS.values():
        if any(d.name == name for d in domain.distributions):
            return domain
    raise KeyError(f"no domain keeps a distribution {name!r}")


def dated_domains() -> list[FactDomain]:
    """The domains with facts in time (each has a cube)."""
    return [d for d in DOMAINS.values() if d.dated]


# every built-in measure first: a metric may read the measures of another domain
for _domain in BUILT_IN_DOMAINS:
    _add_measures(_domain)
for _metric in (*(m for d in BUILT_IN_DOMAINS for m in d.metrics), *METRICS_OF_SEVERAL_DOMAINS):
    register(_metric)
