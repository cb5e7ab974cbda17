"""Syntheses, their recipients and their schedules."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import JsonList, Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class SynthesisStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"
    SENT = "sent"
    SUPERSEDED = "superseded"


class Synthesis(Labelled, Versioned, Base):
    __tablename__ = "syntheses"
    SNAPSHOT_FIELDS = (
        "title",
        "status",
        "scope",
        "narrative",
        "figures",
        "entry_ids",
        "submitted_by",
        "validated_by",
        "sent_by",
        "supersedes_id",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    narrative: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    entry_ids: Mapped[list[str]] = mapped_column(JsonList)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    validated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("syntheses.id"))
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SynthesisRecipient(Base):
    __tablename__ = "synthesis_recipients"
    __table_args__ = (UniqueConstraint("synthesis_id", "user_id", name="uq_recipient"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    synthesis_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("syntheses.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    via_organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(16), default="none")
    email_error: Mapped[str | None] = mapped_column(String(300))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SynthesisSchedule(Base):
    """Recurring points de situation: drafts made automatically at fixed local times."""

    __tablename__ = "synthesis_schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    times: Mapped[list[str]] = mapped_column(JSON)  # "HH:MM", Europe/Paris
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The protected kinds of syntheses (records/registry.py; assembled in kinds.py).
SYNTHESIS_KIND = Kind(
    "synthesis", Synthesis, live=False, missing=("Synthèse introuvable.", "Synthesis not found.")
)
SYNTHESIS_RECIPIENT_KIND = Kind(
    "synthesis_recipient",
    SynthesisRecipient,
    live=False,
    parent="synthesis",
    parent_key="synthesis_id",
)
