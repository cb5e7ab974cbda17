"""Degraded mode (SECURITY.md item 27): when the bus is lost, REST keeps working and the streams
fall back to polling the outbox and say so; when the bus returns they switch back to live, and
across the whole sequence no event is missed or sent twice.

On both buses (``live_bus``): PostgreSQL's LISTEN connection is killed from the server side
while reconnections are refused; the NATS server, a process of the test's own, is killed
(SIGKILL) and started again on the same port.

PostgreSQL only: the embedded (SQLite) mode has no bus to lose."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text

from hypervision.config import Settings
from hypervision.events import outbox
from hypervision.events.models import OutboxEvent
from hypervision.live.bus import PostgresBus
from hypervision.live.hub import Hub
from hypervision.live.nats_bus import NatsBus
from tests.conftest import engine_name, make_settings
from tests.factories import ENTRY, officer
from tests.live.natsserver import NatsServer, unique_subject
from tests.live.server import Stream, open_stream, serve

PUBLIC = {"level": "NP", "audience": []}
POLL = 0.25  # live_poll_seconds for these tests
POLLED_WITHIN = 6 * POLL  # what only polling can deliver arrives within a few poll periods
NOTIFY_WITHIN = 2.0  # below the hub's 5 s idle timeout: only the bus can deliver this fast


@pytest.fixture(autouse=True)
def _postgresql_only(database_url: str) -> None:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: the embedded (SQLite) mode has no LISTEN/NOTIFY bus to lose")


class Outage(Protocol):
    """How a test cuts one bus and lets it come back."""

    settings: dict[str, object]

    async def connection(self, app: FastAPI, bus: object) -> object:
        """Assert the bus is connected; something that differs after a reconnection."""
        ...

    def connected(self, bus: object) -> bool: ...

    def cut(self, app: FastAPI, bus: object) -> contextlib.AbstractAsyncContextManager[None]:
        """The bus is lost on entry and cannot come back before the block ends."""
        ...


class PostgresOutage:
    def __init__(self) -> None:
        self.settings: dict[str, object] = {"live_bus": "postgres"}

    async def connection(self, app: FastAPI, bus: object) -> object:
        assert isinstance(bus, PostgresBus) and bus.connection is not None
        listener: int = bus.connection.get_server_pid()
        assert (await backend_query(app, listener) or "").upper().startswith("LISTEN")
        return listener

    def connected(self, bus: object) -> bool:
        return isinstance(bus, PostgresBus) and bus.connection is not None

    @contextlib.asynccontextmanager
    async def cut(self, app: FastAPI, bus: object) -> AsyncIterator[None]:
        assert isinstance(bus, PostgresBus) and bus.connection is not None
        with bus_unreachable(bus):
            await terminate_backend(app, bus.connection.get_server_pid())
            yield


class NatsOutage:
    def __init__(self, server: NatsServer) -> None:
        self.server = server
        self.settings: dict[str, object] = {
            "live_bus": "nats",
            "nats_url": server.url,
            "nats_subject": unique_subject(),
        }

    async def connection(self, app: FastAPI, bus: object) -> object:
        assert isinstance(bus, NatsBus) and bus.connected and bus.acknowledged
        assert bus.client.is_connected and bus.client.connected_url is not None
        assert bus.client.connected_url.port == self.server.port
        return (self.server.starts, bus.client.stats["reconnects"])

    def connected(self, bus: object) -> bool:
        return isinstance(bus, NatsBus) and bus.connected

    @contextlib.asynccontextmanager
    async def cut(self, app: FastAPI, bus: object) -> AsyncIterator[None]:
        self.server.kill()
        try:
            yield
        finally:
            self.server.start()  # same port, same store directory


@pytest.fixture
def outage(live_bus: str, request: pytest.FixtureRequest) -> Outage:
    if live_bus == "postgres":
        return PostgresOutage()
    server: NatsServer = request.getfixturevalue("nats_server")
    server.start()
    return NatsOutage(server)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, outage: Outage) -> Settings:
    return make_settings(tmp_path, database_url, live_poll_seconds=POLL, **outage.settings)


@contextlib.contextmanager
def unannounced(hub: Hub) -> Iterator[None]:
    """Commits made in the block do not wake ``hub`` in-process, as if another replica had made
    them: they can reach its streams only through the bus (NOTIFY) or by polling."""
    outbox.remove_waker(hub.wake)
    try:
        yield
    finally:
        outbox.add_waker(hub.wake)


@contextlib.contextmanager
def bus_unreachable(bus: PostgresBus) -> Iterator[None]:
    """The bus's reconnection attempts are refused until the block ends (a port bound on
    loopback but not listening), so the outage lasts as long as the test needs."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dsn = bus.dsn
        bus.dsn = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/unreachable"
        try:
            yield
        finally:
            bus.dsn = dsn


