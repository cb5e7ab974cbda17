"""What wakes the hub across processes.

- in-process (SQLite, one process): the after-commit hook is enough; nothing to run.
- PostgreSQL: a dedicated connection LISTENs on ``hv_outbox``; NOTIFY carries ids only. If the
  connection drops, the hub switches to polling the outbox and the streams are told; the bus
  reconnects in the background and switches back, without loss (the hub reads by id).
- NATS (``live.nats_bus``, docs/adr/0019): the same wake-ups, published after commit to a
  JetStream subject instead of NOTIFY inside the transaction; the same degraded mode.

Both buses also carry *notes* (``Hub.note``: an import's progress) to the other replicas, on a
channel or subject of their own, outside any transaction and never stored: each replica skips
its own (it has handed them already) and a note lost while the bus is down is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import asyncpg

from hypervision.config import Settings
from hypervision.events import outbox
from hypervision.events.outbox import CHANNEL
from hypervision.live.nats_bus import NatsBus
from hypervision.live.notes import NOTES_CHANNEL, Notes

log = logging.getLogger("hypervision.live")


class Bus(Protocol):
    async def stop(self) -> None: ...


class Wakeable(Protocol):
    """What the bus needs of the hub (the hub imports the bus, not the other way round)."""

    settings: Settings

    def wake(self, _last_id: int | None = None) -> None: ...

    def set_mode(self, mode: str) -> None: ...

    def hand_note(self, note: dict[str, Any]) -> None: ...


class InProcessBus:
    async def stop(self) -> None:
        return None


class PostgresBus:
    def __init__(self, hub: Wakeable, dsn: str, retry_seconds: float = 2.0) -> None:
        self.hub = hub
        self.dsn = dsn
        self.retry_seconds = retry_seconds
        self.connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.notes = Notes(hub)
        self._using = asyncio.Lock()  # one statement at a time on the listening connection

    async def start(self) -> None:
        outbox.notify_in_transaction(True)
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("live bus unavailable (%s): polling", type(exc).__name__)
            self.hub.set_mode("polling")
            self._lost.set()
        self._task = asyncio.create_task(self._watch(), name="hypervision-bus")

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self.dsn, timeout=5)
        try:
            await connection.add_listener(CHANNEL, self._notified)
            await connection.add_listener(NOTES_CHANNEL, self._noted)
        except BaseException:
            await connection.close(timeout=2)
            raise
        connection.add_termination_listener(self._terminated)
        self.connection = connection
        self._lost.clear()
        self.hub.set_mode("live")
        self.hub.wake()  # catch up on what was committed while we were away

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.hub.wake(int(payload) if payload.isdigit() else None)

    def _noted(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notes.received(payload)

    def publish_note(self, note: dict[str, Any]) -> None:
        text = self.notes.encode(note)
        if text is not None and self.connection is not None:
            self.notes.send(self._notify(text))

    async def _notify(self, text: str) -> None:
        async with self._using:
            connection = self.connection
            if connection is None:
                return
            try:
                await connection.execute("SELECT pg_notify($1, $2)", NOTES_CHANNEL, text)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.info("live bus: note not sent (%s)", type(exc).__name__)

    def _terminated(self, _conn: Any) -> None:
        self.connection = None
        self.hub.set_mode("polling")
        self._lost.set()

    async def _watch(self) -> None:
        while True:
            await self._lost.wait()
            await asyncio.sleep(self.retry_seconds)
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                log.info("live bus still down (%s)", type(exc).__name__)

    async def stop(self) -> None:
        await self.notes.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.remove_termination_listener(self._terminated)
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)


async def start_bus(hub: Wakeable) -> Bus:
    settings = hub.settings
    url = settings.effective_database_url
    kind = settings.live_bus
    if kind == "auto":
        kind = "postgres" if url.startswith("postgresql") else "inprocess"
    if kind == "postgres":
        bus = PostgresBus(hub, url.replace("postgresql+asyncpg://", "postgresql://", 1))
        await bus.start()
        return bus
    if kind == "nats":
        nats = NatsBus(
            wake=hub.wake,
            set_mode=hub.set_mode,
            notes=Notes(hub),
            servers=settings.nats_servers,
            subject=settings.nats_subject,
        )
        await nats.start()
        return nats
    return InProcessBus()
