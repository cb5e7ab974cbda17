"""Module results shared between readers who would compute the same thing (ADR 0047).

Five hundred officers of one organisation opening the same command post's space read the same
twelve modules: the same rows through the same policy. A module's result is kept for
``MAX_AGE`` seconds under a key that holds everything its reading depends on:

- the space, the module's whole definition (a hash), the language;
- the reader's **visibility signature**: what the policy filters with — the row-level
  security context (``policy.rls.reader_context``: levels, groups, organisation and its
  ancestry, audit right, roles), the clearance and the token's scopes, and for a module whose
  data is personal (the latest synthesis: non-watch officers see only those sent to them) the
  person too. Two readers share a result only when the policy cannot tell them apart;
- the **freshness** of each source the module reads: the newest outbox event of its entries,
  situations, syntheses or zones, or of its product (and the products it is derived from) —
  every change of data, label, rule or status writes one in its own transaction —, read
  with the system identity (an event the reader may not see still changes what they see: a
  label raised), and a process ``generation`` (``invalidate``);

so a write, a rule change or a relabelling changes the key at once: the next read computes
anew. Within a key, concurrent misses compute once (single flight); the others wait for that
result. Bounded: ``MAX_ENTRIES`` results and ``MAX_BYTES`` of them, least recently used out
first. Each reader's read still leaves its audit records (``shared: true``): see
``modules.module_data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.events.models import OutboxEvent
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from hypervision.products.derived_models import ProductInput
from hypervision.products.storage import as_system
from hypervision.spaces.reading import Read

MAX_AGE = 15.0  # seconds: the bound of staleness when no event says anything changed
MAX_ENTRIES = 4096
# Outbox ids are drawn before their transaction commits: a transaction may commit its event
# after a later one's. The freshness counts the events among the last WINDOW ids of a source
# too, so such an event changes the key when it commits (an event is written just before its
# transaction's commit: being overtaken by a thousand of the same source does not happen).
WINDOW = 1000
MAX_BYTES = 64 * 1024 * 1024
# Modules whose data depends on the person, not only on their rights.
PERSONAL = frozenset({"synthesis"})
# The kinds of records whose newest event dates a module of each type's entries-side data.
KIND_SOURCES: dict[str, tuple[str, ...]] = {
    "feed": ("entry",),
    "map": ("entry",),
    "situations": ("situation",),
    "synthesis": ("synthesis",),
}


@dataclass(frozen=True)
class Shared:
    """A module's answer as computed for one reader, servable to readers of the same key."""

    status: str
    message: str | None
    label: str | None
    data: dict[str, Any]
    live: list[str]
    levels: tuple[str, ...]
    reads: tuple[Read, ...]
    size: int = 0
    shareable: bool = True  # False: an unexpected failure (a timeout?), never served to others
    at: float = field(default_factory=time.monotonic)
    # its page fragment by language, rendered once for every reader of the key (ADR 0051):
    # only a fragment that holds nothing of the reader's own (not a form: its CSRF token)
    rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


Key = tuple[Any, ...]


def sources(module: dict[str, Any]) -> tuple[tuple[str, ...], tuple[uuid.UUID, ...]]:
    """The kinds of records (``entry``, ``zone``…) and the products a module reads."""
    kind = str(module.get("type", ""))
    config = module.get("config") or {}
    if not isinstance(config, dict):
        return (), ()
    kinds = list(KIND_SOURCES.get(kind, ()))
    products: list[uuid.UUID] = []
    if kind == "map" and config.get("zones"):
        kinds.append("zone")
    source = config.get("source", "entries")
    if kind in ("chart", "kpi") and source == "entries":
        kinds.append("entry")
    wants_product = (
        kind == "table"
        or (kind in ("chart", "kpi") and source == "product")
        or (kind == "form" and config.get("target") == "product")
    )
    if wants_product:
        # an invalid identifier: the module answers ``invalid`` whatever the data
        with contextlib.suppress(ValueError):
            products.append(uuid.UUID(str(config.get("product_id"))))
    return tuple(sorted(set(kinds))), tuple(products)


def signature(settings: Settings, actor: Principal, personal: bool) -> str:
    """What the policy can tell of a reader (a hash): readers of one signature are served
    the same rows by every rule (labels, row-level security, the products' row and column
    rules, which read organisation, ancestry, groups, roles and clearance)."""
    scopes = None if actor.scopes is None else sorted(actor.scopes)
    found = {
        "context": rls.reader_context(settings, actor),
        "clearance": actor.clearance,
        "scopes": scopes,
        "person": str(actor.user_id) if personal else None,
    }
    return hashlib.sha256(json.dumps(found, sort_keys=True, default=str).encode()).hexdigest()


def definition(module: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(module, sort_keys=True, default=str).encode()).hexdigest()


