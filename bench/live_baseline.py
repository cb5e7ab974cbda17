"""The baseline of ``bench/live.py``: a minimal plain-ASGI SSE broadcaster.

No framework, no policy, no database, no audit: ``POST /publish`` (a small JSON object) stamps
the event with an id and ``at`` (UTC, ISO), encodes one frame in the same shape as
``hypervision.live.hub.encode`` and appends it to every stream's queue; ``GET /stream`` sends
``retry`` + a status frame, then each queued frame as one body chunk, and a ``: ping`` comment
after ``HEARTBEAT`` seconds of silence (like the app, so that idle streams cost the same kind of
timer). ``GET /stream?idle=1`` is a stream that gets heartbeats only (the counterpart of the
app's idle clients, which subscribe to a topic nobody writes). Run it with uvicorn exactly as
``hypervision serve`` runs the app::

    python -m uvicorn live_baseline:app --app-dir bench --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from datetime import UTC, datetime
from typing import Any

HEARTBEAT = float(os.environ.get("BASELINE_HEARTBEAT_SECONDS", "15"))
STATUS = b'retry: 3000\nevent: status\ndata: {"mode": "live"}\n\n'


class Stream:
    __slots__ = ("frames", "gone", "wake")

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.gone = False


streams: set[Stream] = set()
idle_streams: set[Stream] = set()
last_id = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for s in list(streams | idle_streams):
                    s.gone = True
                    s.wake.set()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/stream" and method == "GET":
        await stream(scope, receive, send)
    elif path == "/publish" and method == "POST":
        await publish(receive, send)
    elif path == "/healthz":
        await reply(send, 200, b'{"status":"ok"}')
    else:
        await reply(send, 404, b'{"error":"not found"}')


async def reply(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def publish(receive: Any, send: Any) -> None:
    global last_id
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    payload = json.loads(b"".join(chunks) or b"{}")
    last_id += 1
    at = datetime.now(UTC).isoformat()
    data = json.dumps(
        {
            "type": "entry.create",
            "resource_type": "entry",
            "resource_id": payload.get("resource_id", ""),
            "at": at,
            **payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    frame = f"id: {last_id}\nevent: entry.create\ndata: {data}\n\n".encode()
    for s in streams:
        s.frames.append(frame)
        s.wake.set()
    await reply(send, 200, json.dumps({"id": last_id, "at": at}).encode())


async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    s = Stream()
    idle = b"idle=1" in scope.get("query_string", b"")
    (idle_streams if idle else streams).add(s)

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                s.gone = True
                s.wake.set()
                return

    watcher = asyncio.create_task(watch())
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": STATUS, "more_body": True})
        while not s.gone:
            if not s.frames:
                s.wake.clear()
                try:
                    async with asyncio.timeout(HEARTBEAT):
                        await s.wake.wait()
                except TimeoutError:
                    await send(
                        {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}
                    )
                continue
            await send(
                {"type": "http.response.body", "body": s.frames.popleft(), "more_body": True}
            )
    except OSError:
        pass
    finally:
        streams.discard(s)
        idle_streams.discard(s)
        watcher.cancel()
