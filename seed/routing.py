"""Routing of the synthetic cases (分级分流), as numpy columns beside the cases.

Every case starts where the default routing rules send it (``api.services.routing``: a
neighbour dispute at its village, a hazard at its grid, wages at the town's 劳动保障所, a
petition at the city's 信访局). Then, drawn from a stream of its own (the cases' draws stay
as they were): a share of the cases held at a village or grid is escalated (上报) to the
town — each town has its own habit, 3-14% —, about half of those the town dispatches (下派)
to one of its departments, and a few of these the department returns (退回). The moves land
in ``case_action`` with times between the case's receipt and its close; each closed case
gets its 办 (handle) entry from one ``INSERT .. SELECT`` at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.desk import CaseAction, Department
from api.services.bulk import copy_columns
from api.services.routing import Router, set_up_routing
from seed.cases import CATEGORY_CODES
from seed.layout import Layout, stream

# the department a town dispatches an escalated case of each category to
DISPATCH_KIND = {
    "labour": "labour",
    "land_housing": "housing",
    "environment": "environment",
    "consumer": "market",
    "property": "urban",
    "traffic": "police",
    "petition": "petition",
    "safety_hazard": "urban",
}
DISPATCHED = 0.55  # of the cases escalated to a town
RETURNED = 0.08  # of the cases dispatched to a department
NAT = np.datetime64("NaT")


class SeedRouting:
    """The routes of a world's grids × categories, and the moves of its cases."""

    def __init__(self, session: Session, layout: Layout, grid_ids: np.ndarray, seed: int) -> None:
        set_up_routing(session)
        router = Router(session)
        router.load(grid_ids.tolist())
        g_n, c_n = len(grid_ids), len(CATEGORY_CODES)
        self.code = np.empty((g_n, c_n), dtype=object)
        self.level = np.empty((g_n, c_n), dtype=object)
        self.dept = np.full((g_n, c_n), -1, dtype=np.int64)
        for g, gid in enumerate(grid_ids.tolist()):
            for c, category in enumerate(CATEGORY_CODES):
                found = router.route(gid, category)
                self.code[g, c], self.level[g, c] = found.unit_code, found.level
                self.dept[g, c] = -1 if found.department_id is None else found.department_id
        town = np.array(layout.town_codes, dtype=object)[layout.village_town[layout.grid_village]]
        self.town = town
        departments = {
            (u, k): i
            for i, u, k in session.execute(
                select(Department.id, Department.unit_code, Department.kind)
            )
        }
        self.dispatch_dept = np.array(
            [
                [
                    departments.get((t, DISPATCH_KIND.get(cat, "mediation")), -1)
                    for cat in CATEGORY_CODES
                ]
                for t in town
            ],
            dtype=np.int64,
        ).reshape(g_n, c_n)
        self.order = np.argsort(grid_ids)
        self.sorted_ids = grid_ids[self.order]
        self.rng = stream(seed, "routing")
        town_rate = self.rng.uniform(0.03, 0.14, len(layout.town_codes))
        self.escalate_rate = town_rate[layout.village_town[layout.grid_village]]
        self.cat_index = {code: i for i, code in enumerate(CATEGORY_CODES)}
        self.moves: list[dict[str, np.ndarray]] = []
        self.next_id = 1

    def route_chunks(
        self, chunks: Iterator[dict[str, np.ndarray]]
    ) -> Iterator[dict[str, np.ndarray]]:
        """The case chunks with their handler columns added; the moves kept for later."""
        for chunk in chunks:
            yield self._route(chunk)

    def _route(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(chunk["leaf_unit_id"])
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        g = self.order[np.searchsorted(self.sorted_ids, chunk["leaf_unit_id"])]
        c = np.array([self.cat_index[x] for x in chunk["category"].tolist()], dtype=np.int64)
        rng = self.rng
        received = chunk["received_at"].astype("datetime64[s]").astype(np.int64)
        handled = chunk["handled_at"]
        last = np.max(
            np.vstack(
                [
                    chunk[k].astype("datetime64[s]").astype(np.int64)
                    for k in (
                        "received_at",
                        "scheduled_at",
                        "handled_at",
                        "visited_at",
                        "evaluated_at",
                    )
                ]
            ),
            axis=0,
        )
        closed = ~np.isnat(handled)
        until = np.where(closed, handled.astype("datetime64[s]").astype(np.int64), last + 3600)
        code, level, dept = self.code[g, c], self.level[g, c], self.dept[g, c]
        local = np.isin(level, ("village", "grid")) & (dept < 0)
        draws = rng.random((4, n))
        esc = local & (draws[0] < self.escalate_rate[g]) & (until > received + 60)
        disp = esc & (draws[1] < DISPATCHED) & (self.dispatch_dept[g, c] >= 0)
        ret = disp & (draws[2] < RETURNED)
        span = (until - received).astype(np.float64)
        t_esc = received + (span * (0.05 + 0.25 * draws[3])).astype(np.int64)
        t_disp = t_esc + ((until - t_esc) * 0.3).astype(np.int64)
        t_ret = t_disp + ((until - t_disp) * 0.5).astype(np.int64)
        town = self.town[g]
        final_code = np.where(esc, town, code)
        final_dept = np.where(disp & ~ret, self.dispatch_dept[g, c], np.where(esc, -1, dept))
        since = np.where(ret, t_ret, np.where(disp, t_disp, np.where(esc, t_esc, received)))
        version = 1 + esc.astype(np.int64) + disp + ret
        leaf = chunk["leaf_unit_id"]
        for mask, action, at, frm, to, held, v in (
            (esc, "escalate", t_esc, (code, level, dept), (town, "town", -1), t_esc - received, 2),
            (
                disp,
                "dispatch",
                t_disp,
                (town, "town", -1),
                (town, "town", self.dispatch_dept[g, c]),
                t_disp - t_esc,
                3,
            ),
            (
                ret,
                "return",
                t_ret,
                (town, "town", self.dispatch_dept[g, c]),
                (town, "town", -1),
                t_ret - t_disp,
                4,
            ),
        ):
            if mask.any():
                self.moves.append(
                    {
                        "case_id": ids[mask],
                        "leaf_unit_id": leaf[mask],
                        "at": _ts(at[mask]),
                        "action": np.full(mask.sum(), action, dtype=object),
                        "user_name": np.full(mask.sum(), "seed", dtype=object),
                        "from_unit": frm[0][mask].astype(object),
                        "from_level": np.broadcast_to(frm[1], n)[mask].astype(object),
                        "from_department_id": np.ma.masked_less(
                            np.broadcast_to(frm[2], n)[mask].astype(np.int64), 0
                        ),
                        "to_unit": to[0][mask].astype(object),
                        "to_level": np.broadcast_to(to[1], n)[mask].astype(object),
                        "to_department_id": np.ma.masked_less(
                            np.broadcast_to(to[2], n)[mask].astype(np.int64), 0
                        ),
                        "held_seconds": held[mask].astype(np.float64),
                        "wait_seconds": np.where(
                            action == "dispatch", held[mask].astype(np.float64), np.nan
                        ),
                        "version": np.full(mask.sum(), v, dtype=np.int64),
                    }
                )
        return chunk | {
            "handling_unit_code": final_code.astype(object),
            "department_id": np.ma.masked_less(final_dept.astype(np.int64), 0),
            "version": version,
            "handler_since": _ts(since),
        }

    def write_actions(self, session: Session, cases: int) -> int:
        """Write the moves kept and a 办 (handle) entry per closed case; returns how many
        timeline rows. ``cases``: the row count the case COPY reported (its ids 1..n)."""
        top = session.scalar(text('SELECT MAX(id) FROM "case"'))
        if top != cases or self.next_id - 1 != cases:
            raise RuntimeError("the seed's case ids are not 1..n: seed an empty database")
        written = 0
        for part in self.moves:
            written += copy_columns(session, CaseAction.__table__, part)
        pg = session.get_bind().dialect.name == "postgresql"
        held = (
            "GREATEST(0, EXTRACT(EPOCH FROM c.handled_at - c.handler_since))"
            if pg
            else "MAX(0, strftime('%s', c.handled_at) - strftime('%s', c.handler_since))"
        )
        written += session.execute(
            text(
                "INSERT INTO case_action (case_id, leaf_unit_id, at, action, user_name, "
                "from_unit, from_level, from_department_id, to_unit, to_level, "
                "to_department_id, held_seconds, version) "
                "SELECT c.id, c.leaf_unit_id, c.handled_at, 'handle', 'seed', "
                "c.handling_unit_code, u.level, c.department_id, c.handling_unit_code, "
                f"u.level, c.department_id, {held}, c.version "
                'FROM "case" c JOIN admin_unit u ON u.code = c.handling_unit_code '
                "AND u.valid_to IS NULL WHERE c.handled_at IS NOT NULL"
            )
        ).rowcount
        return written


def _ts(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]").astype("datetime64[us]")
