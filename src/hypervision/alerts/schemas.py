"""What a security officer writes: one rule per kind, each with only the fields its kind
reads, validated by Pydantic (a malformed rule is answered 422 naming the field)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
State = Literal["new", "acknowledged", "closed"]
STATES: tuple[str, ...] = ("new", "acknowledged", "closed")
Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    severity: Severity = "medium"
    enabled: bool = True
    window_minutes: int = Field(
        default=15, ge=1, le=1440, description="The window counted, and merged into one alert."
    )
    email: bool = Field(
        default=False,
        description="Mail its alerts to the security officers who subscribed (never content).",
    )


class _Counted(_Rule):
    threshold: int = Field(ge=1, le=1_000_000, description="Alert when more than this.")


class BulkReads(_Counted):
    """More than ``threshold`` distinct protected records read by one person in the window."""

    kind: Literal["bulk_reads"]


class IdProbing(_Counted):
    """More than ``threshold`` refusals or unknown ids on protected surfaces in the window."""

    kind: Literal["id_probing"]
    by: Literal["person", "address"] = "person"


class Exports(_Counted):
    """Exports by one person above ``threshold`` rows (or exports) in the window."""

    kind: Literal["exports"]
    measure: Literal["rows", "count"] = "rows"


class MfaFailures(_Counted):
    """More than ``threshold`` wrong second-factor codes for one account in the window."""

    kind: Literal["mfa_failures"]


class SignInOffHours(_Rule):
    """A sign-in outside ``start``–``end``, local time of ``timezone`` (Europe/Paris)."""

    kind: Literal["sign_in_off_hours"]
    start: Clock = "07:00"
    end: Clock = "21:00"

    @field_validator("end")
    @classmethod
    def _range(cls, end: str, info: ValidationInfo) -> str:
        if end == info.data.get("start", "07:00"):
            raise ValueError("must differ from start")
        return end


class SignInNewAddress(_Rule):
    """A sign-in from an address the account has not used in the last ``days`` days."""

    kind: Literal["sign_in_new_address"]
    days: int = Field(default=30, ge=1, le=365)


class SignInNewCountry(_Rule):
    """A sign-in from a country (the operator's address ranges, ``ip_country_file``) the
    account has not signed in from in the last ``days`` days."""

    kind: Literal["sign_in_new_country"]
    days: int = Field(default=90, ge=1, le=365)


class NetworkRefused(_Rule):
    """Connections refused upstream (outside the organisation's networks, or without the
    client certificate it requires): more than ``threshold`` (0: each) in the window, by
    account or by address."""

    kind: Literal["network_refused"]
    threshold: int = Field(default=0, ge=0, le=1_000_000, description="Alert when more than this.")
    by: Literal["person", "address"] = "address"


class SocExportFailing(_Rule):
    """The export to the SOC failing past its threshold of consecutive failures."""

    kind: Literal["soc_export_failing"]


class RightsWidened(_Rule):
    """A role, a higher clearance or a need-to-know group given to someone."""

    kind: Literal["rights_widened"]


class LabelLowered(_Rule):
    """A record's label changed to a lower level."""

    kind: Literal["label_lowered"]


class AuditVerifyFailed(_Rule):
    """``audit verify`` found the trail broken."""

    kind: Literal["audit_verify_failed"]


AlertRuleWrite = Annotated[
    BulkReads
    | IdProbing
    | Exports
    | MfaFailures
    | SignInOffHours
    | SignInNewAddress
    | SignInNewCountry
    | NetworkRefused
    | SocExportFailing
    | RightsWidened
    | LabelLowered
    | AuditVerifyFailed,
    Field(discriminator="kind"),
]
RULE_ADAPTER: TypeAdapter[AlertRuleWrite] = TypeAdapter(AlertRuleWrite)
COMMON = frozenset({"name", "severity", "enabled", "kind"})


def params_of(rule: BaseModel) -> dict[str, Any]:
    return rule.model_dump(exclude=set(COMMON))


class AlertRuleRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    severity: str
    enabled: bool
    params: dict[str, Any]
    version: int
    updated_at: datetime
    updated_by: str


class CitedRecord(BaseModel):
    seq: int
    id: uuid.UUID


class AlertNote(BaseModel):
    at: datetime
    by: str
    to: str
    note: str


class AlertRead(BaseModel):
    id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str
    kind: str
    severity: str
    state: str
    subject_kind: str
    subject_key: str
    subject_name: str
    measure: int
    record_count: int
    records: list[CitedRecord]
    first_at: datetime
    last_at: datetime
    created_at: datetime
    notes: list[AlertNote]
    version: int


class AlertPage(BaseModel):
    items: list[AlertRead]
    total: int


class MailSubscription(BaseModel):
    """A security officer's e-mail subscription: ``enabled`` receives the alerts of the rules
    marked ``email``; ``min_severity`` also every alert at least that severe."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    min_severity: Severity | None = None


class AlertTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["acknowledged", "closed"]
    note: str = Field(default="", max_length=2000)


MODELS: dict[str, type[_Rule]] = {
    "bulk_reads": BulkReads,
    "id_probing": IdProbing,
    "exports": Exports,
    "mfa_failures": MfaFailures,
    "sign_in_off_hours": SignInOffHours,
    "sign_in_new_address": SignInNewAddress,
    "sign_in_new_country": SignInNewCountry,
    "network_refused": NetworkRefused,
    "soc_export_failing": SocExportFailing,
    "rights_widened": RightsWidened,
    "label_lowered": LabelLowered,
    "audit_verify_failed": AuditVerifyFailed,
}
