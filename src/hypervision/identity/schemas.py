"""API shapes for identity: organisations, users, groups, sessions and tokens."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from hypervision.core.schemas import Strict, Trimmed
from hypervision.policy.roles import Role

Code = Annotated[
    str,
    Trimmed(32, min_length=2, pattern=r"^[A-Z0-9_-]+$"),
]
CategoryCode = Annotated[
    str,
    Trimmed(32, min_length=1, pattern=r"^[a-z0-9_]+$"),
]
Name = Annotated[str, Trimmed(200, min_length=1)]
Username = Annotated[
    str,
    Trimmed(64, to_lower=True, min_length=2, pattern=r"^[a-z0-9._-]+$"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Level = Annotated[str, StringConstraints(min_length=1, max_length=16)]
Reason = Annotated[str, Trimmed(500)]


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(
            f"not a network in CIDR notation (e.g. 10.0.0.0/8, 2001:db8::/32): {value[:60]}"
        ) from None


Cidr = Annotated[
    str,
    Trimmed(64, min_length=1),
    AfterValidator(_network),
]


class OrganisationCreate(Strict):
    code: Code
    name: Name
    parent_code: Code | None = None
    mfa_required: bool = Field(default=False, strict=True)  # JSON true/false only
    default_category: CategoryCode | None = None  # what its officers' new entries propose
    # whom its officers' new entries are released to by default (codes; empty: everyone)
    default_audience: list[Code] = Field(default_factory=list, max_length=50)


class OrganisationUpdate(Strict):
    """An administrator's change of an organisation's settings (absent: unchanged)."""

    default_category: CategoryCode | None = None
    default_audience: list[Code] | None = Field(default=None, max_length=50)
    # The networks its members may sign in and work from (empty: anywhere; docs/adr/0038).
    allowed_networks: list[Cidr] | None = Field(default=None, max_length=100)
    client_cert_required: bool | None = Field(default=None, strict=True)


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    parent_id: uuid.UUID | None
    mfa_required: bool
    default_category: str | None = None
    default_audience: list[str] = []


class OrganisationAdminRead(OrganisationRead):
    """An organisation as its administrators and security officers see it: with its network
    rules (docs/adr/0038), which the tree every officer reads leaves out."""

    allowed_networks: list[str] = []
    client_cert_required: bool = False


class GroupCreate(Strict):
    code: Code
    name: Name


class GroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str


class UserCreate(Strict):
    username: Username
    full_name: Name
    email: EmailStr | None = None
    organisation_code: Code
    roles: list[Role] = Field(default_factory=lambda: [Role.OFFICER], max_length=7)
    clearance: Level
    groups: list[Code] = Field(default_factory=list, max_length=50)
    password: Password | None = None
    is_machine: bool = Field(default=False, strict=True)
    reason: Reason = ""  # for the administrator who approves the rights asked for


class UserUpdate(Strict):
    full_name: Name | None = None
    email: EmailStr | None = None
    roles: list[Role] | None = Field(default=None, max_length=7)
    groups: list[Code] | None = Field(default=None, max_length=50)
    reason: Reason = ""  # for the administrator who approves a widening


class ClearanceUpdate(Strict):
    clearance: Level
    reason: Reason = ""


class UserRead(BaseModel):
    id: uuid.UUID
    username: str
    full_name: str
    email: str | None
    organisation_id: uuid.UUID
    organisation_code: str
    roles: list[str]
    clearance: str
    groups: list[str]
    is_active: bool
    is_machine: bool
    mfa_enabled: bool
    created_at: datetime


class RightsState(BaseModel):
    roles: list[str]
    clearance: str
    groups: list[str]
    is_active: bool


class RightsRequestRead(BaseModel):
    """A widening of a user's rights waiting for (or decided by) a second administrator."""

    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    requested_by: str
    requested_at: datetime
    reason: str
    basis: RightsState  # the user's rights when asked; approval needs them unchanged
    target: RightsState  # their rights once approved
    added_roles: list[str]
    added_groups: list[str]
    status: str
    decided_by: str | None
    decided_at: datetime | None


class UserCreated(UserRead):
    rights_request: RightsRequestRead | None = None


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth 2 token type
    expires_at: datetime
    mfa_enrolment_required: bool = False


class LoginResponse(BaseModel):
    username: str
    csrf_token: str
    expires_at: datetime
    mfa_enrolment_required: bool = False


class PasswordChange(Strict):
    current_password: Password
    new_password: Password


class MfaEnrolment(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class MfaConfirm(Strict):
    otp: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class ApiTokenCreate(Strict):
    name: Annotated[str, Trimmed(100, min_length=1)]
    username: Username
    scopes: list[Annotated[str, StringConstraints(pattern=r"^(read|write|admin|audit)$")]] = Field(
        min_length=1, max_length=4
    )
    expires_in_days: int = Field(default=90, ge=1, le=3650, strict=True)


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    user_id: uuid.UUID
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenRead):
    token: str


class Me(BaseModel):
    username: str
    organisation_id: uuid.UUID | None
    roles: list[str]
    clearance: str | None
    groups: list[str]
    scopes: list[str] | None


# --- access review (docs/adr/0038) ----------------------------------------------------------


class ReviewedAccount(BaseModel):
    """One account of an organisation as the access review shows it."""

    id: uuid.UUID
    username: str
    full_name: str
    is_active: bool
    is_machine: bool
    roles: list[str]
    clearance: str
    groups: list[str]
    mfa_enabled: bool
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None
    last_activity_at: datetime  # the latest sign-in, request or token use; else its creation
    dormant: bool


class AccessReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    organisation_id: uuid.UUID
    confirmed_by: uuid.UUID | None
    confirmed_by_name: str
    confirmed_at: datetime
    checksum: str
    note: str


class AccessReviewReport(BaseModel):
    organisation_code: str
    organisation_name: str
    generated_at: datetime
    dormant_after_days: int  # 0: dormant accounts are not disabled
    accounts: list[ReviewedAccount]
    # SHA-256 of who holds what (not of when they were last seen): what a confirmation names.
    checksum: str
    last_review: AccessReviewRead | None


class AccessReviewConfirm(Strict):
    checksum: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    note: Reason = ""
