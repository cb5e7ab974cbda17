"""The acting principal: who is calling, with what clearance, groups, roles and scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hypervision.policy.roles import Role

ALL_SCOPES = None


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID | None
    username: str
    organisation_id: uuid.UUID | None
    organisation_ancestry: tuple[uuid.UUID, ...]  # own organisation first, then its parents
    clearance: str | None
    roles: frozenset[str]
    groups: frozenset[str]
    scopes: frozenset[str] | None = ALL_SCOPES
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    surface: str = "api"
    request_id: str | None = None
    client_address: str | None = None
    csrf_token: str | None = field(default=None, repr=False)

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def can(self, role: Role, scope: str) -> bool:
        return self.has_role(role) and self.has_scope(scope)


def system_principal(name: str, surface: str = "cli") -> Principal:
    """The principal for an administrator acting on the server's command line."""
    return Principal(
        user_id=None,
        username=name[:100],
        organisation_id=None,
        organisation_ancestry=(),
        clearance=None,
        roles=frozenset({Role.ADMINISTRATOR.value}),
        groups=frozenset(),
        surface=surface,
    )
