"""API shapes of the hub: duty assignments, shared documents, announcements."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, EmailStr, Field

from hypervision.core.schemas import Instant, Strict, Trimmed
from hypervision.hub.models import DocumentStatus, Importance
from hypervision.records.schemas import Code, LabelIn, LabelRead

PHONE = re.compile(r"\+?[0-9][0-9 .()\-]{2,23}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LONGEST_SHIFT_HOURS = 7 * 24


def _phone(value: str) -> str:
    if value and (PHONE.fullmatch(value) is None or sum(c.isdigit() for c in value) < 3):
        raise ValueError("a phone number: digits, spaces, dots, dashes, brackets, a leading +")
    return value


def _one_line(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("one line of text, without control characters")
    return value


Line = Annotated[
    str,
    Trimmed(120),
    AfterValidator(_one_line),
]
Required = Annotated[
    str,
    Trimmed(120, min_length=1),
    AfterValidator(_one_line),
]
Phone = Annotated[
    str,
    Trimmed(40),
    AfterValidator(_phone),
]
Radio = Annotated[
    str,
    Trimmed(60),
    AfterValidator(_one_line),
]
Note = Annotated[str, Trimmed(2_000)]
Title = Annotated[
    str,
    Trimmed(200, min_length=1),
    AfterValidator(_one_line),
]
Description = Annotated[str, Trimmed(5_000)]
Body = Annotated[str, Trimmed(20_000)]
Username = Annotated[str, Trimmed(100, min_length=1)]


# --- the crisis directory --------------------------------------------------------------------


class DutyCreate(Strict):
    """One person on duty: an account (``username``) or a name typed in (``person_name``)."""

    username: Username | None = None
    person_name: Line = ""
    organisation: Code = Field(description="the organisation represented (its code)")
    room: Required = Field(description="room or place, e.g. Salle CNCS")
    function: Line = ""
    phone: Phone = ""
    radio: Radio = ""
    email: EmailStr | None = None
    starts_at: Instant
    ends_at: Instant
    note: Note = ""


class DutyUpdate(Strict):
    person_name: Line | None = None
    organisation: Code | None = None
    room: Required | None = None
    function: Line | None = None
    phone: Phone | None = None
    radio: Radio | None = None
    email: EmailStr | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    note: Note | None = None


class DutyRead(BaseModel):
    id: uuid.UUID
    person: str
    username: str | None
    organisation: str
    room: str
    function: str
    phone: str
    radio: str
    email: str
    starts_at: datetime
    ends_at: datetime
    on_duty: bool
    note: str
    version: int
    updated_at: datetime


class DutyPage(BaseModel):
    items: list[DutyRead]
    next_offset: int | None = Field(description="offset of the next page; null on the last")


# --- shared documents --------------------------------------------------------------------------


class DocumentUpdate(Strict):
    title: Title | None = None
    description: Description | None = None
    status: DocumentStatus | None = None


class DocumentRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    filename: str
    content_type: str
    size: int
    sha256: str
    status: DocumentStatus
    organisation: str
    author: str
    label: LabelRead
    version: int
    created_at: datetime
    updated_at: datetime
    download: str = Field(description="the file's URL")


class DocumentPage(BaseModel):
    items: list[DocumentRead]
    next_offset: int | None


# --- announcements ---------------------------------------------------------------------------


class AnnouncementCreate(Strict):
    title: Title
    body: Body = Field(default="", description="Markdown (sanitised when shown)")
    importance: Importance = Importance.INFO
    starts_at: Instant | None = Field(default=None, description="default: now")
    ends_at: Instant | None = Field(default=None, description="null: until withdrawn")
    label: LabelIn | None = None


class AnnouncementUpdate(Strict):
    title: Title | None = None
    body: Body | None = None
    importance: Importance | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None


class AnnouncementRead(BaseModel):
    id: uuid.UUID
    title: str
    body: str
    body_html: str
    importance: Importance
    starts_at: datetime
    ends_at: datetime | None
    shown: bool = Field(description="displayed now (started, not ended)")
    organisation: str
    author: str
    label: LabelRead
    version: int
    created_at: datetime


class AnnouncementPage(BaseModel):
    items: list[AnnouncementRead]
    next_offset: int | None


class DocumentCreateForm(Strict):
    """The fields sent with a document's file (multipart)."""

    title: Title
    description: Description = ""
    label: LabelIn | None = None
