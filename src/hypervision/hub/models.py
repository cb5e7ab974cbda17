"""The hub's tables: duty assignments (the crisis directory), shared documents and
announcements. Documents and announcements are protected kinds (labelled, versioned); the
directory is not labelled (docs/adr/0042: who answers for whom must reach every officer)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class Importance(enum.StrEnum):
    INFO = "info"
    IMPORTANT = "important"
    URGENT = "urgent"


class DocumentStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class DutyAssignment(Base):
    """Who represents which organisation in which room, reachable how, on which shift. A
    person with an account (``user_id``) or a name typed in (``person_name``)."""

    __tablename__ = "duty_assignments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    person_name: Mapped[str] = mapped_column(String(120), default="")
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organisations.id"), index=True
    )
    room: Mapped[str] = mapped_column(String(120))
    function: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    radio: Mapped[str] = mapped_column(String(60), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class HubDocument(Labelled, Versioned, Base):
    """A shared document: a file in the blob store (the attachments' checks) with a title,
    a description and a label."""

    __tablename__ = "hub_documents"
    SNAPSHOT_FIELDS = ("title", "description", "filename", "sha256", "status", *LABEL_FIELDS)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.ACTIVE.value)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Announcement(Labelled, Versioned, Base):
    """An announcement of the CNCS: shown on the hub between ``starts_at`` and ``ends_at``
    (open-ended when None) to the readers its label allows."""

    __tablename__ = "announcements"
    SNAPSHOT_FIELDS = ("title", "body", "importance", "starts_at", "ends_at", *LABEL_FIELDS)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised when shown
    importance: Mapped[str] = mapped_column(String(16), default=Importance.INFO.value)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


# The hub's protected kinds (records/registry.py; assembled in kinds.py). Announcements are a
# live topic: an open hub shows a new one without a reload (docs/adr/0042).
DOCUMENT_KIND = Kind(
    "hub_document",
    HubDocument,
    live=False,
    missing=("Document introuvable.", "Document not found."),
)
ANNOUNCEMENT_KIND = Kind(
    "announcement",
    Announcement,
    live=True,
    missing=("Annonce introuvable.", "Announcement not found."),
)
