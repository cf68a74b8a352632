"""The figure engine, and its one door: everything outside ``api.engine`` imports from here.

Fact domains are declared once (``domain``, ``domains/``); the registry reads them; the
state holds the units, the network now and a cube per dated domain; the services answer
figures, breakdowns, rankings, time series and choropleth tables for a typed
``MetricQuery``. ``docs/architecture.md`` shows the layers and walks through adding a
domain.
"""

from api.engine.choropleth import ChoroplethTable, choropleth_table, feature_collection
from api.engine.disclosure import (
    PeriodNotPublished,
    is_protected,
    protected_metric_ids,
    published_months,
)
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
from api.engine.domains.cases import CASES, SERIOUS
from api.engine.domains.desk import DESK
from api.engine.domains.events import EVENTS, EventFacts
from api.engine.periods import Period, PeriodError, parse_shorthand
from api.engine.pivot import PivotCells, PivotQuery, pivot_cells
from api.engine.query import MapQuery, MetricQuery, MetricsError, ResolvedQuery, last_data_day
from api.engine.registry import REGISTRY, forget_domain, get_metric, register_domain
from api.engine.rollup import (
    CaseSnapshot,
    apply_case_changes,
    apply_changes,
    case_columns,
    rebuild,
    rebuild_rollups,
    rollup_table_count,
)
from api.engine.safety_index import Component, load_components, score_components
from api.engine.service import (
    breakdown,
    children_metrics,
    list_metrics,
    ranking,
    timeseries,
    unit_summary,
    unit_values,
)
from api.engine.snapshot import enable as keep_snapshots_in
from api.engine.state import State, current_state, engine_state, forget_states
from api.engine.units import UnitIndex

__all__ = [
    "CASES",
    "DESK",
    "EVENTS",
    "REGISTRY",
    "SERIOUS",
    "CaseSnapshot",
    "ChoroplethTable",
    "Component",
    "Current",
    "Dimension",
    "Distribution",
    "Event",
    "EventFacts",
    "FactDomain",
    "MapQuery",
    "Metric",
    "MetricQuery",
    "MetricsError",
    "Period",
    "PeriodError",
    "PeriodNotPublished",
    "PivotCells",
    "PivotQuery",
    "ResolvedQuery",
    "RollupTables",
    "Share",
    "Source",
    "State",
    "Stock",
    "Tally",
    "UnitIndex",
    "apply_case_changes",
    "apply_changes",
    "breakdown",
    "case_columns",
    "children_metrics",
    "choropleth_table",
    "current_state",
    "engine_state",
    "feature_collection",
    "forget_domain",
    "forget_states",
    "get_metric",
    "is_protected",
    "keep_snapshots_in",
    "last_data_day",
    "list_metrics",
    "load_components",
    "parse_shorthand",
    "pivot_cells",
    "protected_metric_ids",
    "published_months",
    "ranking",
    "rebuild",
    "rebuild_rollups",
    "register_domain",
    "rollup_table_count",
    "score_components",
    "timeseries",
    "unit_summary",
    "unit_values",
]
