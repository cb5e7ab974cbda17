"""The audit topic (docs/adr/0039): the trail, live, to security officers' streams only.

Records go out as the sequencer chains them, in ``seq`` order: the sequencer's commits wake
the feed (``audit.sequencer.add_listener``), and while an audit stream is open the feed also
looks for records chained by another replica every ``live_poll_seconds``. ``seq`` is gapless
and its batches commit one after the other (the trail's lease), so "every record after
``seq`` N" is exact: a stream resumes with ``Last-Event-ID: N`` and gets each record it missed
once, in order. Each frame holds what the trail holds (ids, labels, never content).

Delivering records is itself a use of the trail: each batch leaves one ``live.audit`` record
(written before anything is sent: no audit, no delivery). Those records are not streamed
themselves (else each delivery would announce the next one, for ever); they stay in the
trail, in the console's pages and in the audit API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import sequencer
from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import transaction
from hypervision.identity.models import Organisation
from hypervision.identity.principal import Principal
from hypervision.live.frames import Frame
from hypervision.live.gates import SECURITY, passes

log = logging.getLogger("hypervision.live")
BATCH = 500
AUDIT_TOPIC = "audit"
SELF = "live.audit"  # the feed's own delivery records: kept, not streamed


@dataclass(frozen=True)
class AuditFilter:
    """What an audit stream asks for; every field set must match (None: any)."""

    person: uuid.UUID | None = None
    organisation: uuid.UUID | None = None
    surface: str | None = None
    decision: str | None = None
    label: str | None = None
    record: str | None = None

    def accepts(self, row: AuditRecord) -> bool:
        return (
            row.action != SELF
            and (self.person is None or row.actor_id == self.person)
            and (self.organisation is None or row.actor_organisation_id == self.organisation)
            and (self.surface is None or row.surface == self.surface)
            and (self.decision is None or row.decision == self.decision)
            and (self.label is None or self.label in (row.labels or ()))
            and (self.record is None or self.record in (row.resource_ids or ()))
        )

    def where(self) -> list[Any]:
        """The same filter as SQL (the console's first page, the API)."""
        found: list[Any] = [AuditRecord.action != SELF]
        if self.person is not None:
            found.append(AuditRecord.actor_id == self.person)
        if self.organisation is not None:
            found.append(AuditRecord.actor_organisation_id == self.organisation)
        if self.surface is not None:
            found.append(AuditRecord.surface == self.surface)
        if self.decision is not None:
            found.append(AuditRecord.decision == self.decision)
        return found


def may_watch(principal: Principal) -> bool:
    """Only security officers (the audit right, with its scope) receive the audit topic:
    the hub's gate, the same as the security alerts'."""
    return passes(principal, SECURITY)


def record_data(row: AuditRecord, orgs: dict[uuid.UUID, str] | None = None) -> dict[str, Any]:
    """A record as the console shows it: what the trail holds, no content (``orgs``: the
    organisations' codes by id)."""
    org = row.actor_organisation_id
    return {
        "seq": row.seq,
        "id": str(row.id),
        "at": row.at.isoformat(),
        "actor_id": str(row.actor_id) if row.actor_id else None,
        "actor_name": row.actor_name,
        "actor_organisation_id": (
            str(row.actor_organisation_id) if row.actor_organisation_id else None
        ),
        "actor_organisation": (orgs or {}).get(org) if org else None,
        "actor_clearance": row.actor_clearance,
        "action": row.action,
        "surface": row.surface,
        "decision": row.decision,
        "resource_type": row.resource_type,
        "resource_ids": list(row.resource_ids or ())[:50],
        "resource_count": len(row.resource_ids or ()),
        "labels": list(row.labels or ()),
        "client_address": row.client_address,
    }


def encode(row: AuditRecord, orgs: dict[uuid.UUID, str] | None = None) -> Frame:
    data = json.dumps(record_data(row, orgs), ensure_ascii=False, separators=(",", ":"))
    assert row.seq is not None
    return Frame((row.seq, 0), f"id: {row.seq}\nevent: audit\ndata: {data}\n\n".encode())


class Watching(Protocol):
    """What the feed reads of a stream's filters (``live.hub.Filters``)."""

    @property
    def audit(self) -> AuditFilter | None: ...


class Subscriber(Protocol):
    """A stream as the feed sees it (``live.hub.Subscriber``)."""

    principal: Principal
    closed: str | None

    @property
    def filters(self) -> Watching: ...

    def push(self, frame: Frame) -> None: ...


class Hub(Protocol):
    """The hub as the feed sees it (``live.hub.Hub``)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]

    @property
    def subscribers(self) -> Iterable[Subscriber]: ...


class AuditFeed:
    """The hub's audit topic: its own cursor (a ``seq``), its own task."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.cursor = 0  # last seq handed to streams
        self.planned = 0  # last seq whose recipients are fixed
        self.delivered = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self.orgs: dict[uuid.UUID, str] = {}  # organisation codes (they never change)

    async def learn(self, session: AsyncSession, rows: list[AuditRecord]) -> None:
        """Know the codes of the organisations of ``rows`` (one query for the new ones)."""
        new = {r.actor_organisation_id for r in rows if r.actor_organisation_id} - set(self.orgs)
        if new:
            found = await session.execute(
                select(Organisation.id, Organisation.code).where(Organisation.id.in_(new))
            )
            self.orgs.update({i: c for i, c in found.all()})

    def subscribers(self) -> list[Subscriber]:
        return [
            s
            for s in self.hub.subscribers
            if s.filters.audit is not None and not s.closed and may_watch(s.principal)
        ]

    async def ensure_started(self, session: AsyncSession) -> None:
        """Start once, from the head of the trail (``session``: the caller's, SQLite has one
        writer)."""
        async with self._lock:
            if self._task is not None:
                return
            self._loop = asyncio.get_running_loop()
            self.cursor = self.planned = int(
                await session.scalar(select(func.max(AuditRecord.seq))) or 0
            )
            sequencer.add_listener(self.wake)
            self._task = asyncio.create_task(self._run(), name="hypervision-audit-feed")

    async def stop(self) -> None:
        sequencer.remove_listener(self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def resume_point(self) -> int:
        """Call right after ``subscribe``, with no await in between (as ``Hub``'s)."""
        return max(self.cursor, self.planned)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.hub.settings.live_poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while await self.dispatch():
                    pass
            except Exception:
                log.exception("audit feed failed; will retry")
                await asyncio.sleep(1)

    async def dispatch(self) -> bool:
        """Hand the next chained records to the audit streams; True when a batch was full."""
        if not self.subscribers():
            async with self.hub.sessions() as session:  # nobody watches: skip to the head
                head = await session.scalar(select(func.max(AuditRecord.seq)))
            self.cursor = self.planned = max(self.cursor, int(head or 0))
            return False
        async with self.hub.sessions() as session:
            rows = list(
                await session.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.seq > self.cursor)
                    .order_by(AuditRecord.seq)
                    .limit(BATCH)
                )
            )
            await self.learn(session, rows)
        if not rows:
            return False
        last = int(rows[-1].seq or 0)
        plan = self.plan(rows, self.subscribers())
        self.planned = max(self.planned, last)  # same step: later subscribers replay these
        if plan:
            async with transaction(self.hub.sessions) as session:  # no audit, no delivery
                await audit_delivery(session, plan, None)
        self.cursor = max(self.cursor, last)
        self.delivered += len(plan)
        for sub, frame, _ in plan:
            sub.push(frame)
        return len(rows) == BATCH

    def plan(
        self, rows: Iterable[AuditRecord], subs: list[Subscriber]
    ) -> list[tuple[Subscriber, Frame, int]]:
        targets: list[tuple[Subscriber, Frame, int]] = []
        for row in rows:
            frame: Frame | None = None
            for sub in subs:
                wanted = sub.filters.audit
                if wanted is not None and wanted.accepts(row):
                    frame = frame or encode(row, self.orgs)
                    targets.append((sub, frame, int(row.seq or 0)))
        return targets

    async def backlog(self, sub: Subscriber, since: int, upto: int) -> list[Frame]:
        """The records after ``since`` up to ``upto`` this stream asks for, in order (a
        client resuming with ``Last-Event-ID``); audited as one batch."""
        wanted = sub.filters.audit
        if wanted is None or not may_watch(sub.principal):
            return []
        frames: list[Frame] = []
        last = since
        while last < upto:
            async with self.hub.sessions() as session:
                rows = list(
                    await session.scalars(
                        select(AuditRecord)
                        .where(AuditRecord.seq > last, AuditRecord.seq <= upto, *wanted.where())
                        .order_by(AuditRecord.seq)
                        .limit(BATCH)
                    )
                )
                await self.learn(session, rows)
            if not rows:
                break
            frames.extend(encode(row, self.orgs) for row in rows if wanted.accepts(row))
            last = int(rows[-1].seq or 0)
        if frames:
            plan = [(sub, frame, frame.at[0] if frame.at else 0) for frame in frames]
            async with transaction(self.hub.sessions) as session:
                await audit_delivery(session, plan, sub.principal)
        return frames


async def audit_delivery(
    session: AsyncSession, plan: list[tuple[Subscriber, Frame, int]], principal: Principal | None
) -> None:
    seqs = sorted({seq for _, _, seq in plan})
    await audit.record(
        session=session,
        actor=principal,
        actor_name=None if principal else "live-stream",
        action=SELF,
        surface="stream",
        resource_type="audit_record",
        detail={
            "first": seqs[0],
            "last": seqs[-1],
            "records": len(seqs),
            "deliveries": len(plan),
            "subscribers": len({id(sub) for sub, _, _ in plan}),
            "resume": principal is not None,
        },
    )
