"""One module's read: who reads, in which language, what levels it delivered, and the entry
filter a module saves turned into the main courante's one query specification."""

from __future__ import annotations

from datetime import timedelta

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


class Reading:
    """One module's read: who reads, in which language, and the levels it delivered."""

    def __init__(
        self, session: AsyncSession, settings: Settings, actor: Principal, french: bool
    ) -> None:
        self.session, self.settings, self.actor, self.french = session, settings, actor, french
        self.levels: set[str] = set()
        self.message: str | None = None  # a note shown above the module's content
        self.measure_key = "count"  # the aggregate's column of the measure asked for

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
