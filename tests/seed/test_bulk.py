"""Bulk writing writes exactly what it is given, NULLs and awkward text included."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select

from api.db.models import AuditLog, Case, Facility
from api.db.session import session_scope
from api.services.bulk import bulk_loading, copy_column_chunks, copy_columns, copy_rows

UTC = dt.UTC


def test_copy_rows_round_trip(db_url: str) -> None:
    rows = [
        ("320583001", "center", "built", 91.5, True),
        ("320583002", "center", "required", None, False),
        ("320583003\t", "linkage_station", "under_construction", None, False),
    ]
    with session_scope(db_url) as session:
        written = copy_rows(
            session,
            Facility.__table__,
            ["unit_code", "kind", "status", "rating", "video_linked"],
            iter(rows),
        )
    with session_scope(db_url) as session:
        back = session.execute(
            select(
                Facility.unit_code,
                Facility.kind,
                Facility.status,
                Facility.rating,
                Facility.video_linked,
            ).order_by(Facility.id)
        ).all()
    assert written == 3
    assert [tuple(r) for r in back] == rows


def test_copy_columns_round_trip(db_url: str, world) -> None:
    reported = np.array(["2026-03-01T02:03:04", "2026-03-02T00:00:00.250000"], "datetime64[us]")
    handled = np.array(["2026-03-05T08:00:00", "NaT"], "datetime64[us]")
    chunk = {
        "source": np.array(["hotline", "hotline"]),
        "external_id": np.array(["a\\1", "b\n2"]),
        "channel": np.array(["hotline_12345", "walk_in"]),
        "category": np.array(["neighbour", "petition"]),
        "description": np.array(["邻里\t噪音", None], dtype=object),
        "reported_at": reported,
        "lon": np.array([121.05, np.nan]),
        "lat": np.array([31.45, np.nan]),
        "leaf_unit_id": np.array([1, 1]),
        "status": np.array(["handled", "received"]),
        "handled_at": handled,
        "outcome": np.ma.masked_array(["resolved", ""], mask=[False, True]),
        "deadline": reported + np.timedelta64(15, "D"),
        "satisfaction": np.ma.masked_array([4, 0], mask=[False, True]),
        "created_at": reported,
        "updated_at": reported,
    }
    with session_scope(db_url) as session:
        chunk["leaf_unit_id"] = np.full(2, _a_unit_id(session))
        with bulk_loading(session, Case.__table__):
            assert copy_columns(session, Case.__table__, chunk) == 2
    with session_scope(db_url) as session:
        cases = list(session.scalars(select(Case).order_by(Case.id)))
    first, second = cases
    assert (first.external_id, second.external_id) == ("a\\1", "b\n2")
    assert (first.description, second.description) == ("邻里\t噪音", None)
    assert first.reported_at == dt.datetime(2026, 3, 1, 2, 3, 4, tzinfo=UTC)
    assert second.reported_at == dt.datetime(2026, 3, 2, 0, 0, 0, 250000, tzinfo=UTC)
    assert first.handled_at == dt.datetime(2026, 3, 5, 8, tzinfo=UTC)
    assert second.handled_at is None
    assert (first.lon, first.lat, second.lon) == (121.05, 31.45, None)
    assert (first.outcome, second.outcome) == ("resolved", None)
    assert (first.satisfaction, second.satisfaction) == (4, None)
    assert first.deadline == first.reported_at + dt.timedelta(days=15)


def test_chunks_stream_into_one_write(db_url: str) -> None:
    at = np.datetime64("2026-01-01T00:00:00", "us")

    def chunks():
        for start in (0, 3, 5):
            n = {0: 3, 3: 2, 5: 4}[start]
            yield {
                "at": np.full(n, at) + np.arange(start, start + n) * np.timedelta64(1, "s"),
                "action": np.array([f"a{i}" for i in range(start, start + n)]),
                "user_name": np.array([None] * n, dtype=object),
            }

    seen: list[int] = []
    with session_scope(db_url) as session:
        total = copy_column_chunks(session, AuditLog.__table__, chunks(), on_chunk=seen.append)
    with session_scope(db_url) as session:
        actions = list(session.scalars(select(AuditLog.action).order_by(AuditLog.at)))
    assert total == 9 and seen == [3, 2, 4]
    assert actions == [f"a{i}" for i in range(9)]


def _a_unit_id(session) -> int:
    from api.db.models import AdminUnit

    return session.scalar(select(AdminUnit.id).order_by(AdminUnit.id).limit(1))


def test_bulk_loading_restores_indexes_and_checks_keys(db_url: str, world) -> None:
    from sqlalchemy import inspect

    with session_scope(db_url) as session:
        before = inspect(session.connection()).get_indexes("case")
        keys = inspect(session.connection()).get_foreign_keys("case")
        with bulk_loading(session, Case.__table__):
            pass
        assert inspect(session.connection()).get_indexes("case") == before
        assert inspect(session.connection()).get_foreign_keys("case") == keys
    at = np.array(["2026-03-01T00:00:00"], "datetime64[us]")
    bad = {
        "source": np.array(["x"]),
        "external_id": np.array(["1"]),
        "channel": np.array(["walk_in"]),
        "category": np.array(["neighbour"]),
        "reported_at": at,
        "leaf_unit_id": np.array([10**9]),  # no such unit
        "status": np.array(["received"]),
        "deadline": at,
        "created_at": at,
        "updated_at": at,
    }
    with pytest.raises(Exception, match=r"(?i)foreign key"), session_scope(db_url) as session:
        with bulk_loading(session, Case.__table__):
            copy_columns(session, Case.__table__, bad)
        session.flush()
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0
