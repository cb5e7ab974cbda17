"""Roles and API-token scopes, and what the policy needs to know about an actor.

The policy sits below ``identity``: it names the roles and scopes it grants actions to, and
reads an actor through the ``Actor`` protocol (``identity.principal.Principal`` is one), so it
never imports the package that builds principals.
"""

from __future__ import annotations

import enum
import uuid
from typing import Protocol


class Role(enum.StrEnum):
    OFFICER = "officer"
    WATCH_OFFICER = "watch_officer"
    AUTHORITY = "authority"
    DATA_STEWARD = "data_steward"
    ADMINISTRATOR = "administrator"
    # An administrator of their own organisation only (docs/adr/0046): confirms its access
    # review; no platform-wide action (``rules.ROLE_ACTIONS``).
    ORGANISATION_ADMINISTRATOR = "organisation_administrator"
    SECURITY_OFFICER = "security_officer"


class Scope:
    """API-token scopes. A session from a password sign-in carries every scope of its user."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    AUDIT = "audit"
    MFA_ENROL = "mfa:enrol"


class Actor(Protocol):
    """Who is acting, as the policy reads them (``identity.principal.Principal``)."""

    @property
    def clearance(self) -> str | None: ...

    @property
    def groups(self) -> frozenset[str]: ...

    @property
    def roles(self) -> frozenset[str]: ...

    @property
    def organisation_id(self) -> uuid.UUID | None: ...

    @property
    def organisation_ancestry(self) -> tuple[uuid.UUID, ...]: ...

    def has_scope(self, scope: str) -> bool: ...
