"""The figure engine, and its one door: everything outside ``api.engine`` imports from here.

Fact domains are declared once (``domain``, ``domains/``); the registry reads them; the
state holds the units, the network now and a cube per dated domain; services answer
figures, breakdowns, rankings, time series and choropleth tables. ``docs/architecture.md``
shows the layers and walks through adding a domain.
"""

from api.engine.domain import (
    Current,
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
from api.engine.registry import REGISTRY, forget_domain, get_metric, register_domain
from api.engine.state import State, current_state, engine_state, forget_states
from api.engine.units import UnitIndex

__all__ = [
    "REGISTRY",
    "Current",
    "Dimension",
    "Distribution",
    "Event",
    "FactDomain",
    "Metric",
    "RollupTables",
    "Share",
    "Source",
    "State",
    "Stock",
    "Tally",
    "UnitIndex",
    "current_state",
    "engine_state",
    "forget_domain",
    "forget_states",
    "get_metric",
    "register_domain",
]
