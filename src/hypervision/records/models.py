"""The versions of every versioned record (one table for every kind)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import JsonList

# The label's columns, last in every snapshot: a version is checked against the label it had.
LABEL_FIELDS = ("label_level", "need_to_know", "audience", "organisation_id")


class RecordVersion(Base):
    """Every version of a versioned record (entry, situation, zone, layer, synthesis): who,
    when, which action, what changed, and the full state with its label at that time (each
    version is checked against its label)."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    label_level: Mapped[str] = mapped_column(String(16))
    need_to_know: Mapped[list[str]] = mapped_column(JsonList)
    audience: Mapped[list[str]] = mapped_column(JsonList)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class Versioned:
    """A record kept with every version of it (``records.versions.record_change``). Each model
    declares the fields its versions keep: their diff is the history shown to readers, and
    an update that changes none of them writes no version."""

    SNAPSHOT_FIELDS: ClassVar[tuple[str, ...]]
