"""Who a request acts as: the roles and the principal (a user, its role and its home unit).

A plain value every layer may name (the engine checks scope with it, the services audit
it); how a principal is found from a token or a session is ``api.services.auth``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = (
    "admin",
    "official",
    "village_worker",
    "department",
    "analyst",
    "display",
    "intake",
    "assessor",
)
READ_ROLES = frozenset({"admin", "official", "village_worker", "department", "analyst", "display"})
WRITE_ROLES = frozenset({"admin", "intake"})
# A wall display shows figures and maps, never lists of cases.
CASE_LIST_ROLES = READ_ROLES - {"display"}
# The stability-risk register: who registers items and decides (admin, official); an
# assessor (评估机构) reads and reports on the items assigned to its agency only.
RISK_WRITE_ROLES = frozenset({"admin", "official"})
RISK_READ_ROLES = frozenset({"admin", "official", "analyst", "assessor"})
# A permission beyond the role (table user_permission): special-population figures.
SPECIAL_POPULATIONS = "special_populations"
PERMISSIONS = (SPECIAL_POPULATIONS,)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, its role and its home unit (root of what it sees)."""

    user_id: int
    name: str
    role: str
    unit_code: str
    via: str = "token"  # token | session
    token_id: int | None = None
    permissions: frozenset[str] = frozenset()  # beyond the role: special_populations

    @property
    def can_read_special_populations(self) -> bool:
        """Special-population figures need their own permission (any reading role)."""
        return self.can_read and SPECIAL_POPULATIONS in self.permissions

    @property
    def can_read(self) -> bool:
        return self.role in READ_ROLES

    @property
    def can_write_cases(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def can_list_cases(self) -> bool:
        return self.role in CASE_LIST_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
