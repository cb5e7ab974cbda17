"""The load generator of ``bench/live.py``: many SSE connections held by one process.

Runs in its own process (``multiprocessing``, spawn) so that its CPU does not count against the
server and the server's event loop is not shared with it. It uses raw ``asyncio.Protocol``
connections (uvloop when installed) rather than httpx: on a 2-core machine the generator must
stay cheap, and a protocol callback per received chunk costs a few microseconds where an httpx
stream costs a task, a line iterator and several awaits per event. HTTP/1.1 chunked bodies are
decoded by hand; SSE frames are split on blank lines; for an event frame only ``id:`` is
parsed and the receipt time recorded (the frame itself is kept once per event id, so that the
parent parses each event's JSON once, not once per delivery).

Commands arrive on a ``multiprocessing`` pipe (see ``Generator`` in ``bench/live.py``); every
wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
import time
from array import array
from collections.abc import Sequence
from typing import Any

READY_TIMEOUT = 30.0  # seconds for a stream to send its first (status) frame


class SSE(asyncio.Protocol):
    """One SSE connection: request sent on connect, receipts recorded as (event id, time)."""

    __slots__ = (
        "body",
        "chunk_left",
        "closed",
        "error",
        "events",
        "gone",
        "head",
        "headers_done",
        "ids",
        "pings",
        "raw",
        "ready",
        "request",
        "state",
        "status",
        "tag",
        "times",
        "transport",
    )

    def __init__(
        self, tag: int, request: bytes, events: dict[int, bytes], ready: asyncio.Future[bool]
    ) -> None:
        self.tag = tag
        self.request = request
        self.events = events  # shared: event id -> first frame seen (bytes)
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.headers_done = False
        self.status = 0
        self.raw = bytearray()
        self.body = bytearray()
        self.state = 0  # 0: chunk size line, 1: chunk data, 2: CRLF after data
        self.chunk_left = 0
        self.ids = array("q")
        self.times = array("d")
        self.pings = 0
        self.closed: str | None = None  # "resync", "revoked", "shutdown", "eof", "http 4xx"...
        self.error: str | None = None
        self.gone: asyncio.Event | None = None  # set when the stream ends (Generator.follow)

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is None:
            self.closed = "eof"
        if not self.ready.done():
            self.ready.set_result(False)
        if self.gone is not None:
            self.gone.set()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).decode("latin-1")
            rest = bytes(self.head[end + 4 :])
            self.head = bytearray()
            self.headers_done = True
            try:
                self.status = int(head.split(" ", 2)[1])
            except (IndexError, ValueError):
                self.status = 0
            if self.status != 200 or "transfer-encoding: chunked" not in head.lower():
                self.error = f"http {self.status}: {rest[:200]!r}"
                self.closed = f"http {self.status}"
                if not self.ready.done():
                    self.ready.set_result(False)
                if self.transport is not None:
                    self.transport.close()
                return
            data = rest
        self.raw += data
        self._dechunk()
        self._frames(now)

    def eof_received(self) -> bool | None:
        return None

    # --- parsing ------------------------------------------------------------------------------

    def _dechunk(self) -> None:
        raw, pos, n = self.raw, 0, len(self.raw)
        while pos < n:
            if self.state == 0:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(bytes(raw[pos:eol]).split(b";", 1)[0], 16)
                pos = eol + 2
                if size == 0:
                    self.closed = self.closed or "end"
                    if self.gone is not None:  # the connection may stay open (keep-alive)
                        self.gone.set()
                    break
                self.chunk_left, self.state = size, 1
            elif self.state == 1:
                take = min(self.chunk_left, n - pos)
                self.body += raw[pos : pos + take]
                self.chunk_left -= take
                pos += take
                if self.chunk_left == 0:
                    self.state, self.chunk_left = 2, 2
            else:
                take = min(self.chunk_left, n - pos)
                self.chunk_left -= take
                pos += take
                if self.chunk_left == 0:
                    self.state = 0
        del raw[:pos]

    def _frames(self, now: float) -> None:
        body = self.body
        start = 0
        while True:
            end = body.find(b"\n\n", start)
            if end < 0:
                break
            frame = bytes(body[start:end])
            start = end + 2
            if frame.startswith(b"id: "):
                nl = frame.find(b"\n")
                ident = int(frame[4:nl])
                self.ids.append(ident)
                self.times.append(now)
                if ident not in self.events:
                    self.events[ident] = frame
            elif frame.startswith(b":"):
                self.pings += 1
            elif frame.startswith(b"retry:") or frame.startswith(b"event: status"):
                if not self.ready.done():
                    self.ready.set_result(True)
            elif frame.startswith(b"event: "):
                self.named(frame, now)
        if start:
            del body[:start]

    def named(self, frame: bytes, now: float) -> None:
        """A named event without id: the stream's end (resync, revoked, shutdown...)."""
        nl = frame.find(b"\n")
        self.closed = frame[7 : nl if nl > 0 else None].decode("latin-1")


