"""The hub: reads committed outbox events in order and fans them out to live streams.

One hub per process. It is woken after a local commit and, on PostgreSQL, by NOTIFY from any
replica; without a bus it polls. Events go out in ``(tx, id)`` order: on PostgreSQL ``tx`` is
the writing transaction's id, and an event is delivered only once every transaction with a
smaller id has ended (below the snapshot's ``xmin``), so a transaction that commits late is
never skipped and nothing is delivered twice, without any lock between writers (the technique
of PgQ; docs/adr/0018). On SQLite writers are serialised: ``tx`` is 0 and ids commit in order.

Each event is checked once per *group* of subscribers that share the same policy attributes,
encoded once, then queued to each subscriber of the group whose topic filter matches. A
subscriber whose queue is full gets ``resync`` and is closed. Each delivery batch leaves one
audit record, written before anything is sent.

Beside the events, *notes* (an import's progress, docs/adr/0029) go to the streams of one
person's one session: never stored, never resumed, carrying nothing protected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import BigInteger, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision import criteria
from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.db import transaction, utcnow
from hypervision.events import outbox
from hypervision.events.models import OutboxEvent
from hypervision.identity.models import ApiToken, AuthSession, User
from hypervision.identity.principal import Principal
from hypervision.live.audit_feed import BATCH as AUDIT_BATCH
from hypervision.live.audit_feed import AuditFeed, AuditFilter
from hypervision.live.bus import start_bus
from hypervision.live.current import Labels, LabelSource, current_labels, hidden_fields, sees
from hypervision.live.direct import DirectWriter
from hypervision.live.frames import Frame as Frame  # re-exported
from hypervision.live.frames import Position as Position  # re-exported
from hypervision.live.gates import SECURITY, require
from hypervision.live.gates import passes as passes  # re-exported
from hypervision.policy.labels import Label
from hypervision.policy.rules import Subject, can_see

log = logging.getLogger("hypervision.live")
BATCH = 500
HELD_RETRY_SECONDS = 0.02
ORDER = tuple_(OutboxEvent.tx, OutboxEvent.id)
REVALIDATE_SECONDS = 60.0
NOTE_EVENT = re.compile(r"^[a-z]+\.[a-z]+$")  # e.g. import.progress: an SSE event name


START: Position = (-1, 0)  # before every event
PING = Frame(None, b": ping\n\n")


@dataclass(frozen=True)
class Summary:
    """What a live event's payload says about its record (``logbook.entries.summary``), as
    the attributes the criteria read: the category and the bounding box."""

    category: Any = None
    min_lon: float | None = None
    min_lat: float | None = None
    max_lon: float | None = None
    max_lat: float | None = None

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Summary:
        box = payload.get("bbox")
        corners = tuple(box) if isinstance(box, list | tuple) and len(box) == 4 else (None,) * 4
        return cls(payload.get("category"), *corners)


@dataclass(frozen=True)
class Filters:
    """A stream's topics, then the same criteria as the feed's query specification
    (``hypervision.criteria``), tested on each event's summary: the payload carries no
    content, so only what it says (category, bounding box) can be asked (ADR 0016)."""

    topics: frozenset[str] | None = None  # None: every topic of the hub
    categories: frozenset[str] = frozenset()
    bbox: tuple[float, float, float, float] | None = None
    audit: AuditFilter | None = None  # an audit stream (``live.audit_feed``): no events

    @cached_property
    def criteria(self) -> tuple[criteria.Criterion, ...]:
        found: list[criteria.Criterion] = []
        if self.categories:
            found.append(criteria.OneOf("category", tuple(sorted(self.categories))))
        if self.bbox is not None:
            found.append(criteria.BoxMeets(self.bbox))
        return tuple(found)

    def accepts(self, event: OutboxEvent) -> bool:
        if self.audit is not None:
            return False
        if (
            self.topics is not None
            and event.resource_type not in self.topics
            and f"{event.resource_type}:{event.resource_id}" not in self.topics
        ):  # a topic is a kind (``product``) or one record of it (``product:<id>``, ADR 0047)
            return False
        return criteria.test(self.criteria, Summary.of(event.payload), NO_CONTEXT)


NO_CONTEXT = criteria.Context()


@dataclass(eq=False)
class Subscriber:
    principal: Principal
    subject: Subject
    filters: Filters
    limit: int
    heartbeat: float = 15.0  # seconds of silence before the hub queues a ping
    frames: deque[Frame] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: str | None = None  # why: "resync", "revoked", "shutdown", "gone"
    sent_at: float = field(default_factory=time.monotonic)  # last write to the client
    last: Position = (0, 0)  # the last event written: events go once, in order
    # Set by the stream's task while it waits with nothing queued: frames then go straight
    # to the connection (live.direct), no task woken.
    direct: DirectWriter | None = None

    group: tuple[object, ...] = ()  # subscribers with the same policy attributes

    def __post_init__(self) -> None:
        s = self.subject
        self.group = (s.allowed_levels, s.groups, s.organisation, s.ancestry)

    def push(self, frame: Frame) -> None:
        if self.closed:
            return
        direct = self.direct
        if direct is not None and not self.frames:
            at = frame.at
            if at is not None and at <= self.last:
                return
            try:
                written = direct.write(frame.data)
            except Exception:  # never the hub's problem: the stream's task tries, and ends
                log.exception("live direct write failed")
                written = False
            if written:
                if at is not None:
                    self.last = at
                self.sent_at = time.monotonic()
                return
        if len(self.frames) >= self.limit:
            self.close("resync")  # too slow: never grow without bound
            return
        self.frames.append(frame)
        self.wake.set()

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = reason
            self.frames.clear()
            self.wake.set()


class Follower(Protocol):
    """Told, after the hub has queued each batch's frames, of the events it read (in delivery
    order), and of each subscriber that leaves: a space's pushed modules (docs/adr/0052)."""

    def delivered(self, rows: list[OutboxEvent]) -> None: ...

    def left(self, sub: Subscriber) -> None: ...

    async def stop(self) -> None: ...


