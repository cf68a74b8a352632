"""The seed's timelines: 受理 entries before the moves, so that ``dispatch_wait_hours``
counts from acceptance; and the desk's rollups filled from them."""

from __future__ import annotations

from sqlalchemy import text

from api.db.session import session_scope


def test_the_seed_accepts_before_it_dispatches_and_fills_the_rollups(small_world_url) -> None:
    with session_scope(small_world_url) as session:

        def one(sql: str):
            return session.execute(text(sql)).one()

        # every closed case was accepted by someone first
        unaccepted = one(
            'SELECT COUNT(*) FROM "case" c WHERE c.handled_at IS NOT NULL AND NOT EXISTS '
            "(SELECT 1 FROM case_action a WHERE a.case_id = c.id AND a.action = 'accept' "
            "AND a.at <= c.handled_at)"
        )[0]
        assert unaccepted == 0
        # each dispatch waited from the town's 受理 of the escalated case
        dispatches, from_accept = one(
            "SELECT COUNT(*), SUM(CASE WHEN ABS(d.wait_seconds - (strftime('%s', d.at) - "
            "strftime('%s', a.at))) < 1 THEN 1 ELSE 0 END) FROM case_action d "
            "JOIN case_action a ON a.case_id = d.case_id AND a.action = 'accept' "
            "AND a.from_node = 'level:town' AND a.version = d.version - 1 "
            "WHERE d.action = 'dispatch'"
        )
        total = one("SELECT COUNT(*) FROM case_action WHERE action = 'dispatch'")[0]
        assert dispatches == from_accept == total > 100
        # the rollups hold every entry, and the dispatches' waits
        actions, waits = one(
            "SELECT SUM(desk_actions), SUM(desk_dispatch_wait_seconds) FROM desk_rollup_daily"
        )
        want = one(
            "SELECT COUNT(*), SUM(CASE WHEN action = 'dispatch' THEN "
            "CAST(wait_seconds AS INTEGER) ELSE 0 END) FROM case_action"
        )
        assert (actions, waits) == tuple(want)
        # versions count the entries: the case's is its last move's
        stale = one(
            'SELECT COUNT(*) FROM "case" c WHERE c.version <> 1 + (SELECT COUNT(*) FROM '
            "case_action a WHERE a.case_id = c.id AND a.action <> 'handle')"
        )[0]
        assert stale == 0
