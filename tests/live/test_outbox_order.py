"""Outbox order without a global lock (docs/adr/0018): on PostgreSQL, transactions that commit
out of id order are delivered once each, none skipped, and a resume from any event gives
exactly the rest. Before, the hub read ``id > cursor`` and relied on the audit lock to commit
ids in order; without that lock, a late commit with a smaller id was skipped for ever."""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.events.models import OutboxEvent
from hypervision.events.outbox import Emitted, emit
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.live.hub import Filters, Hub, Position, Subscriber, _horizon
from tests.factories import ENTRY, officer, tx

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


def _postgres_only(app: FastAPI) -> None:
    if not app.state.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite serialises writers, ids commit in order")


@dataclass
class World:
    hub: Hub
    sub: Subscriber
    entry: OutboxEvent  # a real entry's event: its record and label serve the events here


async def _world(app: FastAPI, client: AsyncClient) -> World:
    """A reader subscribed to a hub that is driven by hand (no background task)."""
    alice = await officer(app, client, "alice", "PP")
    response = await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
    assert response.status_code == 201, response.text
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "alice"))
        assert user is not None
        principal = await build_principal(
            session=session, user=user, scopes=None, client=Client(None, None)
        )
        entry = (await session.scalars(select(OutboxEvent))).one()
        hub: Hub = app.state.hub
        hub.cursor = await _horizon(session)
    return World(hub, hub.subscribe(principal, Filters()), entry)


async def _emit(session: AsyncSession, world: World, n: int) -> Emitted:
    return await emit(
        session,
        type="entry.updated",
        resource_type="entry",
        resource_id=world.entry.resource_id,
        label=world.entry.label,
        payload={"n": n},
    )


def _received(sub: Subscriber) -> list[Position]:
    return [frame.at for frame in sub.frames if frame.at is not None]


async def test_a_late_commit_is_neither_skipped_nor_delivered_twice(
    app: FastAPI, client: AsyncClient
) -> None:
    _postgres_only(app)
    world = await _world(app, client)
    hub, sub = world.hub, world.sub
    sessions = app.state.system_sessions
    async with sessions() as early, sessions() as late:
        await early.begin()
        first = await _emit(early, world, 1)  # the smaller id and transaction id
        async with late.begin():
            second = await _emit(late, world, 2)
        assert first.id < second.id and first.tx < second.tx
        await hub.dispatch()  # the second is committed, the first is not yet
        assert _received(sub) == [] and hub.held, "held behind the running transaction"
        await early.commit()
    await hub.dispatch()
    assert _received(sub) == [(first.tx, first.id), (second.tx, second.id)]
    assert not hub.held
    await hub.dispatch()
    assert len(_received(sub)) == 2, "nothing twice"


async def test_many_writers_committing_in_random_order(app: FastAPI, client: AsyncClient) -> None:
    """Twelve transactions each write events, then commit in a random order while the hub
    dispatches between commits; then a client resuming from every delivered event gets
    exactly the events after it."""
    _postgres_only(app)
    world = await _world(app, client)
    hub, sub = world.hub, world.sub
    sessions = app.state.system_sessions
    rng = random.Random(15)
    writers = [sessions() for _ in range(12)]
    written: list[Emitted] = []
    try:
        for n, session in enumerate(writers):
            await session.begin()
            for k in range(rng.randint(1, 3)):
                written.append(await _emit(session, world, n * 10 + k))
        for session in rng.sample(writers, len(writers)):
            await session.commit()
            if rng.random() < 0.7:
                await hub.dispatch()
    finally:
        for session in writers:
            await session.close()
    while await hub.dispatch() or hub.held:
        pass
    expected = sorted((event.tx, event.id) for event in written)
    assert _received(sub) == expected, "each event once, in (tx, id) order"
    upto = hub.resume_point()
    ids = {position: position[1] for position in expected}
    for index, position in enumerate(expected):
        frames = await hub.backlog(sub, ids[position], upto)
        assert [frame.at for frame in frames] == expected[index + 1 :], index
    start = [(world.entry.tx, world.entry.id)]
    assert [frame.at for frame in await hub.backlog(sub, 0, upto)] == start + expected


async def test_a_transaction_in_another_database_holds_nothing_back(
    app: FastAPI, client: AsyncClient, owner_database_url: str
) -> None:
    """Only this database's transactions can add to its outbox: a long transaction of
    another database on the same server (another deployment, a backup) delays nothing."""
    _postgres_only(app)
    world = await _world(app, client)
    dsn = owner_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    elsewhere = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres", timeout=5)
    try:
        async with elsewhere.transaction():
            await elsewhere.fetchval("SELECT pg_current_xact_id()")  # a running xid
            async with app.state.system_sessions() as session, session.begin():
                event = await _emit(session, world, 1)
            await world.hub.dispatch()
            assert _received(world.sub) == [(event.tx, event.id)]
            assert not world.hub.held
    finally:
        await elsewhere.close()