def label_of(data: dict[str, Any]) -> Label:
    return Label(
        level=str(data.get("level", "")),
        need_to_know=frozenset(data.get("need_to_know", ())),
        audience=frozenset(data.get("audience", ())),
        owner=str(data.get("owner", "")),
    )


def visible(subject: Subject, event: OutboxEvent) -> bool:
    """Every label the event carries must allow the subject (a comment carries its entry's)."""
    labels = [event.label, *event.label.get("and", ())]
    if event.label.get("system"):
        return False
    return all(can_see(subject, label_of(data)) for data in labels)


def gate_of(event: OutboxEvent) -> dict[str, Any] | None:
    """The role and scope an event is reserved to (security alerts: ``gates.SECURITY``), or
    None. Such events name no protected record: the gate decides (``gates.passes``)."""
    gate = event.label.get("gate")
    return gate if isinstance(gate, dict) else None


def encode(event: OutboxEvent, hide: tuple[str, ...] = ()) -> Frame:
    """The event as an SSE frame; ``hide``: payload fields naming records the reader may not
    see, sent as null (``live.current``)."""
    data = json.dumps(
        {
            "type": event.type,
            "resource_type": event.resource_type,
            "resource_id": str(event.resource_id),
            "at": event.created_at.isoformat(),
            **event.payload,
            **dict.fromkeys(hide),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return Frame(position(event), f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode())


def position(event: OutboxEvent) -> Position:
    return (event.tx, event.id)


def status_frame(mode: str) -> bytes:
    return f"event: status\ndata: {json.dumps({'mode': mode})}\n\n".encode()


class Hub:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        topics: frozenset[str],
        labels: LabelSource,
    ) -> None:
        """``topics``: the kinds whose events streams carry; ``labels``: how to read the
        current labels of records (both from the registry of protected kinds)."""
        self.settings = settings
        self.sessions = sessions
        self.topics = topics
        self.labels = labels
        self.subscribers: set[Subscriber] = set()
        # Subscribers by policy attributes, then by filters: an event is checked once per
        # group and once per distinct filter, never once per stream (10,000 idle streams
        # whose topics an entry does not concern cost one test, not 10,000).
        self.groups: dict[tuple[object, ...], dict[Filters, set[Subscriber]]] = {}
        self.cursor: Position = START  # last event delivered
        self.planned: Position = START  # last event whose recipients are fixed
        self.held = False  # committed events wait for an older transaction to end
        self.reads = {"settled": 0, "held": 0}  # outbox reads, by whether events waited
        self.mode = "live"  # or "polling" while the bus is down
        # For /metrics (docs/adr/0032): frames queued to streams (live, and replayed to
        # resuming streams), and since when the hub has known of committed events it has not
        # delivered yet (None: caught up, as far as it was told).
        self.delivered = 0
        self.replayed = 0
        self.behind_since: float | None = None
        self._woken_at: float | None = None  # the first wake-up not yet taken by a round
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._starter: asyncio.Task[None] | None = None
        self._retry_now = asyncio.Event()
        self.bus: Any = None
        self.draining = False  # the process is stopping: streams go elsewhere
        self.audit = AuditFeed(self)  # the audit topic, for security officers (ADR 0039)
        self.followers: list[Follower] = []

    # --- life cycle -----------------------------------------------------------------------

    async def ensure_started(self, session: AsyncSession | None = None) -> None:
        """Start once. Pass the caller's session when it holds a transaction (SQLite has one
        writer: a second connection would wait for it)."""
        async with self._lock:
            if self._task is not None:
                return
            self._loop = asyncio.get_running_loop()
            if session is not None:
                self.cursor = await _horizon(session)
            else:
                async with self.sessions() as own:
                    self.cursor = await _horizon(own)
            outbox.add_waker(self.wake)
            self.bus = await start_bus(self)
            self._task = asyncio.create_task(self._run(), name="hypervision-hub")
            self._pinger = asyncio.create_task(self._ping(), name="hypervision-hub-ping")

    @property
    def started(self) -> bool:
        return self._task is not None

    def start_in_background(
        self, first_retry: float = 0.5, max_retry: float = 10.0
    ) -> asyncio.Task[None] | None:
        """Start without waiting for the database: a replica started while it is down stays up
        (``/readyz`` answers 503) and starts its hub when it comes back (docs/adr/0015)."""

        async def keep_trying() -> None:
            delay = first_retry
            while True:
                try:
                    await self.ensure_started()
                    return
                except Exception as exc:  # noqa: BLE001 - any failure: try again later
                    log.warning("live hub not started (%s); retrying", type(exc).__name__)
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._retry_now.wait()
                delay = min(delay * 2, max_retry)

        if self._task is not None:
            return None
        if self._starter is None or self._starter.done():
            self._starter = asyncio.create_task(keep_trying(), name="hypervision-hub-start")
        return self._starter

    def retry_start(self) -> None:
        """The database answers again (``/readyz`` saw it): try starting now, not at the next
        back-off."""
        self._retry_now.set()

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
            self._starter = None
        outbox.remove_waker(self.wake)
        await self.audit.stop()
        for sub in list(self.subscribers):
            sub.close("shutdown")
        if self.bus is not None:
            await self.bus.stop()
        for task in (self._pinger, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._pinger = None
        for follower in self.followers:
            await follower.stop()

    def drain(self) -> None:
        """The process is being stopped (SIGTERM, ``app.drain_on_sigterm``): every stream is
        told ``shutdown`` and ends, so that its client reconnects to another replica and
        resumes from its last event id; streams asked for from now on are refused (503)."""
        self.draining = True
        for sub in list(self.subscribers):
            sub.close("shutdown")

    def wake(self, _last_id: int | None = None) -> None:
        """Safe from any thread or callback."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        if self._woken_at is None:
            self._woken_at = time.monotonic()
        self._wake.set()

    def lag_seconds(self) -> float:
        """How long committed events the hub was told of (a local commit, the bus) have
        waited undelivered: 0 when it has caught up. Events of another replica while the bus
        is down count only from the poll that finds them."""
        since = self.behind_since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def set_mode(self, mode: str) -> None:
        """The bus says whether it is up; streams are told, polling takes over when down."""
        if mode == self.mode:
            return
        self.mode = mode
        log.warning("live bus %s", "back: live" if mode == "live" else "down: polling the outbox")
        for sub in list(self.subscribers):
            sub.push(Frame(None, status_frame(mode)))
        self.wake()

    # --- subscribers ----------------------------------------------------------------------

    def subscribe(
        self, principal: Principal, filters: Filters, heartbeat: float | None = None
    ) -> Subscriber:
        if filters.audit is not None:  # the audit topic: the same gate as security alerts
            require(principal, SECURITY)
        if filters.topics is None:  # every topic this hub carries
            filters = replace(filters, topics=self.topics)
        sub = Subscriber(
            principal=principal,
            subject=Subject.of(self.settings, principal),
            filters=filters,
            # An audit stream takes the trail in batches of up to AUDIT_BATCH records: room
            # for a few before it counts as too slow (ADR 0039).
            limit=max(self.settings.live_queue_size, 4 * AUDIT_BATCH)
            if filters.audit is not None
            else self.settings.live_queue_size,
            heartbeat=heartbeat or self.settings.live_heartbeat_seconds,
        )
        self.subscribers.add(sub)
        self.groups.setdefault(sub.group, {}).setdefault(sub.filters, set()).add(sub)
        if self.draining:  # opened while the process stops: told at once
            sub.close("shutdown")
        return sub

    def resume_point(self) -> Position:
        """Up to where a stream subscribing now must read the outbox itself: everything later
        reaches it live. Call right after ``subscribe``, with no await in between."""
        return max(self.cursor, self.planned)

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        for follower in self.followers:
            try:
                follower.left(sub)
            except Exception:
                log.exception("live follower failed")
        group = self.groups.get(sub.group)
        members = group.get(sub.filters) if group is not None else None
        if group is not None and members is not None:
            members.discard(sub)
            if not members:
                del group[sub.filters]
            if not group:
                del self.groups[sub.group]

    async def _ping(self) -> None:
        """Queue ``: ping`` to every stream silent for its heartbeat (keeps proxies from
        closing it): one timer for all the streams, none per stream."""
        while True:
            beats = [s.heartbeat for s in self.subscribers]
            await asyncio.sleep(min(max(min(beats, default=5.0) / 4, 0.02), 5.0))
            now = time.monotonic()
            for sub in list(self.subscribers):
                if not sub.frames and now - sub.sent_at >= sub.heartbeat:
                    sub.push(PING)

    # --- dispatch -------------------------------------------------------------------------

    async def _run(self) -> None:
        checked = time.monotonic()
        while True:
            timeout = self.settings.live_poll_seconds if self.mode == "polling" else 5.0
            if self.held:  # no commit announces the end of a transaction without events
                timeout = HELD_RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            woken, self._woken_at = self._woken_at, None
            if woken is not None and (self.behind_since is None or woken < self.behind_since):
                self.behind_since = woken
            try:
                while await self.dispatch():
                    pass
                if not self.held:  # caught up, but for wake-ups that came meanwhile
                    self.behind_since = self._woken_at
                if time.monotonic() - checked > REVALIDATE_SECONDS:
                    checked = time.monotonic()
                    await self.revalidate()
            except Exception:
                log.exception("live dispatch failed; will retry")
                await asyncio.sleep(1)

    async def dispatch(self) -> bool:
        """Deliver the next batch of committed events; True when a full batch was read."""
        async with self.sessions() as session:
            rows, self.held = await _settled(session, self.cursor)
            self.reads["held" if self.held else "settled"] += 1
            labels = (
                await current_labels(session, rows, own=False, source=self.labels) if rows else {}
            )
        if not rows:
            return False
        plan = self.plan(rows, labels)
        # Same synchronous step as the plan: a stream that subscribes from now on is not in
        # it, and resumes up to here from the outbox instead (see live.api).
        self.planned = max(self.planned, position(rows[-1]))
        deliveries = sum(len(targets) for _, targets in plan)
        if deliveries:
            delivered = [event for event, targets in plan if targets]
            async with transaction(self.sessions) as session:  # no audit, no delivery
                await audit_delivery(session, delivered, deliveries, len(self.subscribers))
        self.cursor = position(rows[-1])
        self.delivered += deliveries
        for event in rows:
            if event.type == "identity.revoke":
                self.revoke(event.payload)
        for _, targets in plan:
            for sub, frame in targets:
                sub.push(frame)
        for follower in self.followers:
            try:
                follower.delivered(rows)
            except Exception:  # a follower's bug never stops delivery, nor the others
                log.exception("live follower failed")
        return len(rows) == BATCH

    def plan(
        self, rows: Iterable[OutboxEvent], labels: Labels
    ) -> list[tuple[OutboxEvent, list[tuple[Subscriber, Frame]]]]:
        """Who receives what: the policy is checked once per event and group (groups are kept
        up to date at subscribe time, not rebuilt per batch), and each event is encoded once
        per set of references hidden from a group (``labels``: those references now)."""
        plan: list[tuple[OutboxEvent, list[tuple[Subscriber, Frame]]]] = []
        for event in rows:
            if event.label.get("system"):
                plan.append((event, []))
                continue
            targets: list[tuple[Subscriber, Frame]] = []
            frames: dict[tuple[str, ...], Frame] = {}
            accepted: dict[Filters, bool] = {}  # most streams share a few filters
            gate = gate_of(event)
            for group in self.groups.values():
                first = next(iter(next(iter(group.values()))))
                if not visible(first.subject, event):
                    continue
                frame: Frame | None = None
                for filters, members in group.items():
                    ok = accepted.get(filters)
                    if ok is None:
                        ok = accepted[filters] = filters.accepts(event)
                    if not ok:
                        continue
                    if frame is None:
                        hide = hidden_fields(first.subject, event, labels)
                        frame = frames.get(hide) or frames.setdefault(hide, encode(event, hide))
                    for s in members:
                        if not s.closed and (gate is None or passes(s.principal, gate)):
                            targets.append((s, frame))
            plan.append((event, targets))
        return plan

    # --- notes ----------------------------------------------------------------------------

    def note(self, principal: Principal, event: str, data: dict[str, Any]) -> None:
        """Hand ``data`` as an SSE ``event`` (no id) to the open streams of ``principal``'s
        session, on every replica (through the bus when it carries notes). Safe to call from
        synchronous code; a note that finds no stream, or is lost, costs nothing else."""
        if principal.user_id is None or principal.session_id is None:
            return  # a token's streams are not a browser's page: no notes
        note = {
            "user": str(principal.user_id),
            "session": str(principal.session_id),
            "event": event,
            "data": data,
        }
        self.hand_note(note)
        publish = getattr(self.bus, "publish_note", None)
        if publish is not None:
            publish(note)

    def hand_note(self, note: dict[str, Any]) -> None:
        """A note (from this process or from the bus) to the streams it is meant for."""
        event, data = str(note.get("event", "")), note.get("data")
        if not NOTE_EVENT.match(event) or not isinstance(data, dict):
            return
        user, session = note.get("user"), note.get("session")
        frame: Frame | None = None
        for sub in self.subscribers:
            p = sub.principal
            if str(p.user_id) == user and p.session_id is not None and str(p.session_id) == session:
                if frame is None:
                    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                    frame = Frame(None, f"event: {event}\ndata: {body}\n\n".encode())
                sub.push(frame)

    def revoke(self, payload: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            principal = sub.principal
            if str(principal.user_id) != payload.get("user_id"):
                continue
            session_id = payload.get("session_id")
            if session_id is None or str(principal.session_id) == session_id:
                sub.close("revoked")

    async def revalidate(self) -> None:
        """Close streams whose session or token has expired or been revoked, or whose account
        is disabled (what no event announces, e.g. the absolute time-out). One query for all."""
        subs = [s for s in self.subscribers if not s.closed and s.principal.user_id]
        if not subs:
            return
        now = utcnow()
        session_ids = {s.principal.session_id for s in subs if s.principal.session_id}
        token_ids = {s.principal.token_id for s in subs if s.principal.token_id}
        async with self.sessions() as session:
            live_sessions = (
                set(
                    await session.scalars(
                        select(AuthSession.id)
                        .join(User, User.id == AuthSession.user_id)
                        .where(
                            AuthSession.id.in_(session_ids),
                            AuthSession.revoked_at.is_(None),
                            AuthSession.expires_at > now,
                            User.is_active,
                        )
                    )
                )
                if session_ids
                else set()
            )
            live_tokens = (
                set(
                    await session.scalars(
                        select(ApiToken.id)
                        .join(User, User.id == ApiToken.user_id)
                        .where(
                            ApiToken.id.in_(token_ids),
                            ApiToken.revoked_at.is_(None),
                            ApiToken.expires_at > now,
                            User.is_active,
                        )
                    )
                )
                if token_ids
                else set()
            )
        for sub in subs:
            p = sub.principal
            if (p.session_id and p.session_id not in live_sessions) or (
                p.token_id and p.token_id not in live_tokens
            ):
                sub.close("revoked")

    async def backlog(self, sub: Subscriber, since: int, upto: Position) -> list[Frame]:
        """Events after the event ``since`` (an outbox id, 0 for the start; what Last-Event-ID
        carries) up to position ``upto`` that this subscriber may see, in delivery order (for
        a client resuming); audited as one batch. An event is replayed only when its record
        is still visible to the subscriber under its label *now* (it may have been raised
        since), and references to records now hidden are nulled. An id that names no event
        replays nothing (no client was ever sent one)."""
        frames: list[Frame] = []
        delivered: list[OutboxEvent] = []
        last: Position | None = START
        if since:
            async with self.sessions() as session:
                tx = await session.scalar(select(OutboxEvent.tx).where(OutboxEvent.id == since))
            last = None if tx is None else (tx, since)
        while last is not None and last < upto:
            async with self.sessions() as session:
                rows = list(
                    await session.scalars(
                        select(OutboxEvent)
                        .where(tuple_(*last) < ORDER, tuple_(*upto) >= ORDER)
                        .order_by(*ORDER.clauses)
                        .limit(BATCH)
                    )
                )
                now = (
                    await current_labels(session, rows, own=True, source=self.labels)
                    if rows
                    else {}
                )
            if not rows:
                break
            for event in rows:
                gate = gate_of(event)
                if gate is not None:
                    shown = passes(sub.principal, gate) and visible(sub.subject, event)
                else:
                    shown = visible(sub.subject, event) and sees(
                        sub.subject, now, event.resource_type, event.resource_id
                    )
                if shown and sub.filters.accepts(event):
                    delivered.append(event)
                    frames.append(encode(event, hidden_fields(sub.subject, event, now)))
            last = position(rows[-1])
        if delivered:
            async with transaction(self.sessions) as session:
                await audit_delivery(session, delivered, len(delivered), 1, sub.principal)
            self.replayed += len(delivered)
        return frames


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# The oldest transaction of this database still running, as of the statement's snapshot
# (its ``xip``, less the transactions of backends known to be connected to another database,
# which cannot write this outbox), else the snapshot's ``xmax``: every transaction below it
# has committed or rolled back, so no event below it can still appear. A transaction whose
# backend is not found (it just ended, or is hidden) counts as this database's.
XMIN = literal_column(
    """(SELECT coalesce(
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
         WHERE (x::text::bigint % 4294967296) NOT IN (
           SELECT backend_xid::text::bigint FROM pg_stat_activity
           WHERE backend_xid IS NOT NULL AND datname <> current_database())),
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint))""",
    BigInteger,
)


async def _horizon(session: AsyncSession) -> Position:
    """Where a starting hub begins: after every event, but before any that a transaction
    still running may add (on PostgreSQL, the first position of the snapshot's xmin)."""
    if _postgres(session):
        return (int(await session.scalar(select(XMIN)) or 0), 0)
    return (0, int(await session.scalar(select(func.max(OutboxEvent.id))) or 0))


async def _settled(session: AsyncSession, after: Position) -> tuple[list[OutboxEvent], bool]:
    """The next events after ``after`` in delivery order that no running transaction can
    precede, and whether committed events wait behind one (one statement: one snapshot)."""
    query = select(OutboxEvent).where(tuple_(*after) < ORDER).order_by(*ORDER.clauses)
    if not _postgres(session):
        return list(await session.scalars(query.limit(BATCH))), False
    read = (await session.execute(query.add_columns(XMIN).limit(BATCH))).all()
    rows = [event for event, xmin in read if event.tx < xmin]
    return rows, len(rows) < len(read)


async def audit_delivery(
    session: AsyncSession,
    events: list[OutboxEvent],
    deliveries: int,
    subscribers: int,
    principal: Principal | None = None,
) -> None:
    await audit.record(
        session=session,
        actor=principal,
        actor_name=None if principal else "live-stream",
        action="live.resume" if principal else "live.deliver",
        surface="stream",
        resource_type="event",
        resource_ids=[str(e.resource_id) for e in events],
        labels=sorted({str(e.label.get("level")) for e in events}),
        detail={
            "events": [e.id for e in events],
            "deliveries": deliveries,
            "subscribers": subscribers,
        },
    )
