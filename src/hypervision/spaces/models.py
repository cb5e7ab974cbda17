"""Spaces: a labelled, versioned page of modules (their configuration is a JSON document)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import JsonList, Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class SpaceStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Space(Labelled, Versioned, Base):
    """A space. Who reads it: its label (level, need-to-know groups, audience organisations),
    narrowed to ``people`` when that list is not empty (the owner always stays in). Who edits
    it: its owner person, the ``editors``, and for a space owned by an organisation (no
    ``owner_user_id``) the writers of that organisation (docs/adr/0041)."""

    __tablename__ = "spaces"
    SNAPSHOT_FIELDS = (
        "title",
        "description",
        "modules",
        "people",
        "editors",
        "owner_user_id",
        "status",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str | None] = mapped_column(String(40))
    modules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    people: Mapped[list[str]] = mapped_column(JsonList)  # user ids; empty: whoever the label lets
    editors: Mapped[list[str]] = mapped_column(JsonList)  # user ids
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=SpaceStatus.ACTIVE.value, index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


# The protected kind of spaces (records/registry.py; assembled in kinds.py). Live: an open
# space reloads its layout when it changes.
SPACE_KIND = Kind("space", Space, live=True, missing=("Espace introuvable.", "Space not found."))
