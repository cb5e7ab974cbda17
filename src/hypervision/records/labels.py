"""The columns of every protected record: a label (level, need-to-know groups, audience) and
its owner organisation."""

from __future__ import annotations

import uuid

from sqlalchemy import JSON, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.policy.labels import Label

# none_as_null: a Python None is SQL NULL (refused by NOT NULL), never a JSON null that the
# two compilations of the policy would read differently.
JsonList = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Labelled:
    """Columns of every protected record. Read only through ``policy.visible_filter``."""

    # No index of its own: two or three values only, and it misleads the SQLite planner
    # into sorting the feed instead of walking ix_entries_feed.
    label_level: Mapped[str] = mapped_column(String(16))
    need_to_know: Mapped[list[str]] = mapped_column(JsonList)  # no default: set_label or fail
    audience: Mapped[list[str]] = mapped_column(JsonList)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)  # the owner

    @property
    def label(self) -> Label:
        return Label(
            level=self.label_level,
            need_to_know=frozenset(self.need_to_know or ()),
            audience=frozenset(self.audience or ()),
            owner=str(self.organisation_id),
        )

    def set_label(self, label: Label) -> None:
        self.label_level = label.level
        self.need_to_know = sorted(label.need_to_know)
        self.audience = sorted(label.audience)
