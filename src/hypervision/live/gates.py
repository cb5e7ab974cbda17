"""The hub's gate: who may receive the events reserved to a role rather than to a label.

One place decides it for both streams of the security console: the security alerts (their
events carry ``SECURITY`` in their label, ``alerts.service``) and the audit topic
(``live.audit_feed``). The hub checks it on every event and replay, at subscription, and the
audit stream's endpoint asks it before opening (``require``): a role and its scope, failing
closed on anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypervision.core.errors import Forbidden
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role, Scope

# The topic whose events are all under ``SECURITY`` (``alerts.service``): a stream asking for
# it alone may be opened by a security officer, who reads no records.
ALERT_TOPIC = "security_alert"

# Security officers acting with the audit scope (a session, or a token carrying it).
SECURITY: Mapping[str, str] = {"role": Role.SECURITY_OFFICER.value, "scope": Scope.AUDIT}


def passes(principal: Principal, gate: Mapping[str, Any]) -> bool:
    """Whether ``principal`` may receive an event under ``gate`` (fails closed)."""
    try:
        role = Role(str(gate.get("role")))
    except ValueError:
        return False
    return principal.can(role, str(gate.get("scope")))


def require(principal: Principal, gate: Mapping[str, Any]) -> None:
    """403 unless ``principal`` passes ``gate``."""
    if not passes(principal, gate):
        raise Forbidden(
            "Ce flux est réservé aux officiers de sécurité (droit d'audit).",
            "This stream is for security officers (the audit right).",
        )
