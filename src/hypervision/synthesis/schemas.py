"""API shapes of syntheses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from hypervision.core.schemas import Instant, Strict, Trimmed
from hypervision.logbook.models import Severity
from hypervision.logbook.schemas import EntryRead
from hypervision.records.schemas import LabelIn, LabelRead

Title = Annotated[str, Trimmed(200, min_length=1)]
Narrative = Annotated[str, StringConstraints(max_length=50_000)]
HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
MAX_ENTRIES = 300


class Scope(Strict):
    """What a synthesis covers: a time window and optional criteria."""

    since: Instant | None = None
    until: Instant | None = None
    hours: int | None = Field(
        default=None, ge=1, le=24 * 31, strict=True
    )  # instead of since: the last N h
    situations: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    categories: list[str] = Field(default_factory=list, max_length=20)
    zone: uuid.UUID | None = None
    min_severity: Severity = Severity.INFO


class SynthesisDraft(Strict):
    title: Title
    scope: Scope = Field(default_factory=Scope)
    narrative: Narrative | None = None


class SynthesisUpdate(Strict):
    title: Title | None = None
    narrative: Narrative | None = None
    entry_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_ENTRIES)
    label: LabelIn | None = None  # only to raise it above what the content requires


class Recipients(Strict):
    users: list[str] = Field(default_factory=list, max_length=200)  # usernames
    organisations: list[str] = Field(default_factory=list, max_length=50)  # codes


class SynthesisRead(BaseModel):
    id: uuid.UUID
    title: str
    status: str
    scope: dict[str, Any]
    narrative: str
    narrative_html: str
    figures: dict[str, Any]  # over the entries the reader may see (ADR 0012)
    entry_ids: list[uuid.UUID]  # only those the reader may see
    redacted: bool = False  # parts are hidden from this reader (never says how many)
    author: str
    author_name: str  # the author's display name (``author`` is the login)
    organisation: str
    label: LabelRead
    marking: str | None
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    validated_by: str | None
    validated_at: datetime | None
    sent_by: str | None
    sent_at: datetime | None
    supersedes_id: uuid.UUID | None
    version: int


class SynthesisFull(SynthesisRead):
    entries: list[EntryRead]


class InboxItem(BaseModel):
    synthesis: SynthesisRead
    delivered_at: datetime
    acknowledged_at: datetime | None


class ScheduleCreate(Strict):
    name: Annotated[str, Trimmed(120, min_length=1)]
    times: list[HourMinute] = Field(min_length=1, max_length=12)
    scope: Scope = Field(default_factory=Scope)


class ScheduleRead(BaseModel):
    id: uuid.UUID
    name: str
    times: list[str]
    scope: dict[str, Any]
    active: bool
    last_run_at: datetime | None
