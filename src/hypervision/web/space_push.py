"""A space's modules pushed through its readers' streams (docs/adr/0052).

A space's page opens its stream with ``space=<id>``: the stream then *watches* the space.
When the hub has delivered events of a module's topics, the modules they concern are
computed once per group of watchers the policy cannot tell apart (the same visibility
signature and language: ``spaces.cache.signature``), rendered once, and sent to each of them
as one ``space.modules`` event — instead of every page asking for them with a request of its
own (ADR 0051). The push's reads are audited once, then one ``space.push`` record per reader
names them (``modules.push_records``), all appended before anything is sent.

What is never pushed: a form (it holds its reader's CSRF token), a personal module (the
latest synthesis: one computation per person), a module with no live topic — the page asks
for those. A group is refreshed by events its readers may see (the hub's ``visible``) and by
every relabelling (what a reader no longer sees leaves their modules), and sent only the
modules whose content changed. A reader the space's own list of people no longer names is
dropped at the next push. An event of the space itself (edited, shared otherwise, archived,
restored) ends its watches: the pages are told (``space.unwatch``) and ask by request until
they reload. A push that fails or takes too long tells the group's pages to ask by request
(``space.refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import NotFound
from hypervision.db import transaction
from hypervision.events.models import OutboxEvent
from hypervision.identity.principal import Principal
from hypervision.live.hub import Frame, Subscriber, gate_of, visible
from hypervision.policy import rls
from hypervision.spaces import cache, modules, service
from hypervision.spaces.cache import ModuleCache
from hypervision.spaces.models import Space
from hypervision.web.space_pages import fragment

log = logging.getLogger("hypervision.spaces.push")
# Seconds: the events of a burst (a few entries at once) push once. Short: pushes of a space
# never overlap (the loop pushes one group at a time, events arriving meanwhile wait for the
# next round), so a longer burst is throttled by the pushes' own cost, not by this window.
WINDOW = 0.1
PARALLEL = 4  # modules of one push computed at once (PostgreSQL), each on a connection
TIMEOUT = 10.0  # seconds: a push that takes longer is abandoned, its pages ask by request

Group = tuple[str, str]  # (language, visibility signature)


@dataclass(eq=False)
class Watcher:
    sub: Subscriber
    request: Request  # the stream's own request: its app and language render the fragments
    group: Group


@dataclass
class Room:
    """The watchers of one space, by group, and what its pushed modules listen to."""

    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # module id -> topics
    groups: dict[Group, dict[Watcher, None]] = field(default_factory=dict)  # ordered sets
    sent: dict[Group, dict[str, bytes]] = field(default_factory=dict)  # last pushed, hashed


def pushable(space: Space) -> dict[str, tuple[str, ...]]:
    """The modules of ``space`` that are pushed, with the topics that refresh them."""
    found: dict[str, tuple[str, ...]] = {}
    for module in space.modules:
        topics = tuple(modules.topics(module))
        if topics and module.get("type") != "form" and module.get("type") not in cache.PERSONAL:
            found[str(module.get("id"))] = topics
    return found


@dataclass(frozen=True)
class Admitted:
    """A space a stream may watch, as read when it opened, and the count of the space's own
    events then (``SpacePush.watch`` refuses the watch when one came in between)."""

    space: Space
    ended: int

    @property
    def id(self) -> uuid.UUID:
        return self.space.id


def frame(event: str, data: dict[str, Any]) -> Frame:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Frame(None, f"event: {event}\ndata: {body}\n\n".encode())


class SpacePush:
    """One per process, told by the hub of each batch of delivered events (``Follower``)."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], shared: ModuleCache
    ) -> None:
        self.settings = settings
        self.sessions = sessions  # a request's: the reader's identity is bound (policy.rls)
        self.shared = shared
        self.rooms: dict[uuid.UUID, Room] = {}
        self.watching: dict[Subscriber, tuple[uuid.UUID, Watcher]] = {}
        self.dirty: dict[tuple[uuid.UUID, Group], set[str]] = {}
        self._ended: dict[uuid.UUID, int] = {}  # events of each space itself, counted
        self.failures = 0  # pushes abandoned (the pages asked by request instead)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._parallel = asyncio.Semaphore(PARALLEL)

    # --- watches --------------------------------------------------------------------------

    async def admit(
        self, session: AsyncSession, actor: Principal, space_id: uuid.UUID
    ) -> Admitted | None:
        """The space a stream may watch: one ``actor`` may read, else None (the stream opens
        all the same and its page asks by request; the stream's opening record names the
        space asked, watched or not)."""
        ended = self._ended.get(space_id, 0)
        try:
            space = await service.find_space(
                session=session, settings=self.settings, actor=actor, space_id=space_id
            )
        except NotFound:
            return None
        return Admitted(space, ended)

    def watch(self, sub: Subscriber, admitted: Admitted, request: Request, locale: str) -> Frame:
        """Watch the admitted space for ``sub`` (call right after ``hub.subscribe``): the
        returned ``space.watch`` frame, queued first, names the modules that will come
        pushed — none when an event of the space came since it was admitted (the page will
        reload on it)."""
        space = admitted.id
        if self._ended.get(space, 0) != admitted.ended:  # changed meanwhile: ask by request
            return frame("space.watch", {"space": str(space), "modules": []})
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hypervision-space-push")
        request.state.locale = locale  # the fragments' language (web.render.translator)
        watcher = Watcher(
            sub, request, (locale, cache.signature(self.settings, sub.principal, False))
        )
        room = self.rooms.setdefault(space, Room())
        room.topics = pushable(admitted.space)  # its newest definition
        room.groups.setdefault(watcher.group, {})[watcher] = None
        room.sent.pop(watcher.group, None)  # its next push sends every module it concerns
        self.watching[sub] = (space, watcher)
        return frame("space.watch", {"space": str(space), "modules": sorted(room.topics)})

    def left(self, sub: Subscriber) -> None:
        found = self.watching.pop(sub, None)
        if found is not None:
            self._drop(found[0], [found[1]])

    def _drop(self, space_id: uuid.UUID, watchers: list[Watcher]) -> None:
        room = self.rooms.get(space_id)
        if room is None:
            return
        for watcher in watchers:
            if self._watches(watcher):
                del self.watching[watcher.sub]
            members = room.groups.get(watcher.group)
            if members is not None:
                members.pop(watcher, None)
                if not members:
                    del room.groups[watcher.group]
                    room.sent.pop(watcher.group, None)
        if not room.groups:
            del self.rooms[space_id]

    def _watches(self, watcher: Watcher) -> bool:
        found = self.watching.get(watcher.sub)
        return found is not None and found[1] is watcher

    def _unwatch(self, space_id: uuid.UUID, watchers: list[Watcher]) -> None:
        """End these watches and tell their pages: they ask by request from now on."""
        self._drop(space_id, watchers)
        told = frame("space.unwatch", {"space": str(space_id)})
        for watcher in watchers:
            watcher.sub.push(told)

    # --- what changed ---------------------------------------------------------------------

    def delivered(self, rows: list[OutboxEvent]) -> None:
        """The hub delivered ``rows``: mark the modules they concern, per group that may see
        them (every group for a relabelling), to be pushed after the gathering window."""
        for event in rows:
            if event.label.get("system") or gate_of(event) is not None:
                continue
            kind = event.resource_type
            if kind == "space":  # edited, shared otherwise, archived, restored
                self._ended[event.resource_id] = self._ended.get(event.resource_id, 0) + 1
                room = self.rooms.get(event.resource_id)
                if room is not None:
                    self._unwatch(event.resource_id, [w for m in room.groups.values() for w in m])
                continue
            if not self.rooms:
                continue
            one = f"{kind}:{event.resource_id}"
            relabel = event.type.endswith(".label")
            for space_id, room in self.rooms.items():
                touched = {m for m, on in room.topics.items() if kind in on or one in on}
                if not touched:
                    continue
                for group, members in room.groups.items():
                    first = next(iter(members))
                    if relabel or visible(first.sub.subject, event):
                        self.dirty.setdefault((space_id, group), set()).update(touched)
        if self.dirty:
            self._wake.set()

    # --- pushing --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(WINDOW)  # gather the burst
            self._wake.clear()
            dirty, self.dirty = self.dirty, {}
            for (space_id, group), touched in dirty.items():
                try:
                    async with asyncio.timeout(TIMEOUT):
                        await self.push(space_id, group, touched)
                except Exception:  # any failure, or too long: the pages ask by request
                    log.exception("space push failed; the pages refresh by request")
                    self.failures += 1
                    self._ask(self._members(space_id, group), space_id, touched)

    def _members(self, space_id: uuid.UUID, group: Group) -> list[Watcher]:
        room = self.rooms.get(space_id)
        members = room.groups.get(group, {}) if room else {}
        return [w for w in members if not w.sub.closed]

    def _ask(self, members: list[Watcher], space_id: uuid.UUID, touched: set[str]) -> None:
        """Tell pages to refresh ``touched`` by request, each as its own reader."""
        ask = frame("space.refresh", {"space": str(space_id), "modules": sorted(touched)})
        for watcher in members:
            watcher.sub.push(ask)

    async def push(self, space_id: uuid.UUID, group: Group, touched: set[str]) -> None:
        """Compute ``touched`` once for ``group`` as its first watcher who still reads the
        space, render each once, append the audit trail of the modules whose content
        changed, commit, then queue those to every watcher of the group still watching. A
        watcher who no longer reads the space is told and dropped."""
        members = self._members(space_id, group)
        while members:
            first = members[0]
            sending: tuple[dict[str, str], dict[str, bytes]] | None = None
            readers: list[Watcher] = []
            async with transaction(self.sessions) as session:
                await rls.bind(session, self.settings, first.sub.principal)
                try:
                    space = await service.find_space(
                        session=session,
                        settings=self.settings,
                        actor=first.sub.principal,
                        space_id=space_id,
                    )
                except NotFound:
                    space = None
                if space is not None:
                    # the space's own list of people is the one rule the signature lacks
                    readers = [w for w in members if service.names(space, w.sub.principal)]
                    sending = await self._changed(session, space, group, readers, touched)
            if space is None:  # they lost it: told, and the next watcher reads
                self._unwatch(space_id, [first])
                members = members[1:]
                continue
            self._unwatch(space_id, [w for w in members if w not in readers])
            if sending is not None:
                self._send(space_id, group, readers, *sending)
            return

    async def _changed(
        self,
        session: AsyncSession,
        space: Space,
        group: Group,
        readers: list[Watcher],
        touched: set[str],
    ) -> tuple[dict[str, str], dict[str, bytes]] | None:
        """The fragments of ``touched`` whose content changed since the group's last push,
        rendered once (``space_pages.fragment``, as the page's refresh renders them), with
        their digests; their audit trail appended (``modules.push_records``). None: nothing
        changed, nothing to send or record."""
        if not readers:
            return None
        pushed = pushable(space)
        wanted = [m for m in space.modules if str(m.get("id")) in touched & pushed.keys()]
        first = readers[0]
        found = await self._compute(session, first, space, wanted)
        room = self.rooms.get(space.id)
        sent = room.sent.get(group, {}) if room else {}
        html: dict[str, str] = {}
        digests: dict[str, bytes] = {}
        changed: list[tuple[dict[str, Any], modules.Answer]] = []
        for module, answer in zip(wanted, found, strict=True):
            ident = str(module["id"])
            text = fragment(first.request, self.shared, space.id, module, answer)
            digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
            if sent.get(ident) != digest:
                html[ident], digests[ident] = text, digest
                changed.append((module, answer))
        if not changed:
            return None
        records = modules.push_records(
            [w.sub.principal for w in readers],
            space,
            [m for m, _ in changed],
            [a for _, a in changed],
        )
        await audit.append_many(session, records)
        return html, digests

    async def _compute(
        self, session: AsyncSession, first: Watcher, space: Space, wanted: list[dict[str, Any]]
    ) -> list[modules.Answer]:
        """The modules' answers as ``first`` reads them. On PostgreSQL each module in its own
        transaction, at most ``PARALLEL`` at once: an import refreshes every module over its
        product, each a scan of it, and the database runs them side by side; on SQLite (one
        writer: a computation audits) one after the other, in ``session``."""
        french = first.group[0] == "fr"
        actor = first.sub.principal

        async def some(own: AsyncSession, mods: list[dict[str, Any]]) -> list[modules.Answer]:
            return await modules.pushed(
                session=own,
                settings=self.settings,
                actor=actor,
                space=space,
                wanted=mods,
                french=french,
                shared=self.shared,
            )

        if session.get_bind().dialect.name != "postgresql" or len(wanted) < 2:
            return await some(session, wanted)

        async def one(module: dict[str, Any]) -> modules.Answer:
            async with self._parallel, transaction(self.sessions) as own:
                await rls.bind(own, self.settings, actor)
                return (await some(own, [module]))[0]

        return list(await asyncio.gather(*(one(m) for m in wanted)))

    def _send(
        self,
        space_id: uuid.UUID,
        group: Group,
        readers: list[Watcher],
        html: dict[str, str],
        digests: dict[str, bytes],
    ) -> None:
        """Queue the changed modules (committed with their records) to the readers still
        watching (a revocation or an end of watch since: nothing), and remember them."""
        room = self.rooms.get(space_id)
        if room is None:
            return
        if group in room.groups:
            room.sent.setdefault(group, {}).update(digests)
        pushed = frame("space.modules", {"space": str(space_id), "modules": html})
        for watcher in readers:
            if self._watches(watcher) and not watcher.sub.closed:
                watcher.sub.push(pushed)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
