"""A bulk file's chunk (``ingest_frame(bulk=True)``: on PostgreSQL every row offered to
``INSERT .. ON CONFLICT`` first, in the order of the leaf-and-time index, no outcome per
created case) ends exactly as the plain path (look up, insert the rest in key order, an
outcome each): the same fates, the same rows stored, the rollups equal to a recount."""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import select

from api.db.models import Case
from api.db.session import session_factory, session_scope
from api.schemas.cases import parse_batch
from api.services.cases import frame_from_items, ingest_frame
from tests.intake.conftest import assert_rollups_equal_recount, case

FIELDS = ("external_id", "category", "channel", "reported_at", "lon", "lat", "leaf_unit_id")


def batch(source: str, n: int, changed: bool) -> list[dict]:
    """``n`` cases of ``source`` at several points and days; ``changed``: the same keys
    with every third case re-categorised and one line a duplicate of another."""
    points = [(121.02, 31.45), (121.15, 31.55), (121.05, 31.52), (121.08, 31.47)]
    out = []
    for i in range(n):
        lon, lat = points[i % len(points)]
        when = dt.datetime(2025, 3, 1, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
        category = "labour" if changed and i % 3 == 0 else "neighbour"
        out.append(
            case(
                source=source,
                external_id=f"K{i:04d}",
                category=category,
                lon=lon,
                lat=lat,
                reported_at=when.isoformat(),
            )
        )
    if changed:
        out.append(dict(out[5]))  # a duplicate in the batch: rejected, names the first
        out.append(case(source=source, external_id="far", lon=130.0, lat=40.0))  # refused
    return out


def ingest(db_url: str, cases: list[dict], bulk: bool) -> dict[str, int]:
    items, bad, _ = parse_batch(orjson.dumps(cases))
    assert not bad
    session = session_factory(db_url)()
    try:
        report = ingest_frame(
            session, frame_from_items(items), user_name="t", scope_code=None, bulk=bulk
        )
    finally:
        session.close()
    return report.summary()


def stored(db_url: str, source: str) -> list[tuple]:
    with session_scope(db_url) as session:
        rows = session.execute(
            select(*(getattr(Case, f) for f in FIELDS)).where(Case.source == source)
        ).all()
    return sorted(tuple(r) for r in rows)


def test_the_bulk_path_ends_as_the_plain_path(db_url, world):
    fates = {}
    for source, bulk in (("plain", False), ("bulk", True)):
        first = ingest(db_url, batch(source, 40, changed=False)[:30], bulk)
        again = ingest(db_url, batch(source, 40, changed=True), bulk)
        fates[source] = (first, again)
    assert fates["bulk"] == fates["plain"]
    assert fates["bulk"][0] == {"created": 30, "updated": 0, "unchanged": 0, "rejected": 0}
    assert fates["bulk"][1] == {"created": 10, "updated": 10, "unchanged": 20, "rejected": 2}
    assert stored(db_url, "bulk") == stored(db_url, "plain")
    assert len(stored(db_url, "bulk")) == 40
    assert_rollups_equal_recount(db_url)