class Generator:
    def __init__(self) -> None:
        self.clients: list[SSE] = []
        self.events: dict[int, bytes] = {}
        self.following = False  # Generator.follow: reconnect the streams that end
        self.followers: list[asyncio.Task[None]] = []
        self.follow_counts: dict[str, Any] = {}

    async def connect(
        self,
        host: str,
        port: int,
        specs: Sequence[tuple[int, str, str] | tuple[int, str, str, int]],
        concurrency: int,
        attempts: int,
        deadline_seconds: float,
        ready_timeout: float = READY_TIMEOUT,
    ) -> dict[str, Any]:
        """Open one stream per (tag, path, bearer token[, port]); each counts once its
        status frame is in."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        semaphore = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        retries = 0
        started = time.perf_counter()

        async def one(tag: int, path: str, token: str, to: int | None = None) -> SSE | None:
            nonlocal retries
            to = to or port  # a spec may name its replica's port
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{to}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode("latin-1")
            for attempt in range(attempts):
                if loop.time() > deadline:
                    failures.append("connect deadline passed")
                    return None
                async with semaphore:
                    ready: asyncio.Future[bool] = loop.create_future()
                    proto = SSE(tag, request, self.events, ready)

                    def factory(p: SSE = proto) -> SSE:
                        return p

                    try:
                        await asyncio.wait_for(
                            loop.create_connection(factory, host, to), ready_timeout
                        )
                        ok = await asyncio.wait_for(ready, ready_timeout)
                    except (OSError, TimeoutError) as exc:
                        ok = False
                        proto.error = proto.error or f"{type(exc).__name__}: {exc}"
                    if ok:
                        return proto
                    if proto.transport is not None:
                        proto.transport.abort()
                    if len(failures) < 20:
                        failures.append(proto.error or proto.closed or "no status frame")
                    retries += attempt + 1 < attempts
                await asyncio.sleep(0.2 * (attempt + 1))
            return None

        results = await asyncio.gather(*(one(*spec) for spec in specs))
        opened = [p for p in results if p is not None]
        self.clients.extend(opened)
        return {
            "requested": len(specs),
            "opened": len(opened),
            "failed": len(specs) - len(opened),
            "retries": retries,
            "failures": failures[:5],
            "tags": [p.tag for p in opened],
            "seconds": time.perf_counter() - started,
        }

    async def follow(
        self,
        host: str,
        port: int,
        specs: Sequence[tuple[int, str, str]],
        concurrency: int,
        deadline_seconds: float,
        ready_timeout: float = READY_TIMEOUT,
    ) -> dict[str, Any]:
        """Open one stream per (tag, path, bearer token), as a browser would, and keep it open:
        when it ends (``event: shutdown`` then the end of the body, the connection lost, an
        HTTP error), open it again at once with ``Last-Event-ID`` = the last event id the tag
        received; every connection's receipts are kept under the same tag (``collect``).
        Returns once every stream has opened a first time (or the deadline passed); the
        streams are followed until ``close``. ``follow_stats`` tells the reconnections."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        first = asyncio.Semaphore(concurrency)  # the first openings, not the reconnections
        pending = len(specs)
        all_open = asyncio.Event()
        failed_first: list[int] = []
        started = time.perf_counter()
        self.following = True
        stats = self.follow_counts = {
            "reconnects": 0,
            "reasons": {},  # why a stream ended (shutdown, end, eof...)
            "errors": {},  # failed attempts (http 503, connection refused, no status frame...)
            "gap_max": 0.0,  # seconds from a stream's end to its next status frame
            "resumed": 0,  # reconnections that sent Last-Event-ID
        }

        def bump(table: str, key: str) -> None:
            stats[table][key] = stats[table].get(key, 0) + 1

        def opened_once(ok: bool, tag: int) -> None:
            nonlocal pending
            if not ok:
                failed_first.append(tag)
            pending -= 1
            if pending == 0:
                all_open.set()

        async def keep(tag: int, path: str, token: str) -> None:
            last: int | None = None
            lost_at: float | None = None
            is_first = True
            while self.following:
                resume = f"Last-Event-ID: {last}\r\n" if last is not None else ""
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
                    f"Authorization: Bearer {token}\r\n{resume}\r\n"
                ).encode("latin-1")
                ready: asyncio.Future[bool] = loop.create_future()
                proto = SSE(tag, request, self.events, ready)
                proto.gone = asyncio.Event()

                def factory(p: SSE = proto) -> SSE:
                    return p

                try:
                    if is_first:
                        async with first:
                            await asyncio.wait_for(
                                loop.create_connection(factory, host, port), ready_timeout
                            )
                            ok = await asyncio.wait_for(ready, ready_timeout)
                    else:
                        await asyncio.wait_for(
                            loop.create_connection(factory, host, port), ready_timeout
                        )
                        ok = await asyncio.wait_for(ready, ready_timeout)
                except (OSError, TimeoutError) as exc:
                    ok = False
                    proto.error = proto.error or f"{type(exc).__name__}"
                if not ok:
                    if proto.transport is not None:
                        proto.transport.abort()
                    if not self.following:
                        return
                    http = proto.closed if (proto.closed or "").startswith("http") else None
                    bump("errors", http or proto.error or proto.closed or "no status frame")
                    if is_first and loop.time() > deadline:
                        opened_once(False, tag)
                        return
                    await asyncio.sleep(0.2)
                    continue
                self.clients.append(proto)
                if is_first:
                    is_first = False
                    opened_once(True, tag)
                elif lost_at is not None:
                    stats["gap_max"] = max(stats["gap_max"], loop.time() - lost_at)
                    stats["resumed"] += bool(resume)
                await proto.gone.wait()
                if proto.ids:
                    last = max(proto.ids[-1], last or 0)
                if proto.transport is not None:
                    proto.transport.close()
                if not self.following:
                    return
                lost_at = loop.time()
                stats["reconnects"] += 1
                bump("reasons", proto.closed or "?")

        self.followers = [asyncio.create_task(keep(*spec)) for spec in specs]
        if specs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_open.wait(), max(1.0, deadline - loop.time()) + 5)
        return {
            "requested": len(specs),
            "opened": len(specs) - pending - len(failed_first),
            "failed": pending + len(failed_first),
            "seconds": time.perf_counter() - started,
        }

    def follow_stats(self) -> dict[str, Any]:
        return dict(self.follow_counts)

    def count(self) -> dict[str, Any]:
        closed: dict[str, int] = {}
        for c in self.clients:
            if c.closed:
                closed[c.closed] = closed.get(c.closed, 0) + 1
        return {"received": sum(len(c.ids) for c in self.clients), "closed": closed}

    def collect(self, reset: bool) -> dict[str, Any]:
        """Every client's receipts (ids and times as raw arrays) and the frames seen."""
        out = {
            "clients": [
                (c.tag, c.ids.tobytes(), c.times.tobytes(), c.closed, c.pings) for c in self.clients
            ],
            "events": dict(self.events),
        }
        if reset:
            for c in self.clients:
                c.ids = array("q")
                c.times = array("d")
            self.events.clear()
        return out

    async def close_all(self) -> dict[str, Any]:
        self.following = False
        for task in self.followers:
            task.cancel()
        self.followers = []
        for c in self.clients:
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0.5)
        n = len(self.clients)
        self.clients = []
        self.events.clear()
        return {"closed": n}