async def backend_query(app: FastAPI, pid: int) -> str | None:
    async with app.state.engine.connect() as conn:
        query = await conn.scalar(
            text("SELECT query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return None if query is None else str(query)


async def terminate_backend(app: FastAPI, pid: int) -> None:
    """Kill the bus's LISTEN connection from another connection, as a failover or an
    administrator would."""
    async with app.state.engine.connect() as conn:
        killed = await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert killed is True


def modes(stream: Stream) -> list[str]:
    return [e.data["mode"] for e in stream.of("status")]


def delivered(stream: Stream) -> list[str]:
    return [e.data["resource_id"] for e in stream.of("entry.create")]


async def test_bus_loss_falls_back_to_polling_and_back_to_live_without_loss(
    app: FastAPI, client: AsyncClient, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hypervision.live")
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    hub: Hub = app.state.hub
    created: list[str] = []

    async def post(title: str) -> str:
        response = await client.post(
            "/api/v1/entries", json={**ENTRY, "title": title, "label": PUBLIC}, headers=author
        )
        assert response.status_code == 201, response.text  # REST works, bus or no bus
        entry_id: str = response.json()["id"]
        created.append(entry_id)
        return entry_id

    async def arrives(stream: Stream, entry_id: str, within: float) -> None:
        await stream.wait_for(lambda s: entry_id in delivered(s), timeout=within)

    async with serve(app) as base, open_stream(base, reader) as stream:
        assert modes(stream) == ["live"]
        bus = hub.bus
        first = await outage.connection(app, bus)

        # Live: a commit this process is not told about arrives through the bus.
        with unannounced(hub):
            await arrives(stream, await post("live before"), NOTIFY_WITHIN)

        async with outage.cut(app, bus):
            await stream.wait_for(lambda s: modes(s) == ["live", "polling"], timeout=5)
            assert hub.mode == "polling" and not outage.connected(bus)

            async with open_stream(base, reader) as late:  # opened during the outage
                assert modes(late) == ["polling"]
                with unannounced(hub):  # only polling can deliver these
                    for i in range(3):
                        entry_id = await post(f"polling {i}")
                        await arrives(stream, entry_id, POLLED_WITHIN)
                        await late.wait_for(lambda s, e=entry_id: e in delivered(s), timeout=1)
                assert (await client.get("/readyz")).json() == {"status": "ok"}
                # A reconnection attempt fails: the hub keeps polling.
                await stream.wait_for(
                    lambda _: "live bus still down" in caplog.text, timeout=bus.retry_seconds + 3
                )
                assert hub.mode == "polling" and modes(stream) == ["live", "polling"]
                with unannounced(hub):
                    await arrives(stream, await post("polling after a failed retry"), POLLED_WITHIN)
                await late.wait_for(lambda s: delivered(s) == created[1:], timeout=1)

        # The bus is reachable again: the next retry brings it back.
        await stream.wait_for(
            lambda s: modes(s) == ["live", "polling", "live"], timeout=bus.retry_seconds + 3
        )
        assert hub.mode == "live"
        assert await outage.connection(app, bus) != first
        with unannounced(hub):
            for i in range(2):
                await arrives(stream, await post(f"live after {i}"), NOTIFY_WITHIN)
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive by now

    ids = stream.ids()
    assert ids == sorted(set(ids)), "ids out of order or duplicated"
    assert delivered(stream) == created  # each entry once, in order, across the whole sequence
    async with app.state.system_sessions() as session:
        written = list(
            await session.scalars(
                select(OutboxEvent.id)
                .where(OutboxEvent.resource_type == "entry")
                .order_by(OutboxEvent.id)
            )
        )
    assert ids == written  # no outbox id missing
    assert modes(stream) == ["live", "polling", "live"]
    assert delivered(late) == created[1:5]  # opened during the outage: all since, once


async def test_a_stream_resumed_during_the_outage_gets_what_it_missed(
    app: FastAPI, client: AsyncClient, outage: Outage
) -> None:
    """Last-Event-ID works the same while the bus is down (the backlog is read from the
    outbox), and the resumed stream then follows by polling."""
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    hub: Hub = app.state.hub

    async def post(title: str) -> str:
        response = await client.post(
            "/api/v1/entries", json={**ENTRY, "title": title, "label": PUBLIC}, headers=author
        )
        assert response.status_code == 201, response.text
        entry_id: str = response.json()["id"]
        return entry_id

    async with serve(app) as base:
        async with open_stream(base, reader) as first:
            seen = await post("seen")
            await first.wait_for(lambda s: seen in delivered(s), timeout=NOTIFY_WITHIN)
        last = first.ids()[-1]
        await outage.connection(app, hub.bus)
        async with outage.cut(app, hub.bus):
            await asyncio.wait_for(_until(lambda: hub.mode == "polling"), 5)
            missed = [await post(f"missed {i}") for i in range(3)]
            async with open_stream(base, reader, extra={"Last-Event-ID": str(last)}) as second:
                assert modes(second) == ["polling"]
                await second.wait_for(lambda s: delivered(s) == missed, timeout=5)
                with unannounced(hub):
                    after = await post("after")
                    await second.wait_for(lambda s: delivered(s) == [*missed, after], POLLED_WITHIN)
                await asyncio.sleep(0.3)
    ids = second.ids()
    assert ids == sorted(set(ids)) and min(ids) > last
    assert delivered(second) == [*missed, after]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the hub exposes a flag, not an event
        await asyncio.sleep(0.02)
