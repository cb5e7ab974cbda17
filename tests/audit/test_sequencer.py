"""Queue, then sequence (docs/adr/0018): requests append without a lock; sequencer passes chain
the queue in batches, one at a time across replicas, and a pass that dies commits nothing."""

from __future__ import annotations

import asyncio
import random

import pytest
from fastapi import FastAPI
from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DBAPIError

from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord
from hypervision.audit.sequencer import LEASE_KEY, queued, sequence_batch
from tests.audit.tamper import owner
from tests.factories import ADMIN, sequenced, tx

RECORDS: Table = AuditRecord.__table__  # type: ignore[assignment]


async def _queue(app: FastAPI, n: int, tag: str = "q") -> None:
    async with tx(app) as session:
        for i in range(n):
            await audit.record(session=session, actor=ADMIN, action="test.event", detail={tag: i})


async def _chain(app: FastAPI) -> list[tuple[int, str]]:
    async with tx(app) as session:
        rows = await session.execute(select(RECORDS.c.seq, RECORDS.c.id).order_by(RECORDS.c.qid))
        return [(seq, str(rid)) for seq, rid in rows]


async def _verified(app: FastAPI) -> int:
    async with tx(app) as session:
        result = await audit.verify(session=session, batch=7)
    assert result.ok, result.problem
    return result.checked


async def test_records_wait_in_the_queue_until_a_pass_chains_them(app: FastAPI) -> None:
    await _queue(app, 5)
    async with tx(app) as session:
        count, oldest = await queued(session)
    assert count == 5 and oldest is not None
    assert [seq for seq, _ in await _chain(app)] == [None] * 5
    assert await sequenced(app) == 5
    assert [seq for seq, _ in await _chain(app)] == [1, 2, 3, 4, 5]
    assert await sequenced(app) == 0
    assert await _verified(app) == 5


async def test_a_pass_killed_mid_batch_leaves_no_gap_and_no_duplicate(
    app: FastAPI, owner_database_url: str
) -> None:
    await _queue(app, 30, "before")
    await sequenced(app)
    await _queue(app, 25, "after")
    session = app.state.system_sessions()
    await session.begin()
    assert await sequence_batch(session, batch=10) == 10  # chained, not committed
    if app.state.settings.database_url.startswith("postgresql"):
        pid = await session.scalar(select(func.pg_backend_pid()))
        async with owner(owner_database_url) as conn:  # the replica dies: its backend goes
            await conn.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(DBAPIError):
            await session.commit()
    else:  # the process dies: SQLite rolls its journal back
        await session.rollback()
    await session.close()
    assert await sequenced(app) == 25  # the next pass resumes from the head
    chain = await _chain(app)
    assert sorted(seq for seq, _ in chain) == list(range(1, 56))
    assert len({rid for _, rid in chain}) == 55
    assert await _verified(app) == 55


async def test_one_pass_at_a_time_across_replicas(app: FastAPI) -> None:
    """While one pass holds the lease, another (a second replica) skips at once instead of
    waiting or forking the chain; writers never wait for either."""
    if not app.state.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's writer lock serialises passes")
    await _queue(app, 3)
    sessions = app.state.system_sessions
    async with sessions() as first, sessions() as second:
        await first.begin()
        assert await first.scalar(select(func.pg_try_advisory_xact_lock(LEASE_KEY)))
        await second.begin()
        assert await sequence_batch(second) == 0
        await _queue(app, 2)  # a request appends meanwhile: no lock in its way
        await second.rollback()
        await first.rollback()
    assert await sequenced(app) == 5


async def test_concurrent_writers_and_passes_make_one_chain(app: FastAPI) -> None:
    """Writers append while three sequencer loops (replicas) chain the queue concurrently."""
    rng = random.Random(18)
    stop = asyncio.Event()

    async def writer(k: int) -> None:
        for i in range(12):
            await _queue(app, rng.randint(1, 3), f"w{k}.{i}")
            await asyncio.sleep(rng.random() / 200)

    async def replica() -> None:
        while not stop.is_set():
            async with tx(app) as session:
                await sequence_batch(session, batch=rng.randint(1, 8))
            await asyncio.sleep(rng.random() / 100)

    replicas = [asyncio.create_task(replica()) for _ in range(3)]
    await asyncio.gather(*(writer(k) for k in range(6)))
    stop.set()
    await asyncio.gather(*replicas)
    await sequenced(app)
    chain = await _chain(app)
    assert sorted(seq for seq, _ in chain) == list(range(1, len(chain) + 1))
    assert await _verified(app) == len(chain)


async def test_the_application_may_only_chain_queued_records(app: FastAPI) -> None:
    """PostgreSQL privileges and policy ``hv_sequence`` (migration 0010): even in the system
    context, the application's role cannot re-chain a sequenced record, nor change what any
    record says."""
    if not app.state.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no privileges nor row-level security")
    await _queue(app, 3)
    await sequenced(app)
    await _queue(app, 1)  # one still queued
    async with tx(app) as session:
        rechained = await session.execute(
            text(
                "UPDATE audit_records SET row_hash = 'x', prev_hash = 'x' "
                "WHERE seq IS NOT NULL RETURNING seq"
            )
        )
        assert rechained.all() == []
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tx(app) as session:
            await session.execute(text("UPDATE audit_records SET action = 'x' WHERE seq IS NULL"))
    assert await _verified(app) == 4
