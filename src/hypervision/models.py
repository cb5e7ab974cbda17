"""Every table of every domain, imported once so that metadata (and Alembic) sees them all."""

from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.identity.models import (
    ApiToken,
    AuthSession,
    LoginThrottle,
    NeedToKnowGroup,
    Organisation,
    RecoveryCode,
    User,
    UserGroup,
)

__all__ = [
    "ApiToken",
    "AuditHead",
    "AuditRecord",
    "AuthSession",
    "LoginThrottle",
    "NeedToKnowGroup",
    "Organisation",
    "RecoveryCode",
    "User",
    "UserGroup",
]
