"""The public open data answers, cached in the application (ADR 0049).

Every anonymous reader of one public address gets the same bytes: the catalogue (and its
search), a dataset's page, metadata, rows pages, Table Schema, and the DCAT-AP catalogue.
``PublicCache`` is a pure ASGI middleware, inside the request context (request id, security
headers, metrics and access log stay on every answer) and outside compression (it keeps the
compressed bytes). It keys an answer by the canonical request — path, sorted query, scheme and
host (the answers carry absolute URLs), the encoding compression would pick, the language
cookie — and keeps its status, headers and body, least recently used first out, bounded in
bytes. A hit touches neither the database nor the application; ``If-None-Match`` gets 304.

Invalidation: a *generation* read from the database — the published datasets' count, their
latest modification (approval, release, hold, withdrawal all move it), the held ones, and the
sum of their products' record versions (a label raised, a rule changed) — at most every
``opendata_cache_check_seconds`` (and before the next public answer after any writing request
this replica served: a withdrawal made here answers 410 at once). When it differs, the whole
cache is dropped. Another replica sharing the database sees the change within that many
seconds; entries also expire after ``opendata_cache_seconds`` (what the answers' own
``Cache-Control: max-age`` tells browsers), which bounds anything the generation misses (a
publisher renamed). An answer computed while the generation moved is not kept.

The rate limit applies to hits and misses alike: the middleware takes the client's token (the
address ``TrustedProxies`` resolved) before looking; over the limit, the request goes on to
the application flagged, whose dependency answers 429 with ``Retry-After`` in the app's own
error shape (JSON or page).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hypervision.config import Settings
from hypervision.core.compression import pick_encoding
from hypervision.core.i18n import LOCALE_COOKIE
from hypervision.core.middleware import carries_credentials
from hypervision.opendata.models import Publication, PublicationState
from hypervision.opendata.public_principal import public_filter
from hypervision.opendata.ratelimit import TokenBuckets
from hypervision.products.models import DataProduct

log = logging.getLogger("hypervision.opendata")

# What is cached (GET / HEAD, anonymous): the public pages and API answers built from
# metadata and rows pages. Downloads (streamed, possibly huge) are only rate limited.
CACHED = re.compile(
    r"^/(?:catalogue\.(?:jsonld|ttl)"
    r"|opendata(?:/(?!api$|datasets$)[^/]+)?"
    r"|opendata/api/datasets(?:/[^/]+(?:/rows|/schema\.json)?)?)$"
)
LIMITED = re.compile(r"^/(?:catalogue\.(?:jsonld|ttl)|opendata(?:/.*)?)$")
KEPT_STATUSES = frozenset({200, 410})
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
# Headers the request context adds on the way out: not kept (a hit gets its own).
PER_REQUEST = frozenset({b"x-request-id", b"date", b"server"})
CONDITIONAL = (b"etag", b"cache-control", b"vary")

Generation = tuple[Any, ...]
Key = tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    expires: float
    size: int


class ResponseCache:
    """Entries by key, least recently used first out when over ``max_bytes``."""

    def __init__(self, max_bytes: int, max_entry: int) -> None:
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.size = 0
        self.hits = self.misses = self.drops = 0

    def get(self, key: Key, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._remove(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: Key, entry: Entry) -> None:
        if entry.size > self.max_entry:
            return
        self._remove(key)
        self.entries[key] = entry
        self.size += entry.size
        while self.size > self.max_bytes and self.entries:
            self._remove(next(iter(self.entries)))

    def _remove(self, key: Key) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.size -= entry.size

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0
        self.drops += 1


async def read_generation(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Generation:
    """What every public answer depends on, in one aggregate query (system context): how
    many datasets the public principal may see (a label raised hides one), the held and the
    withdrawn ones, their latest change, their products' record versions."""
    held = case((Publication.held.is_(True), 1), else_=0)
    withdrawn = case((Publication.state == PublicationState.WITHDRAWN.value, 1), else_=0)
    async with sessions() as session:
        visible = case((public_filter(session, settings), 1), else_=0)
        found = (
            await session.execute(
                select(
                    func.count(),
                    func.sum(visible),
                    func.max(Publication.modified_at),
                    func.sum(held),
                    func.sum(withdrawn),
                    func.sum(DataProduct.version),
                    func.max(DataProduct.updated_at),
                )
                .select_from(Publication)
                .join(DataProduct, DataProduct.id == Publication.product_id)
                .where(Publication.state != PublicationState.PROPOSED.value)
            )
        ).one()
    return tuple(str(v) for v in found)


