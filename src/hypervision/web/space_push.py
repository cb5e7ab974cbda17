"""A space's modules pushed through its readers' streams (docs/adr/0052).

A space's page opens its stream with ``space=<id>``: the stream then *watches* the space.
When the hub has delivered events of a module's topics, the modules they concern are
computed once per group of watchers the policy cannot tell apart (the same visibility
signature and language: ``spaces.cache.signature``), rendered once, and sent to each of them
as one ``space.modules`` event — instead of every page asking for them with a request of its
own (ADR 0051). Every watcher's read leaves its own audit records (the same records as a
refresh by request, marked ``pushed``), appended together before anything is sent.

What is never pushed: a form (it holds its reader's CSRF token), a module with no live topic.
A group is refreshed only by events its readers may see (the hub's ``visible``: an event they
are not told of changes nothing they are sent). An event of the space itself (edited, shared
otherwise, archived) ends its watches: the page reloads on it, and watches again if it still
may. A push that fails tells the group's pages to ask by request (``space.refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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

Group = tuple[str, str]  # (language, visibility signature)


@dataclass(eq=False)
class Watcher:
    sub: Subscriber
    request: Request  # the stream's own request: its app and language render the fragments
    group: Group
    personal: str  # the signature with the person: a personal module (the latest synthesis)


@dataclass
class Room:
    """The watchers of one space, by group, and what its pushed modules listen to."""

    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # module id -> topics
    groups: dict[Group, dict[Watcher, None]] = field(default_factory=dict)  # ordered sets


def pushable(space: Space) -> dict[str, tuple[str, ...]]:
    """The modules of ``space`` that are pushed, with the topics that refresh them."""
    found: dict[str, tuple[str, ...]] = {}
    for module in space.modules:
        topics = tuple(modules.topics(module))
        if topics and module.get("type") != "form":
            found[str(module.get("id"))] = topics
    return found


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
        self.pushes = 0  # frames of modules queued to streams (/metrics-free: for tests, bench)
        self.failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- watches --------------------------------------------------------------------------

    async def admit(
        self, session: AsyncSession, actor: Principal, space_id: uuid.UUID
    ) -> Space | None:
        """The space a stream may watch: one ``actor`` may read, else None (the stream opens
        all the same, and its page refreshes by request)."""
        try:
            return await service.find_space(
                session=session, settings=self.settings, actor=actor, space_id=space_id
            )
        except NotFound:
            return None

    def watch(self, sub: Subscriber, space: Space, request: Request, locale: str) -> Frame:
        """Watch ``space`` for ``sub`` (call right after ``hub.subscribe``); the returned
        ``space.watch`` frame, queued first, names the modules that will come pushed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hypervision-space-push")
        request.state.locale = locale  # the fragments' language (web.render.translator)
        principal = sub.principal
        watcher = Watcher(
            sub,
            request,
            (locale, cache.signature(self.settings, principal, False)),
            cache.signature(self.settings, principal, True),
        )
        room = self.rooms.setdefault(space.id, Room())
        room.topics = pushable(space)  # its newest definition
        room.groups.setdefault(watcher.group, {})[watcher] = None
        self.watching[sub] = (space.id, watcher)
        return frame("space.watch", {"space": str(space.id), "modules": sorted(room.topics)})

    def left(self, sub: Subscriber) -> None:
        found = self.watching.pop(sub, None)
        if found is None:
            return
        space_id, watcher = found
        room = self.rooms.get(space_id)
        members = room.groups.get(watcher.group) if room else None
        if room is None or members is None:
            return
        members.pop(watcher, None)
        if not members:
            del room.groups[watcher.group]
            if not room.groups:
                del self.rooms[space_id]

    def _end(self, space_id: uuid.UUID, group: Group | None = None) -> list[Watcher]:
        """Forget the watchers of a space (of one group): they get nothing pushed any more."""
        room = self.rooms.get(space_id)
        if room is None:
            return []
        groups = [group] if group is not None else list(room.groups)
        ended: list[Watcher] = []
        for one in groups:
            for watcher in room.groups.pop(one, {}):
                self.watching.pop(watcher.sub, None)
                ended.append(watcher)
        if not room.groups:
            del self.rooms[space_id]
        return ended

    # --- what changed ---------------------------------------------------------------------

    def delivered(self, rows: list[OutboxEvent]) -> None:
        """The hub delivered ``rows``: mark the modules they concern, per group that may see
        them, to be pushed after the gathering window."""
        for event in rows:
            if not self.rooms or event.label.get("system") or gate_of(event) is not None:
                continue
            kind = event.resource_type
            if kind == "space":  # edited, shared otherwise, archived: the page reloads
                self._end(event.resource_id)
                continue
            one = f"{kind}:{event.resource_id}"
            for space_id, room in self.rooms.items():
                touched = {m for m, on in room.topics.items() if kind in on or one in on}
                if not touched:
                    continue
                for group, members in room.groups.items():
                    first = next(iter(members))
                    if visible(first.sub.subject, event):
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
                    await self.push(space_id, group, touched)
                except Exception:  # any failure: the pages ask by request
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
        """Compute ``touched`` once for ``group`` (its first watcher reads; every watcher's
        records are appended in the same transaction), render each once, then queue the
        fragments to every watcher of the group still open."""
        members = self._members(space_id, group)
        if not members:
            return
        first = members[0].sub.principal
        batches: list[tuple[list[Watcher], dict[str, Any]]] = []
        async with transaction(self.sessions) as session:
            await rls.bind(session, self.settings, first)
            try:
                space = await service.find_space(
                    session=session, settings=self.settings, actor=first, space_id=space_id
                )
            except NotFound:
                space = None
            if space is not None:
                wanted = [m for m in space.modules if str(m.get("id")) in touched]
                wanted = [m for m in wanted if m.get("type") != "form"]
                common = [m for m in wanted if m.get("type") not in cache.PERSONAL]
                personal = [m for m in wanted if m.get("type") in cache.PERSONAL]
                parts: list[tuple[list[Watcher], list[dict[str, Any]]]] = []
                if common:
                    parts.append((members, common))
                if personal:  # one computation per person (the latest synthesis sent to them)
                    people: dict[str, list[Watcher]] = {}
                    for watcher in members:
                        people.setdefault(watcher.personal, []).append(watcher)
                    parts.extend((readers, personal) for readers in people.values())
                for readers, mods in parts:
                    batches.append((readers, await self._render(session, space, readers, mods)))
        if space is None:  # its first reader lost it: each page asks as its own reader
            self._end(space_id, group)
            self._ask(members, space_id, touched)
            return
        for readers, data in batches:
            pushed = frame("space.modules", data)
            for watcher in readers:
                if not watcher.sub.closed:  # a revocation since: closed, nothing sent
                    watcher.sub.push(pushed)
                    self.pushes += 1

    async def _render(
        self,
        session: AsyncSession,
        space: Space,
        readers: list[Watcher],
        wanted: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The fragments of ``wanted`` for ``readers`` (one signature), each as the page's
        refresh renders it (``space_pages.fragment``: once per shared result and language)."""
        request = readers[0].request
        found = await modules.pushed(
            session=session,
            settings=self.settings,
            readers=[w.sub.principal for w in readers],
            space=space,
            wanted=wanted,
            french=readers[0].group[0] == "fr",
            shared=self.shared,
        )
        html = {
            str(m["id"]): fragment(request, self.shared, space.id, m, one)
            for m, one in zip(wanted, found, strict=True)
        }
        return {"space": str(space.id), "modules": html}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
