"""Timestamps of facts as numpy columns: UTC microseconds, local days, whole seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from api.settings import get_settings

NAT = np.datetime64("NaT", "us")


def utc_us(values) -> np.ndarray:
    """Datetimes (aware, or naive UTC), pandas or numpy, as datetime64[us] UTC (NaT for
    None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[us]")
    stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    return stamps.dt.tz_localize(None).to_numpy("datetime64[us]")


def local_days(at: np.ndarray) -> np.ndarray:
    """Local day (settings' zone, with its history) of each UTC instant, datetime64[D]."""
    zone = get_settings().timezone
    local = pd.DatetimeIndex(at).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return local.to_numpy("datetime64[D]")


def floor_seconds(at: np.ndarray) -> np.ndarray:
    """Whole seconds since 1970 of each instant."""
    return at.astype("datetime64[us]").astype(np.int64) // 1_000_000
