"""Two people acting on one case at once, with real threads against PostGIS: one wins,
the other gets a 409 with the case's current state; one key sent twice at once acts once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from api.db.desk import CaseAction
from api.db.session import session_factory, session_scope
from api.errors import ApiError
from api.principal import Principal
from api.services.desk import ActionRequest, act

POSTGIS_ONLY = pytest.mark.parametrize("db_kind", ["postgis"], indirect=True)


def race(db_url: str, case_id: int, calls: list[tuple[Principal, ActionRequest]]) -> list:
    """Run each (principal, request) in a thread of its own, released together."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int, who: Principal, request: ActionRequest) -> None:
        session = session_factory(db_url)()
        try:
            barrier.wait()
            results[i] = act(session, who, case_id, request)
        except ApiError as exc:
            results[i] = exc
        finally:
            session.close()

    threads = [
        threading.Thread(target=run, args=(i, who, req)) for i, (who, req) in enumerate(calls)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@POSTGIS_ONLY
def test_two_people_at_once_one_wins_the_other_gets_409(desk) -> None:
    w = desk.world
    worker = Principal(0, "vw", "village_worker", w.villages[0])
    official = Principal(0, "town", "official", w.towns[0])
    for round_ in range(3):
        case_id = desk.post(category="neighbour")
        results = race(
            desk.db_url,
            case_id,
            [
                (worker, ActionRequest("escalate", 1, key=f"a{round_}", reason="too big")),
                (official, ActionRequest("dispatch", 1, key=f"b{round_}", to_unit=w.grids[1])),
            ],
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, ApiError)]
        assert len(won) == 1 and len(lost) == 1, results
        assert lost[0].status == 409
        assert lost[0].extra["case"]["version"] == 2
        assert lost[0].extra["case"]["handling_level"] == won[0]["case"]["handling_level"]
        with session_scope(desk.db_url) as session:
            n = session.scalar(
                select(func.count()).select_from(CaseAction).where(CaseAction.case_id == case_id)
            )
        assert n == 1


@POSTGIS_ONLY
def test_one_key_sent_twice_at_once_acts_once(desk) -> None:
    w = desk.world
    worker = Principal(0, "vw", "village_worker", w.villages[0])
    case_id = desk.post(category="neighbour")
    request = ActionRequest("accept", 1, key="same-key")
    results = race(desk.db_url, case_id, [(worker, request), (worker, request)])
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(r["replayed"] for r in results) == [False, True]
    with session_scope(desk.db_url) as session:
        assert session.scalar(select(func.count()).select_from(CaseAction)) == 1
