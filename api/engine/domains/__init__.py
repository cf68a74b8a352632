"""The fact domains the product is built on, each declared in a module of its own, and the
metrics that read the measures of several domains."""

from api.engine.domains.cases import CASES
from api.engine.domains.desk import DESK
from api.engine.domains.events import EVENTS
from api.engine.domains.network import NETWORK
from api.engine.domains.populations import POPULATIONS
from api.engine.domains.risk import RISK
from api.engine.safety_index import SAFETY_INDEX

BUILT_IN_DOMAINS = (CASES, NETWORK, EVENTS, DESK, RISK, POPULATIONS)
METRICS_OF_SEVERAL_DOMAINS = (SAFETY_INDEX,)
