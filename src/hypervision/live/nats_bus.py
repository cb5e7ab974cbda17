"""NATS as the live bus (docs/adr/0019): PostgreSQL's NOTIFY wake-ups without its commit lock.

After a commit, the writing process publishes the transaction's highest outbox id to a
JetStream subject (the server acknowledges it); every replica's hub holds a plain NATS
subscription on that subject and is woken by each message. A message carries an id, never a
payload: the hub reads the committed events from the outbox itself, as with NOTIFY, so a lost
or repeated message costs a delay or a useless read, never an event.

The commit never waits for NATS: the after-commit waker only marks that something is to be
published and wakes a publishing task, which sends one message per burst of commits. When the
connection is lost the streams are told ``polling`` and the hub polls the outbox; the client
reconnects in the background, and then the streams are told ``live``, the hub catches up and a
commit that could not be announced meanwhile is announced.

Notes (``Hub.note``) go on ``<subject>.notes``, a plain NATS subject that no JetStream stream
holds: delivered to the replicas connected at the time, never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from hypervision.events import outbox
from hypervision.live.notes import Notes

log = logging.getLogger("hypervision.live")

STREAM_MAX_MESSAGES = 10_000  # wake-ups only: a short history for operators, in memory
STREAM_MAX_AGE_SECONDS = 3600.0


def stream_name(subject: str) -> str:
    """The JetStream stream holding ``subject`` when the application creates it."""
    return subject.replace(".", "_").upper()


class NatsBus:
    def __init__(
        self,
        *,
        wake: Callable[[int | None], None],
        set_mode: Callable[[str], None],
        notes: Notes | None = None,
        servers: list[str],
        subject: str,
        retry_seconds: int = 2,
        connect_timeout: int = 2,
        ping_seconds: int = 5,
    ) -> None:
        self.wake = wake
        self.set_mode = set_mode
        self.servers = servers
        self.subject = subject
        self.notes = notes
        self.retry_seconds = retry_seconds
        self.connect_timeout = connect_timeout
        self.ping_seconds = ping_seconds
        self.client = Client()
        self.connected = False  # connected and subscribed: the hub is live
        self.acknowledged = False  # a stream holds the subject: publications are acknowledged
        self.published = 0  # messages the server accepted, for tests and operators
        self._js: JetStreamContext | None = None
        self._latest: int | None = None  # the last committed transaction's highest outbox id
        self._unsent = False  # a commit not yet announced
        self._kick = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, waiting at most ``connect_timeout``: past it the hub polls and the client
        goes on trying in the background."""
        self._loop = asyncio.get_running_loop()
        outbox.notify_in_transaction(False)
        outbox.add_waker(self._committed)
        self._spawn(self._publish_loop(), "hypervision-bus-publish")
        connecting = self._spawn(self._connect(), "hypervision-bus")
        await asyncio.wait({connecting}, timeout=self.connect_timeout)
        if not self.connected:
            log.warning("live bus unavailable (NATS): polling")
            self.set_mode("polling")

    async def stop(self) -> None:
        self._stopping = True
        if self.notes is not None:
            await self.notes.stop()
        outbox.remove_waker(self._committed)
        outbox.notify_in_transaction(True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.connected = False
        if not self.client.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), 5)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- connection -----------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            await self.client.connect(
                servers=self.servers,
                name="hypervision-live",
                allow_reconnect=True,
                max_reconnect_attempts=-1,  # for ever, the first connection too
                reconnect_time_wait=self.retry_seconds,
                connect_timeout=self.connect_timeout,
                ping_interval=self.ping_seconds,  # a frozen server is noticed within ~3 pings
                max_outstanding_pings=2,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
            self._js = self.client.jetstream(timeout=self.connect_timeout)
            # Replayed by the client after each reconnection.
            await self.client.subscribe(self.subject, cb=self._message)
            if self.notes is not None:
                await self.client.subscribe(f"{self.subject}.notes", cb=self._note)
        except Exception:
            log.exception("live bus (NATS) cannot start: polling")  # a bad URL, credentials
            return
        await self._up()

    async def _up(self) -> None:
        self.acknowledged = await self._ensure_stream()
        if self._stopping or not self.client.is_connected:
            return
        self.connected = True
        self.set_mode("live")
        self.wake(None)  # catch up on what was committed while we were away
        self._kick.set()  # and announce what this process committed meanwhile

    async def _ensure_stream(self) -> bool:
        """A stream must hold the subject for publications to be acknowledged; create one
        (in memory, bounded) unless an operator already has. Without JetStream, messages
        still reach the subscribers, unacknowledged."""
        assert self._js is not None
        try:
            try:
                await self._js.find_stream_name_by_subject(self.subject)
            except NotFoundError:
                await self._js.add_stream(
                    StreamConfig(
                        name=stream_name(self.subject),
                        subjects=[self.subject],
                        storage=StorageType.MEMORY,
                        max_msgs=STREAM_MAX_MESSAGES,
                        max_age=STREAM_MAX_AGE_SECONDS,
                        discard=DiscardPolicy.OLD,
                    )
                )
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("live bus: no JetStream stream for its subject (%s)", type(exc).__name__)
            return False
        return True

    async def _disconnected(self) -> None:
        if self._stopping:
            return
        self.connected = False
        self.set_mode("polling")

    async def _reconnected(self) -> None:
        if not self._stopping:
            self._spawn(self._up(), "hypervision-bus-up")

    async def _error(self, exc: Exception) -> None:
        if self._stopping:
            return
        if self.connected:
            log.warning("live bus error (%s)", type(exc).__name__)
        else:
            log.info("live bus still down (%s)", type(exc).__name__)

    async def _message(self, msg: Msg) -> None:
        text = msg.data.decode("ascii", "replace")
        self.wake(int(text) if text.isdigit() else None)

    async def _note(self, msg: Msg) -> None:
        if self.notes is not None:
            self.notes.received(msg.data)

    def publish_note(self, note: dict[str, Any]) -> None:
        text = self.notes.encode(note) if self.notes is not None else None
        if text is not None and self.notes is not None and self.connected:
            self.notes.send(self._send_note(text.encode()))

    async def _send_note(self, data: bytes) -> None:
        try:
            await self.client.publish(f"{self.subject}.notes", data)
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("live bus: note not sent (%s)", type(exc).__name__)

    # --- publishing -----------------------------------------------------------------------

    def _committed(self, last_id: int) -> None:
        """The after-commit waker: never blocks the commit, never fails it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        self._latest = last_id
        self._unsent = True
        loop.call_soon_threadsafe(self._kick.set)

    async def _publish_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            if not (self._unsent and self.connected):
                continue  # nothing new, or down: published again when the bus is back
            self._unsent = False
            payload = str(self._latest or "").encode()
            try:
                if self.acknowledged and self._js is not None:
                    await self._js.publish(self.subject, payload, timeout=self.connect_timeout)
                else:
                    await self.client.publish(self.subject, payload)
            except (nats.errors.Error, TimeoutError) as exc:
                # The other hubs find the events all the same, at their next read of the
                # outbox; try again with the next commit or when the connection is back.
                self._unsent = True
                log.info("live bus: wake-up not published (%s)", type(exc).__name__)
                continue
            self.published += 1
