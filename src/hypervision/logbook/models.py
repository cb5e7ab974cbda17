"""Main courante tables: entries, situations, comments, attachments, label requests."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import JsonList, Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class Severity(enum.StrEnum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


SEVERITY_ORDER = list(Severity)


class Status(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class Entry(Labelled, Versioned, Base):
    __tablename__ = "entries"
    SNAPSHOT_FIELDS = (
        "occurred_at",
        "category",
        "severity",
        "status",
        "title",
        "body",
        "location",
        "tags",
        "situation_id",
        "duplicate_of_id",
        "follow_up_of_id",
        "validated_at",
        "validated_by",
        *LABEL_FIELDS,
    )
    __table_args__ = (
        Index("ix_entries_feed", "recorded_at", "id"),
        Index("ix_entries_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    min_lon: Mapped[float | None] = mapped_column(Float)
    min_lat: Mapped[float | None] = mapped_column(Float)
    max_lon: Mapped[float | None] = mapped_column(Float)
    max_lat: Mapped[float | None] = mapped_column(Float)
    tags: Mapped[list[str]] = mapped_column(JsonList, default=list)
    situation_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("situations.id"), index=True
    )
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("entries.id"))
    follow_up_of_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("entries.id"))
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    validated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class Situation(Labelled, Versioned, Base):
    __tablename__ = "situations"
    SNAPSHOT_FIELDS = (
        "title",
        "description",
        "severity",
        "status",
        "started_at",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class Comment(Labelled, Base):
    """Visible when both the comment's label and its entry's label allow it."""

    __tablename__ = "comments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("entries.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A file on an entry: visible exactly when its entry is. The bytes live in a blob store
    under a random key; only metadata is here."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("entries.id", ondelete="CASCADE"), index=True
    )
    uploaded_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class LabelChangeRequest(Base):
    """A lowering of a label waiting for a second person's approval (four eyes)."""

    __tablename__ = "label_change_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    label: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=LabelRequestStatus.PENDING.value)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The protected kinds of the main courante (records/registry.py; assembled in kinds.py).
ENTRY_KIND = Kind("entry", Entry, live=True, missing=("Entrée introuvable.", "Entry not found."))
SITUATION_KIND = Kind(
    "situation", Situation, live=True, missing=("Situation introuvable.", "Situation not found.")
)
COMMENT_KIND = Kind(
    "comment",
    Comment,
    live=True,
    parent="entry",
    parent_key="entry_id",
    missing=("Commentaire introuvable.", "Comment not found."),
)
ATTACHMENT_KIND = Kind(
    "attachment",
    Attachment,
    live=True,
    parent="entry",
    parent_key="entry_id",
    missing=("Pièce jointe introuvable.", "Attachment not found."),
)


class MapSignature(Labelled, Base):
    """A label signature of located entries: the label columns the policy reads (level,
    need-to-know, audience, owner organisation). Its id is derived from them
    (``cells.Signature.id``). Under row-level security like the entries it stands for."""

    __tablename__ = "map_signatures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class MapCell(Base):
    """How many located entries of one signature have their centre in one grid cell, by
    severity and status, with the sums of their centres (``logbook/cells.py``). Visible with its
    signature."""

    __tablename__ = "map_cells"

    grid: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # the grid's zoom
    gx: Mapped[int] = mapped_column(Integer, primary_key=True)
    gy: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("map_signatures.id"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer)  # every entry, whatever its severity and status
    n_info_open: Mapped[int] = mapped_column(Integer)
    n_info_in_progress: Mapped[int] = mapped_column(Integer)
    n_info_closed: Mapped[int] = mapped_column(Integer)
    n_minor_open: Mapped[int] = mapped_column(Integer)
    n_minor_in_progress: Mapped[int] = mapped_column(Integer)
    n_minor_closed: Mapped[int] = mapped_column(Integer)
    n_major_open: Mapped[int] = mapped_column(Integer)
    n_major_in_progress: Mapped[int] = mapped_column(Integer)
    n_major_closed: Mapped[int] = mapped_column(Integer)
    n_critical_open: Mapped[int] = mapped_column(Integer)
    n_critical_in_progress: Mapped[int] = mapped_column(Integer)
    n_critical_closed: Mapped[int] = mapped_column(Integer)
    sum_lon: Mapped[float] = mapped_column(Float)  # of the entries' centres
    sum_lat: Mapped[float] = mapped_column(Float)