def usage() -> dict[str, Any]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"cpu": ru.ru_utime + ru.ru_stime, "rss_kib": rss}


async def serve(conn: Any) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def reader() -> None:  # a thread: the pipe stays blocking (large replies go in one send)
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = ("quit",)
            loop.call_soon_threadsafe(inbox.put_nowait, message)
            if message[0] == "quit":
                return

    threading.Thread(target=reader, name="commands", daemon=True).start()
    gen = Generator()
    while True:
        # The parent sends a command at least every few seconds during a run; after 15 minutes
        # of silence it is gone: stop by ourselves.
        try:
            command = await asyncio.wait_for(inbox.get(), 900)
        except TimeoutError:
            command = ("quit",)
        name, *rest = command
        try:
            reply = await handle(gen, name, rest)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        if reply is None:
            with contextlib.suppress(Exception):
                await gen.close_all()
            with contextlib.suppress(Exception):
                conn.send({"bye": True})
            return
        conn.send(reply)


async def handle(gen: Generator, name: str, rest: list[Any]) -> Any:
    if name == "connect":
        return await gen.connect(*rest)
    if name == "follow":
        return await gen.follow(*rest)
    if name == "follow_stats":
        return gen.follow_stats()
    if name == "count":
        return gen.count()
    if name == "collect":
        return gen.collect(*rest)
    if name == "close":
        return await gen.close_all()
    if name == "usage":
        return usage()
    if name == "quit":
        return None
    raise ValueError(f"unknown command {name!r}")


def main(conn: Any, nofile: int) -> None:
    """Process entry point (spawned by bench/live.py)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, nofile))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(conn))
    else:
        uvloop.run(serve(conn))
