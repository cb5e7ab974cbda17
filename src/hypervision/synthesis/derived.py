"""A synthesis as one reader may see it now (ADR 0012, SECURITY.md 31).

What a synthesis stored when it was drafted — the ids of its entries and the key figures
computed from them (counts, the titles of the critical ones) — is never shown as stored to a
reader who may no longer see every one of those entries (raised since, or the reader's
clearance lowered). At read time, for each reader, the sources are selected again through the
one policy (``entries.visible``, the SQL filter) and everything derived from a source they may
not see is left out: its id, its entry, its point on the map, and the figures, recomputed over
what the reader still sees. References are protected like their targets: the situations and
the zone of its scope, and the synthesis it corrects, are named only to readers who may see
them. The stored synthesis (the document that was sent) never changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.geo.models import Zone
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.models import Entry, Situation
from hypervision.policy.rules import visible_filter
from hypervision.records.access import dialect_of, subject_of
from hypervision.synthesis import key_figures
from hypervision.synthesis.access import visible_syntheses
from hypervision.synthesis.models import Synthesis

CHUNK = 500  # ids per IN (…): well under SQLite's and asyncpg's bound-parameter limits


@dataclass(frozen=True)
class ReaderView:
    """The parts of one synthesis that one reader may see."""

    entries: list[Entry]  # in the synthesis's order
    figures: dict[str, Any]
    redacted: bool  # some source is hidden from this reader: say so (never how many)
    scope: dict[str, Any]  # without the situations and zone the reader may not see
    supersedes_id: uuid.UUID | None  # None when the reader may not see the one corrected

    @property
    def entry_ids(self) -> list[uuid.UUID]:
        return [e.id for e in self.entries]


async def visible_sources(
    session: AsyncSession, settings: Settings, actor: Principal, ids: Iterable[str]
) -> dict[str, Entry]:
    """The entries among ``ids`` that ``actor`` may see, by id (as stored: a string)."""
    wanted = sorted({uuid.UUID(i) for i in ids})
    found: dict[str, Entry] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = await session.scalars(
            visible(session, settings, actor).where(Entry.id.in_(wanted[start : start + CHUNK]))
        )
        found.update((str(e.id), e) for e in rows)
    return found


def view_of(synthesis: Synthesis, sources: dict[str, Entry], known: set[str]) -> ReaderView:
    """``synthesis`` cut down to ``sources`` (the entries the reader may see, by id) and to
    ``known`` (the other records it refers to that the reader may see). Whole, it shows its
    figures as they were sent; cut, the figures are those of what is left, as it is now."""
    scope = dict(synthesis.scope)
    if scope.get("situations"):
        scope["situations"] = [i for i in scope["situations"] if i in known]
    if scope.get("zone") and scope["zone"] not in known:
        del scope["zone"]
    corrects = synthesis.supersedes_id
    supersedes = corrects if corrects is not None and str(corrects) in known else None
    entries = [sources[i] for i in synthesis.entry_ids if i in sources]
    if len(entries) == len(synthesis.entry_ids):
        return ReaderView(entries, synthesis.figures, False, scope, supersedes)
    since, _ = key_figures.window(synthesis.scope, synthesis.created_at)
    return ReaderView(entries, key_figures.of(entries, since), True, scope, supersedes)


async def views(
    session: AsyncSession, settings: Settings, actor: Principal, rows: Sequence[Synthesis]
) -> dict[uuid.UUID, ReaderView]:
    """Each synthesis of ``rows`` as ``actor`` may see it (a query per kind of record
    referred to, per 500 ids)."""
    sources = await visible_sources(
        session, settings, actor, (i for s in rows for i in s.entry_ids)
    )
    situations = {i for s in rows for i in s.scope.get("situations") or ()}
    zones = {s.scope["zone"] for s in rows if s.scope.get("zone")}
    corrected = {str(s.supersedes_id) for s in rows if s.supersedes_id is not None}
    subject, dialect = subject_of(settings, actor), dialect_of(session)
    known = await _known(
        session, situations, lambda ids: select(Situation.id).where(
            visible_filter(subject, Situation, dialect), Situation.id.in_(ids)
        ),
    )  # fmt: skip
    known |= await _known(
        session, zones, lambda ids: select(Zone.id).where(
            visible_filter(subject, Zone, dialect), Zone.id.in_(ids)
        ),
    )  # fmt: skip
    known |= await _known(
        session, corrected, lambda ids: visible_syntheses(session, settings, actor)
        .where(Synthesis.id.in_(ids)).with_only_columns(Synthesis.id),
    )  # fmt: skip
    return {s.id: view_of(s, sources, known) for s in rows}


async def _known(
    session: AsyncSession,
    ids: set[str],
    query: Callable[[list[uuid.UUID]], Select[uuid.UUID]],
) -> set[str]:
    """Which of ``ids`` the policy-filtered ``query`` returns."""
    wanted = sorted(uuid.UUID(i) for i in ids)
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found |= {str(i) for i in await session.scalars(query(wanted[start : start + CHUNK]))}
    return found


async def view(
    session: AsyncSession, settings: Settings, actor: Principal, synthesis: Synthesis
) -> ReaderView:
    return (await views(session, settings, actor, [synthesis]))[synthesis.id]
