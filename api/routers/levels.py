"""The levels of the hierarchy, as data."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Reader, SessionDep
from api.services.units import list_levels

router = APIRouter(tags=["units"])


@router.get("/levels")
def levels(session: SessionDep, user: Reader) -> list[dict]:
    """Levels from the root down: depth, code, Chinese and English names."""
    return [
        {"depth": lvl.depth, "code": lvl.code, "name_zh": lvl.name_zh, "name_en": lvl.name_en}
        for lvl in list_levels(session)
    ]
