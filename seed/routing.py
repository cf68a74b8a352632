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
from api.engine import DESK, rebuild
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
        found = session.execute(select(Department.id, Department.unit_code, Department.kind))
        departments = {(u, k): i for i, u, k in found}
        self.kinds = {i: k for (_, k), i in departments.items()}
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
        # 受理: the first handler accepts a case it worked (scheduled, closed) or escalated, a tenth
        # of the way to its next step; the town accepts what was escalated to it before it
        # dispatches (or closes) it, the department what was dispatched to it
        scheduled = chunk["scheduled_at"].astype("datetime64[s]").astype(np.int64)
        was_scheduled = ~np.isnat(chunk["scheduled_at"])
        acc0 = esc | was_scheduled | closed
        first_next = np.where(esc, t_esc, np.where(was_scheduled, scheduled, until))
        t_acc0 = received + ((first_next - received) * 0.1).astype(np.int64)
        t_acct = t_esc + ((np.where(disp, t_disp, until) - t_esc) * 0.2).astype(np.int64)
        t_accd = t_disp + ((np.where(ret, t_ret, until) - t_disp) * 0.2).astype(np.int64)
        town = self.town[g]
        final_code = np.where(esc, town, code)
        final_dept = np.where(disp & ~ret, self.dispatch_dept[g, c], np.where(esc, -1, dept))
        since = np.where(ret, t_ret, np.where(disp, t_disp, np.where(esc, t_esc, received)))
        accepted = np.where(
            ret, -1, np.where(disp, t_accd, np.where(esc, t_acct, np.where(acc0, t_acc0, -1)))
        )
        one = np.int64(1)
        v_acc0 = one + acc0
        v_esc = v_acc0 + esc
        v_acct = v_esc + esc
        v_disp = v_acct + disp
        v_accd = v_disp + disp
        v_ret = v_accd + ret
        leaf = chunk["leaf_unit_id"]
        depts = self.dispatch_dept[g, c]
        here = (code, level, dept)
        at_town = (town, "town", -1)
        with_dept = (town, "town", depts)
        for mask, action, at, frm, to, held, wait, v in (
            (acc0, "accept", t_acc0, here, here, None, t_acc0 - received, v_acc0),
            (esc, "escalate", t_esc, here, at_town, t_esc - received, None, v_esc),
            (esc, "accept", t_acct, at_town, at_town, None, t_acct - t_esc, v_acct),
            (disp, "dispatch", t_disp, at_town, with_dept, t_disp - t_esc, t_disp - t_acct,
             v_disp),
            (disp, "accept", t_accd, with_dept, with_dept, None, t_accd - t_disp, v_accd),
            (ret, "return", t_ret, with_dept, at_town, t_ret - t_disp, None, v_ret),
        ):  # fmt: skip
            if mask.any():
                self.moves.append(
                    self._entries(mask, leaf, ids, action, at, frm, to, held, wait, v)
                )
        return chunk | {
            "handling_unit_code": final_code.astype(object),
            "department_id": np.ma.masked_less(final_dept.astype(np.int64), 0),
            "version": v_ret,
            "handler_since": _ts(since),
            "accepted_at": np.where(accepted < 0, NAT, _ts(np.maximum(accepted, 0))),
        }

    def _entries(self, mask, leaf, ids, action, at, frm, to, held, wait, version) -> dict:
        """The timeline columns of ``action`` for the cases of ``mask``."""
        n = len(mask)
        count = int(mask.sum())

        def side(unit) -> dict[str, np.ndarray]:
            levels = np.broadcast_to(unit[1], n)[mask].astype(object)
            depts = np.broadcast_to(unit[2], n)[mask].astype(np.int64)
            kinds = self.kind_of(depts)
            plain = levels.astype(str)
            nodes = np.where(
                kinds == "", np.char.add("level:", plain),
                np.char.add(np.char.add(np.char.add("dept:", plain), ":"), kinds),
            ).astype(object)  # fmt: skip
            codes = np.broadcast_to(unit[0], n)[mask].astype(object)
            return {"unit": codes, "level": levels, "dept": np.ma.masked_less(depts, 0),
                    "node": nodes}  # fmt: skip

        f, t = side(frm), side(to)

        def seconds(values) -> np.ndarray:
            if values is None:
                return np.full(count, np.nan)
            return np.asarray(values)[mask].astype(np.float64)

        return {
            "case_id": ids[mask],
            "leaf_unit_id": leaf[mask],
            "at": _ts(at[mask]),
            "action": np.full(count, action, dtype=object),
            "user_name": np.full(count, "seed", dtype=object),
            "from_unit": f["unit"],
            "from_level": f["level"],
            "from_department_id": f["dept"],
            "to_unit": t["unit"],
            "to_level": t["level"],
            "to_department_id": t["dept"],
            "held_seconds": seconds(held),
            "wait_seconds": seconds(wait),
            "version": np.asarray(version)[mask].astype(np.int64),
            "from_node": f["node"],
            "to_node": t["node"],
        }

    def kind_of(self, departments: np.ndarray) -> np.ndarray:
        """The kind of each department id ('' for none, −1)."""
        ids = np.array(list(self.kinds) or [0], dtype=np.int64)
        names = np.array(list(self.kinds.values()) or [""], dtype=object)
        order = np.argsort(ids)
        pos = np.clip(np.searchsorted(ids[order], departments), 0, len(ids) - 1)
        found = ids[order][pos] == departments
        return np.where(found, names[order][pos], "").astype(str)

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
        node = (
            "CASE WHEN d.kind IS NULL THEN 'level:' || u.level "
            "ELSE 'dept:' || u.level || ':' || d.kind END"
        )
        written += session.execute(
            text(
                "INSERT INTO case_action (case_id, leaf_unit_id, at, action, user_name, "
                "from_unit, from_level, from_department_id, to_unit, to_level, "
                "to_department_id, held_seconds, version, from_node, to_node) "
                "SELECT c.id, c.leaf_unit_id, c.handled_at, 'handle', 'seed', "
                "c.handling_unit_code, u.level, c.department_id, c.handling_unit_code, "
                f"u.level, c.department_id, {held}, c.version, {node}, {node} "
                'FROM "case" c JOIN admin_unit u ON u.code = c.handling_unit_code '
                "AND u.valid_to IS NULL LEFT JOIN department d ON d.id = c.department_id "
                "WHERE c.handled_at IS NOT NULL"
            )
        ).rowcount
        rebuild(session, DESK)  # the desk's rollups, as every action keeps them
        return written


def _ts(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]").astype("datetime64[us]")