async def probes(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    kinds: tuple[str, ...],
    products: tuple[uuid.UUID, ...],
) -> dict[str | uuid.UUID, tuple[int | None, ...]]:
    """The newest outbox event of each source and the count of its last ``WINDOW`` ids (one
    statement, by index: migration 0029), read with the system identity then the reader's
    restored: an event the reader may not see (a label raised above them) changes what they
    see too."""
    outbox = OutboxEvent.__table__.c
    newest: list[Any] = []

    def probe(*where: Any) -> None:
        # the newest event, and how many of the last WINDOW ids are there: an event whose id
        # was drawn before the newest but committed after it still changes the key
        top = select(func.max(outbox.id)).where(*where).scalar_subquery()
        recent = select(func.count()).where(*where, outbox.id > top - WINDOW).scalar_subquery()
        newest.extend((top, recent))

    kinds, products = tuple(dict.fromkeys(kinds)), tuple(dict.fromkeys(products))
    for kind in kinds:
        probe(outbox.resource_type == kind)
    for product in products:
        probe(outbox.resource_type == "product", outbox.resource_id == product)
        inputs = select(ProductInput.source_id).where(ProductInput.derived_id == product)
        probe(outbox.resource_type == "product", outbox.resource_id.in_(inputs))
    if not newest:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await as_system(session, settings)
    try:
        row = tuple((await session.execute(select(*newest))).one())
    finally:
        if postgres:
            await rls.bind(session, settings, actor)
    found: dict[str | uuid.UUID, tuple[int | None, ...]] = {}
    for n, kind in enumerate(kinds):
        found[kind] = row[2 * n : 2 * n + 2]
    for n, product in enumerate(products):
        start = 2 * len(kinds) + 4 * n
        found[product] = row[start : start + 4]
    return found


class ModuleCache:
    """Results by key, least recently used out first, with single flight per key."""

    def __init__(
        self, max_age: float = MAX_AGE, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.max_age, self.max_entries, self.max_bytes = max_age, max_entries, max_bytes
        self.generation = 0
        self.bytes = 0
        self.hits = self.misses = self.joined = 0
        self._entries: OrderedDict[Key, Shared] = OrderedDict()
        self._flights: dict[Key, asyncio.Future[Shared | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        """Forget every result (a new generation: keys computed before never match again)."""
        self.generation += 1
        self._entries.clear()
        self.bytes = 0

    async def keys(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Principal,
        space_id: uuid.UUID,
        modules: list[dict[str, Any]],
        french: bool,
    ) -> list[Key]:
        """The keys of modules of one space (a page's load or refresh, ADR 0051): the space,
        the module's definition, the language, the reader's visibility signature, its
        sources' freshness (read for all the modules in one statement) and the generation."""
        wanted = [sources(m) for m in modules]
        found = await probes(
            session,
            settings,
            actor,
            tuple(k for kinds, _ in wanted for k in kinds),
            tuple(p for _, products in wanted for p in products),
        )
        signatures = {personal: signature(settings, actor, personal) for personal in (False, True)}
        return [
            (
                str(space_id),
                definition(module),
                "fr" if french else "en",
                signatures[str(module.get("type", "")) in PERSONAL],
                tuple(v for k in kinds for v in found[k])
                + tuple(v for p in products for v in found[p]),
                self.generation,
            )
            for module, (kinds, products) in zip(modules, wanted, strict=True)
        ]

    async def get(self, key: Key, compute: Callable[[], Awaitable[Shared]]) -> tuple[Shared, bool]:
        """The result for ``key`` and whether it was shared (computed for another reader). A
        result that is not ``shareable`` is neither kept nor given to the readers waiting:
        each computes its own."""
        found = self._entries.get(key)
        if found is not None:
            if time.monotonic() - found.at <= self.max_age:
                self._entries.move_to_end(key)
                self.hits += 1
                return found, True
            self._drop(key)
        flight = self._flights.get(key)
        if flight is not None:  # the same read is being computed: wait for it
            result = await asyncio.shield(flight)
            if result is not None:
                self.joined += 1
                return result, True
            return await compute(), False  # it failed there: compute here
        self.misses += 1
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        computed: Shared | None = None
        try:
            computed = await compute()
        finally:
            del self._flights[key]
            flight.set_result(computed if computed is not None and computed.shareable else None)
        if computed.shareable and computed.size <= self.max_bytes // 16:
            self._put(key, computed)
        return computed, False

    def rendered(self, key: Key, result: Shared, variant: str) -> str | None:
        """The fragment kept with ``result`` (the entry of ``key``) for ``variant``."""
        return result.rendered.get(variant) if self._entries.get(key) is result else None

    def keep_rendered(self, key: Key, result: Shared, variant: str, html: str) -> None:
        """Keep ``html``, ``result``'s fragment for ``variant``, while ``result`` is kept: a
        fragment that reveals nothing ``result`` does not (the caller's duty: nothing of the
        reader's own in it), counted in the memory bound."""
        if self._entries.get(key) is not result or variant in result.rendered:
            return
        if len(html) > self.max_bytes // 16:
            return
        result.rendered[variant] = html
        self.bytes += len(html)
        self._trim()

    def _put(self, key: Key, result: Shared) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = result
        self.bytes += result.size + sum(len(h) for h in result.rendered.values())
        self._trim()

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: Key) -> None:
        gone = self._entries.pop(key, None)
        if gone is not None:
            self.bytes -= gone.size + sum(len(h) for h in gone.rendered.values())
