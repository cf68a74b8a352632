"""The local clock of case times: the zone of naive timestamps and the skew allowed ahead
of the server's clock (intake and the workflow agree on both)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from api.settings import get_settings

# A time up to this far ahead of the server's clock is taken as the sender's clock skew.
CLOCK_SKEW = dt.timedelta(minutes=5)


@lru_cache(maxsize=4)
def local_zone(name: str | None = None) -> ZoneInfo:
    """The zone of naive timestamps (settings: Asia/Shanghai)."""
    return ZoneInfo(name or get_settings().timezone)
