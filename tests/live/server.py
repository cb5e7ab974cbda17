"""A real HTTP server on loopback for streaming tests, and an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def serve(app: FastAPI, *, lifespan: bool = False) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in this event loop; yields its URL.
    ``lifespan``: run the application's start-up and shut-down as ``hypervision serve`` does."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on" if lifespan else "off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise AssertionError("the server stopped during start-up (Application startup failed)")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await app.state.hub.stop()
        await asyncio.wait_for(task, 10)


@dataclass
class Event:
    id: int | None
    event: str
    data: dict[str, Any]


@dataclass
class Stream:
    """Reads an SSE response in the background; ``events`` fills as they arrive."""

    response: httpx.Response
    events: list[Event] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    pings: int = 0

    async def pump(self) -> None:
        current: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self.pings += 1
                elif line == "":
                    if "event" in current or "data" in current:
                        ident = current.get("id")
                        self.events.append(
                            Event(
                                int(ident) if ident else None,
                                current.get("event", "message"),
                                json.loads(current.get("data") or "{}"),
                            )
                        )
                    current = {}
                else:
                    name, _, value = line.partition(":")
                    current[name] = value.removeprefix(" ")
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass
        finally:
            self.ended.set()

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.event == kind]

    def ids(self) -> list[int]:
        return [e.id for e in self.events if e.id is not None]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async def poll() -> None:
            while not predicate(self):
                if self.ended.is_set() and not predicate(self):
                    raise AssertionError(f"stream ended first; got {self.events}")
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def open_stream(
    base: str, headers: dict[str, str], query: str = "", extra: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream(
            "GET", f"/api/v1/stream{query}", headers={**headers, **(extra or {})}
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        stream = Stream(response)
        task = asyncio.create_task(stream.pump())
        await stream.wait_for(lambda s: bool(s.of("status")))
        try:
            yield stream
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