class Freshness:
    """The generation, re-read at most every ``every`` seconds, or at once when ``dirty``."""

    def __init__(
        self, read: Callable[[], Awaitable[Generation]], every: float, cache: ResponseCache
    ) -> None:
        self.read = read
        self.every = every
        self.cache = cache
        self.generation: Generation | None = None
        self.number = 0  # moves when the generation changes: answers built across are dropped
        self.next_check = 0.0
        self.dirty = False
        self._lock = asyncio.Lock()
        self.clock: Callable[[], float] = time.monotonic  # the tests move it

    def expire(self) -> None:
        """Re-read the generation before the next answer (as the next check would)."""
        self.next_check = 0.0

    def due(self, now: float) -> bool:
        return self.dirty or now >= self.next_check

    async def check(self) -> bool:
        """Re-read the generation if due; False when it cannot be read (no caching then)."""
        async with self._lock:
            now = self.clock()
            if not self.due(now):
                return True
            self.dirty = False
            try:
                found = await self.read()
            except (SQLAlchemyError, OSError):  # the database is down: nothing from memory
                log.warning("open data cache: generation unreadable, cache dropped")
                self.cache.clear()
                self.generation = None
                self.number += 1
                self.next_check = 0.0
                return False
            if found != self.generation:
                if self.generation is not None:
                    self.cache.clear()
                self.generation = found
                self.number += 1
            self.next_check = now + self.every
            return True


def _key(scope: Scope) -> Key:
    headers = dict(scope.get("headers", []))
    query = scope.get("query_string", b"").decode("latin-1")
    parts = sorted(p for p in query.split("&") if p)
    cookies = headers.get(b"cookie", b"").decode("latin-1")
    locale = cookie_parser(cookies).get(LOCALE_COOKIE, "")[:2] if cookies else ""
    accept = headers.get(b"accept-encoding", b"").decode("latin-1")
    return (
        scope["path"],
        "&".join(parts),
        scope.get("scheme", "http"),
        headers.get(b"host", b"").decode("latin-1")[:200],
        pick_encoding(accept) or "",
        locale,
    )


def _matches(scope: Scope, tag: bytes) -> bool:
    sent = dict(scope.get("headers", [])).get(b"if-none-match", b"")
    return sent.strip() == b"*" or tag in [t.strip() for t in sent.split(b",")]


class PublicCache:
    """The middleware: rate limit, then the cache, for the public open data addresses."""

    def __init__(
        self,
        app: ASGIApp,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        state: Any,
        max_bytes: int,
        seconds: float,
        check_seconds: float,
    ) -> None:
        self.app = app
        self.state = state  # app.state: its ``opendata_buckets``; the tests reach the cache
        self.seconds = seconds
        self.cache = ResponseCache(max_bytes, max(1, max_bytes // 8))
        self.freshness = Freshness(
            lambda: read_generation(sessions, settings), check_seconds, self.cache
        )
        self._inflight: dict[Key, asyncio.Event] = {}
        state.opendata_cache = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method not in SAFE:  # a writing request may change what is public: re-check
            self.freshness.dirty = True
            try:
                await self.app(scope, receive, send)
            finally:
                self.freshness.dirty = True
            return
        if not LIMITED.match(path):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        client = scope.get("client")
        buckets: TokenBuckets = self.state.opendata_buckets
        wait = buckets.take(client[0] if client else "unknown")
        if wait is not None:  # the application answers 429 in its own shape
            state["opendata_wait"] = wait
            await self.app(scope, receive, send)
            return
        state["opendata_limited"] = True
        if method == "OPTIONS" or not CACHED.match(path) or carries_credentials(scope):
            await self.app(scope, receive, send)
            return
        if self.seconds <= 0 or (
            self.freshness.due(self.freshness.clock()) and not await self.freshness.check()
        ):
            await self.app(scope, receive, send)
            return
        key = _key(scope)
        entry = self.cache.get(key, self.freshness.clock())
        if entry is None and key in self._inflight:  # the same answer is being built
            await self._inflight[key].wait()
            entry = self.cache.get(key, self.freshness.clock())
        if entry is not None:
            self.cache.hits += 1
            await self._replay(scope, entry, send)
            return
        self.cache.misses += 1
        await self._fill(scope, receive, send, key)

    async def _replay(self, scope: Scope, entry: Entry, send: Send) -> None:
        if entry.etag and _matches(scope, entry.etag):
            headers = [(n, v) for n, v in entry.headers if n in CONDITIONAL]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {"type": "http.response.start", "status": entry.status, "headers": entry.headers}
        )
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    async def _fill(self, scope: Scope, receive: Receive, send: Send, key: Key) -> None:
        """Serve from the application and keep the answer if it may be kept."""
        number = self.freshness.number
        event = asyncio.Event()
        leader = key not in self._inflight
        if leader:
            self._inflight[key] = event
        start: Message | None = None
        parts: list[bytes] = []
        keep = scope["method"] == "GET"

        async def capture(message: Message) -> None:
            nonlocal start, keep
            if message["type"] == "http.response.start":
                start = message
                names = {n.lower() for n, _ in message.get("headers", [])}
                if message["status"] not in KEPT_STATUSES or b"set-cookie" in names:
                    keep = False
            elif keep and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if sum(map(len, parts)) > self.cache.max_entry:
                    keep = False
                    parts.clear()
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if leader:
                self._inflight.pop(key, None)
                event.set()
        if not keep or start is None or number != self.freshness.number:
            return
        headers = [
            (n.lower(), v) for n, v in start.get("headers", []) if n.lower() not in PER_REQUEST
        ]
        tag = next((v for n, v in headers if n == b"etag"), b"")
        body = b"".join(parts)
        size = len(body) + sum(len(n) + len(v) for n, v in headers) + 200
        expires = self.freshness.clock() + self.seconds
        self.cache.put(key, Entry(start["status"], headers, body, tag, expires, size))
