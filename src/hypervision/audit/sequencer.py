"""Queue, then sequence (docs/adr/0018): chaining queued audit records off the request path.

Requests append records with ``seq`` null and take no lock. The sequencer, in one short
transaction per batch, takes the trail's lease, reads the head, gives the oldest queued records
(queue order) the next sequence numbers and their hashes, and moves the head. Several replicas
may run one: on PostgreSQL the lease is a transaction-scoped advisory lock (a replica that dies
releases it with its connection, and the next pass anywhere resumes from the head), and the
head row is also locked, so two passes can never fork the chain. On SQLite the writer lock
serialises passes. A pass that fails or is killed mid-batch commits nothing: the head and the
records move together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from hypervision.audit.chain import HASHED_FIELDS, chain_hash
from hypervision.audit.models import AuditHead, AuditRecord, AuditResource
from hypervision.db import transaction

log = logging.getLogger("hypervision.audit")

# Set on a session whose transaction queued a record: its commit wakes the sequencer.
AUDIT_QUEUED = "hv_audit_queued"
# Set on a session whose transaction sequenced records: its commit tells the listeners (the
# live hub's audit topic, docs/adr/0039).
AUDIT_SEQUENCED = "hv_audit_sequenced"
# pg_advisory_xact_lock key: "hv-audit" read as an integer.
LEASE_KEY = int.from_bytes(b"hv-audit", "big") & 0x7FFF_FFFF_FFFF_FFFF
BATCH = 2000
RECORDS = cast(Table, AuditRecord.__table__)
_READ = [RECORDS.c.qid, *(RECORDS.c[name] for name in HASHED_FIELDS if name != "seq")]


class HeadMissing(RuntimeError):
    """The trail's head row is gone: nothing can be chained until it is restored."""


async def sequence_batch(
    session: AsyncSession,
    *,
    batch: int = BATCH,
    wait: bool = False,
    out: list[Any] | None = None,
) -> int:
    """Chain up to ``batch`` queued records in the caller's transaction; returns how many
    (0 when another replica holds the lease and ``wait`` is false). ``out`` receives the
    records chained, with their ``seq`` (what the alert evaluator reads)."""
    if session.get_bind().dialect.name == "postgresql":
        if wait:
            await session.execute(select(func.pg_advisory_xact_lock(LEASE_KEY)))
        elif not await session.scalar(select(func.pg_try_advisory_xact_lock(LEASE_KEY))):
            return 0
    head = (
        await session.execute(
            select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
        )
    ).one_or_none()
    if head is None:
        raise HeadMissing("audit head is missing")
    rows = (
        await session.execute(
            select(*_READ).where(RECORDS.c.seq.is_(None)).order_by(RECORDS.c.qid).limit(batch)
        )
    ).all()
    if not rows:
        return 0
    seq, prev_hash = head
    chained: list[dict[str, Any]] = []
    named: list[dict[str, Any]] = []  # the trail's index by record (docs/adr/0039)
    for row in rows:
        seq += 1
        record = SimpleNamespace(**row._mapping, seq=seq)
        row_hash = chain_hash(prev_hash, record)
        if out is not None:
            out.append(record)
        chained.append({"b_qid": row.qid, "b_seq": seq, "b_prev": prev_hash, "b_hash": row_hash})
        prev_hash = row_hash
        ids = row.resource_ids if isinstance(row.resource_ids, list) else []
        named.extend({"resource_id": str(rid)[:64], "seq": seq} for rid in dict.fromkeys(ids))
    await session.execute(
        update(RECORDS)
        .where(RECORDS.c.qid == bindparam("b_qid"), RECORDS.c.seq.is_(None))
        .values(
            seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), row_hash=bindparam("b_hash")
        ),
        chained,
    )
    if named:
        await session.execute(insert(AuditResource), named)
    await session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=prev_hash)
    )
    session.sync_session.info[AUDIT_SEQUENCED] = True
    return len(rows)


async def drain(session: AsyncSession, *, batch: int = BATCH) -> int:
    """Chain everything queued now, in the caller's transaction, waiting for the lease if
    another pass holds it: what the caller reads afterwards is sequenced (the audit API,
    checkpoints, tests). On SQLite the caller's transaction already holds the one write lock."""
    total = 0
    while True:
        done = await sequence_batch(session, batch=batch, wait=True)
        total += done
        if done < batch:
            return total


async def queue_depth(session: AsyncSession) -> int:
    """How many records wait to be chained: a count over the ``seq`` index's null entries
    (an index-only range of the queue's length, not a scan of the trail)."""
    query = select(func.count()).select_from(RECORDS).where(RECORDS.c.seq.is_(None))
    return int(await session.scalar(query) or 0)


async def queued(session: AsyncSession) -> tuple[int, Any]:
    """How many records wait to be chained, and when the oldest was written."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(RECORDS.c.at)).where(RECORDS.c.seq.is_(None))
        )
    ).one()
    return int(count), oldest


# Called at the end of each pass, in its transaction (under a savepoint), with the records
# the pass chained (possibly none): the alert evaluator (``alerts.evaluator``, ADR 0040).
# It sits above the trail, which knows it only by this signature.
AfterPass = Callable[[AsyncSession, list[Any]], Awaitable[object]]


class Sequencer:
    """Runs passes in the background of a serving process: woken by this process's commits
    that queued records, and every ``interval`` seconds for the other replicas' records."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        interval: float,
        after: AfterPass | None = None,
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.after = after
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.sequenced = 0  # records this process chained (for /metrics)

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            _wakers.append(self.wake)
            self._task = asyncio.create_task(self._run(), name="hypervision-audit-sequencer")

    async def stop(self) -> None:
        if self.wake in _wakers:
            _wakers.remove(self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while True:
                    chained: list[Any] = []
                    async with transaction(self.sessions) as session:
                        done = await sequence_batch(session, out=chained)
                        await self.run_after(session, chained)
                    self.sequenced += done
                    if done < BATCH:
                        break
            except Exception:
                log.exception("audit sequencing failed; will retry")
                await asyncio.sleep(self.interval)

    async def run_after(self, session: AsyncSession, chained: list[Any]) -> None:
        """The after-pass hook, in the pass's transaction under a savepoint: its work commits
        with the chain's, and a failure there is logged and rolled back alone, leaving the
        chain's progress intact (the hook resumes from its own cursor)."""
        if self.after is None:
            return
        try:
            async with session.begin_nested():
                await self.after(session, chained)
        except Exception:
            log.exception("after-pass hook failed; will resume from its cursor")


# Wakers of the running sequencers of this process (called after a commit that queued).
_wakers: list[Callable[[], None]] = []


# Called after a commit that sequenced records (the live hub's audit topic registers here).
_listeners: list[Callable[[], None]] = []


def add_listener(listener: Callable[[], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(AUDIT_QUEUED, None):
        for waker in list(_wakers):
            waker()
    if session.info.pop(AUDIT_SEQUENCED, None):
        for listener in list(_listeners):
            listener()


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # a rolled-back transaction queued nothing
        session.info.pop(AUDIT_QUEUED, None)
        session.info.pop(AUDIT_SEQUENCED, None)
