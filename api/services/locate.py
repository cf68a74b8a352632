"""The point locator of the units in the database: ``geo.locate.PointLocator`` over the
units valid on a day, cached per database and boundaries version (a new import of
boundaries is a new version, so a stale locator is never used)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.db.versions import get_version
from api.services.units import level_depths
from api.settings import get_settings
from geo.locate import PointLocator

CACHED_LOCATORS = 8

_cache: OrderedDict[tuple, PointLocator] = OrderedDict()
_cache_lock = threading.Lock()


def point_locator(session: Session, on: dt.date | None = None) -> PointLocator:
    """The locator of the units valid on ``on`` (default: the current ones), cached per
    database and boundaries version."""
    key = (
        session.get_bind().url.render_as_string(hide_password=True),
        get_version(session, "boundaries"),
        on,
    )
    with _cache_lock:
        locator = _cache.get(key)
        if locator is not None:
            _cache.move_to_end(key)
            return locator
    stmt = select(
        AdminUnit.id, AdminUnit.code, AdminUnit.level, AdminUnit.parent_code, AdminUnit.geom
    )
    if on is None:
        stmt = stmt.where(AdminUnit.valid_to.is_(None))
    else:
        stmt = stmt.where(AdminUnit.valid_from <= on).where(
            AdminUnit.valid_to.is_(None) | (AdminUnit.valid_to > on)
        )
    rows = session.execute(stmt.order_by(AdminUnit.id)).all()
    locator = PointLocator.from_units(rows, level_depths(session))
    with _cache_lock:
        _cache[key] = locator
        while len(_cache) > CACHED_LOCATORS:
            _cache.popitem(last=False)
    return locator


def locate_tolerance_m() -> float:
    """How far (metres on the ground) a case point outside every leaf unit may lie from one
    to be placed in it: ``ZHILI_LOCATE_TOLERANCE_M``."""
    return get_settings().locate_tolerance_m
