"""What follows are about, and what a page's frame needs to know of its officer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class FollowKind(enum.StrEnum):
    CATEGORY = "category"
    SITUATION = "situation"
    ZONE = "zone"
    ENTRY = "entry"


@dataclass(frozen=True)
class Personal:
    """The officer's own settings a page shows in its frame (name, organisation, language,
    guided tour, followed topics, unseen notifications)."""

    full_name: str
    organisation: str
    locale: str | None
    tour_pending: bool
    follow_categories: list[str] = field(default_factory=list)
    follow_situations: list[str] = field(default_factory=list)
    follow_entries: list[str] = field(default_factory=list)
    badge: int = 0
