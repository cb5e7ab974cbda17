"""One module's read: who reads, in which language, what levels it delivered, and the entry
filter a module saves turned into the main courante's one query specification."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.logbook.query import EntryQuery
from hypervision.spaces.schemas import EntryFilter

DEPRECATED = (
    "Produit de données déprécié : ses données peuvent ne plus être tenues à jour.",
    "Deprecated data product: its data may no longer be kept up to date.",
)


@dataclass(frozen=True)
class Read:
    """The audit record one of a module's reads left (the services write it on a computed
    read); a reader served a shared result leaves it again, marked ``shared`` (ADR 0047)."""

    action: str
    kind: str
    ids: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


class Reading:
    """One module's read: who reads, in which language, and the levels it delivered."""

    def __init__(
        self, session: AsyncSession, settings: Settings, actor: Principal, french: bool
    ) -> None:
        self.session, self.settings, self.actor, self.french = session, settings, actor, french
        self.levels: set[str] = set()
        self.message: str | None = None  # a note shown above the module's content
        self.measure_key = "count"  # the aggregate's column of the measure asked for
        self.reads: list[Read] = []  # the audit records of its reads, for a shared result
        self.shareable = True  # False: an unexpected failure, not to be served to others

    def read(
        self,
        action: str,
        kind: str,
        ids: Iterable[uuid.UUID | str] = (),
        labels: Iterable[str] = (),
        **detail: Any,
    ) -> None:
        """Note a read whose service wrote its audit record (replayed for shared readers)."""
        self.reads.append(
            Read(action, kind, tuple(str(i) for i in ids), tuple(sorted(set(labels))), detail)
        )

    def words(self, pair: tuple[str, str]) -> str:
        return pair[0] if self.french else pair[1]

    def saw(self, *levels: str) -> None:
        self.levels.update(levels)

    def highest(self) -> str | None:
        if not self.levels:
            return None
        return max(self.levels, key=self.settings.level_rank)


def entry_query(config: EntryFilter) -> EntryQuery:
    return EntryQuery(
        categories=tuple(config.categories),
        severities=tuple(config.severities),
        statuses=tuple(config.statuses),
        tags=tuple(config.tags),
        situations=(config.situation_id,) if config.situation_id else (),
        since=utcnow() - timedelta(hours=config.hours) if config.hours else None,
    )
