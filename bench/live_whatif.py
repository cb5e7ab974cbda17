"""A what-if experiment for ``bench/live.py --what-if timeout`` — not the product.

Starts the app exactly as ``hypervision serve`` does (same process, one uvicorn worker), after
replacing ``hypervision.live.api._events`` with a copy that differs in one line: it waits for
the next frame with ``asyncio.timeout`` instead of ``asyncio.wait_for``. On Python 3.11
``wait_for`` wraps the awaited coroutine in a new Task every time a stream goes back to
waiting — once per delivered event per stream — which the py-spy profile of the real server
shows as its largest single cost. This measures what that line is worth; the code in
``src/`` is not touched.

    python bench/live_whatif.py serve --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from hypervision.live import api
from hypervision.live.hub import Hub, Position, Subscriber, status_frame


async def _events_with_timeout(
    hub: Hub, sub: Subscriber, resume: int | None, upto: Position, heartbeat: float
) -> AsyncIterator[str]:
    try:
        yield "retry: 3000\n" + status_frame(hub.mode)
        last = upto
        if resume is not None:
            for frame in await hub.backlog(sub, resume, upto):
                yield frame.text
        while True:
            if sub.closed:
                yield f"event: {sub.closed}\ndata: {{}}\n\n"
                return
            if not sub.frames:
                sub.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(heartbeat):  # the one changed line
                        await sub.wake.wait()
                if not sub.frames and not sub.closed:
                    yield ": ping\n\n"
                continue
            frame = sub.frames.popleft()
            if frame.at is None:
                yield frame.text
            elif frame.at > last:
                last = frame.at
                yield frame.text
    finally:
        hub.unsubscribe(sub)


if __name__ == "__main__":
    api._events = _events_with_timeout  # looked up by name when a stream opens
    from hypervision.cli import main

    sys.argv = ["hypervision", *sys.argv[1:]]
    main()
