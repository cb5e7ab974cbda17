"""The one query specification for reading entries: what the feed, the API, the export, the
map, the live feed's cards, the follows and the syntheses' scope ask for. Compiled to SQL for
lists (``where``) and to Python for one entry in hand (``matches``), from one list of criteria
(``hypervision.criteria``; ADR 0016). Each surface parses its own parameters into it (the
API's query parameters: ``logbook.api.entry_filters``; the web form:
``web.feed_pages.to_filter``; a synthesis' scope: ``synthesis.service.in_scope``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision import criteria as c
from hypervision.config import Settings
from hypervision.core.shapes import Area
from hypervision.identity.principal import Principal
from hypervision.logbook.models import Entry, Situation
from hypervision.policy.rules import Subject, can_see, visible_filter

SITUATION = "situation_id"


class ZoneArea(Protocol):
    """A visible zone's shape, for the ``zone`` criterion (audited as a read of the zone).
    Zones belong to ``geo``, which builds on the main courante: the application hands this
    over (``geo.zones.zone_area``, as ``app.state.zone_area``)."""

    async def __call__(
        self, *, session: AsyncSession, settings: Settings, actor: Principal, zone_id: uuid.UUID
    ) -> Area: ...


@dataclass(frozen=True)
class EntryQuery:
    """Entries matching every given criterion (an empty one does not constrain)."""

    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    organisation_id: uuid.UUID | None = None
    since: datetime | None = None  # occurred at or after
    until: datetime | None = None  # occurred strictly before
    tags: tuple[str, ...] = ()  # every one of them
    situations: tuple[uuid.UUID, ...] = ()  # linked to one of them, among those the reader sees
    bbox: c.Box | None = None  # bounding box meets it
    area: Area | None = None  # a zone: SQL narrows by its bbox, shapely decides
    originals_only: bool = False  # duplicates left out

    def criteria(self) -> list[c.Criterion]:
        found: list[c.Criterion] = []
        if self.categories:
            found.append(c.OneOf("category", self.categories))
        if self.severities:
            found.append(c.OneOf("severity", self.severities))
        if self.statuses:
            found.append(c.OneOf("status", self.statuses))
        if self.organisation_id is not None:
            found.append(c.OneOf("organisation_id", (self.organisation_id,)))
        if self.since is not None:
            found.append(c.AtOrAfter("occurred_at", self.since))
        if self.until is not None:
            found.append(c.Before("occurred_at", self.until))
        if self.tags:
            found.append(c.HasAll("tags", self.tags))
        if self.situations:
            found.append(c.VisibleRef(SITUATION, self.situations, Situation))
        if self.bbox is not None:
            found.append(c.BoxMeets(self.bbox))
        if self.area is not None:
            found.append(c.Touches(self.area))
        if self.originals_only:
            found.append(c.IsNone("duplicate_of_id"))
        return found

    # --- SQL ----------------------------------------------------------------------------------

    def where(self, *, subject: Subject, dialect: str) -> list[ColumnElement[bool]]:
        """SQL conditions on ``Entry`` (to AND). Exact unless ``exact`` is False: then keep
        only the rows for which ``residual`` is true."""
        return c.where(self.criteria(), Entry, c.Context(dialect=dialect, subject=subject))

    def apply(self, query: Select[Any], *, subject: Subject, dialect: str) -> Select[Any]:
        conditions = self.where(subject=subject, dialect=dialect)
        return query.where(*conditions) if conditions else query

    @property
    def exact(self) -> bool:
        """True when the SQL conditions alone decide (no zone)."""
        return not c.residual(self.criteria())

    def residual(self, entry: Any) -> bool:
        """What SQL only narrowed, decided on one row it returned (the zone's exact shape)."""
        return c.test(c.residual(self.criteria()), entry, c.Context())

    # --- Python -------------------------------------------------------------------------------

    def matches(self, entry: Any, *, shown_situations: Iterable[uuid.UUID] | None = None) -> bool:
        """The same criteria on one entry in hand. ``shown_situations``: the situations among
        ``situations`` that the reader may see (``shown_situations`` below, or ``can_see`` on
        the situations in hand); required when ``situations`` is set."""
        shown = {} if shown_situations is None else {SITUATION: frozenset(shown_situations)}
        return c.test(self.criteria(), entry, c.Context(shown=shown))


async def shown_situations(
    session: AsyncSession, subject: Subject, ids: Iterable[uuid.UUID]
) -> frozenset[uuid.UUID]:
    """The situations among ``ids`` that ``subject`` may see (one query; none asked: none)."""
    wanted = list(ids)
    if not wanted:
        return frozenset()
    dialect = session.get_bind().dialect.name
    query = select(Situation.id).where(
        Situation.id.in_(wanted), visible_filter(subject, Situation, dialect)
    )
    return frozenset(await session.scalars(query))


def shown_in_hand(subject: Subject, situations: Iterable[Situation]) -> frozenset[uuid.UUID]:
    """The same, for situations already loaded: the policy's Python side."""
    return frozenset(s.id for s in situations if can_see(subject, s.label))
