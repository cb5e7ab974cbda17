"""Several replicas on one PostgreSQL database (SECURITY.md item 27): two real server processes;
an entry written through one is delivered on a stream held on the other, and a client moving
from one to the other with its last event id gets exactly the authorised events it missed, once,
in order. On both buses (``live_bus``): PostgreSQL's LISTEN/NOTIFY, and NATS, with which no
commit runs pg_notify.

PostgreSQL only: the embedded (SQLite) mode is one process by design."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.events.models import OutboxEvent
from hypervision.events.outbox import CHANNEL
from tests.conftest import TEST_SECRET, engine_name
from tests.factories import ENTRY, officer
from tests.live.natsserver import stream_messages
from tests.live.server import Stream, open_stream

PUBLIC = {"level": "NP", "audience": []}
SECRET = {"level": "DR", "audience": []}
NOTIFY_WITHIN = 3.0  # below the hub's 5 s idle timeout: only the bus delivers this fast
START_WITHIN = 60.0  # generous: a loaded CI machine starts Python processes slowly


@pytest.fixture(autouse=True)
def _postgresql_only(database_url: str) -> None:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: several replicas share a PostgreSQL database and its bus")


@dataclass
class Replica:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def replica_env(database_url: str, data_dir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a replica on the test database: this process's, without its own
    settings, plus cheap hashing and ``settings`` (``live_bus``… as HYPERVISION_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env.update(
        HYPERVISION_DATABASE_URL=database_url,
        HYPERVISION_SECRET_KEY=TEST_SECRET,
        HYPERVISION_ARGON2_TIME_COST="1",
        HYPERVISION_ARGON2_MEMORY_KIB="8",
        HYPERVISION_ARGON2_PARALLELISM="1",
        HYPERVISION_DATA_DIR=str(data_dir),
        **{f"HYPERVISION_{name.upper()}": value for name, value in settings.items()},
    )
    return env


def start(name: str, env: dict[str, str], logs: Path) -> Replica:
    port = free_port()
    log_path = logs / f"replica-{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hypervision", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Replica(name, f"http://127.0.0.1:{port}", process, log_path, log)


def wait_ready(replicas: list[Replica]) -> None:
    deadline = time.monotonic() + START_WITHIN
    pending = list(replicas)
    while pending:
        for replica in list(pending):
            code = replica.process.poll()
            if code is not None:
                raise AssertionError(f"{replica.name} exited ({code}):\n{replica.output()}")
            try:
                ready = httpx.get(f"{replica.base}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                pending.remove(replica)
        if pending and time.monotonic() > deadline:
            names = ", ".join(r.name for r in pending)
            raise AssertionError(f"not ready after {START_WITHIN}s: {names}\n{pending[0].output()}")
        if pending:
            time.sleep(0.05)


def stop(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.terminate()
    for replica in replicas:
        try:
            replica.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=5)
        replica.log.close()


@contextlib.contextmanager
def running(envs: Mapping[str, dict[str, str]], logs: Path) -> Iterator[list[Replica]]:
    """A replica per name (with its environment), ready; stopped after, and none may have
    logged a traceback."""
    started: list[Replica] = []
    try:
        for name, env in envs.items():
            started.append(start(name, env, logs))
        wait_ready(started)
        yield started
    finally:
        stop(started)
    for replica in started:
        assert "Traceback" not in replica.output(), replica.output()


@pytest.fixture
def replicas(
    app: FastAPI, database_url: str, tmp_path: Path, bus_settings: dict[str, str]
) -> Iterator[tuple[Replica, Replica]]:
    """Two ``hypervision serve`` processes on the test database (emptied by ``app`` first),
    on the bus under test."""
    env = replica_env(database_url, tmp_path, bus_settings)
    with running({"A": env, "B": env}, tmp_path) as (a, b):
        yield a, b


@contextlib.asynccontextmanager
async def notifications(database_url: str) -> AsyncIterator[list[int]]:
    """The outbox ids NOTIFY announces on the database while the block runs."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    got: list[int] = []
    await conn.add_listener(CHANNEL, lambda *args: got.append(int(args[3])))
    try:
        yield got
    finally:
        await conn.close(timeout=5)


def delivered(stream: Stream) -> list[str]:
    return [e.data["resource_id"] for e in stream.of("entry.create")]


async def write(base: str, headers: dict[str, str], title: str, label: Mapping[str, object]) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            "/api/v1/entries", json={**ENTRY, "title": title, "label": label}, headers=headers
        )
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["id"]
    return entry_id


async def test_an_entry_written_on_one_replica_is_streamed_on_the_other(
    app: FastAPI,
    client: AsyncClient,
    database_url: str,
    replicas: tuple[Replica, Replica],
    bus_settings: dict[str, str],
) -> None:
    a, b = replicas
    author = await officer(app, client, "author", "PP")  # sessions live in the database:
    reader = await officer(app, client, "reader", "SAMU")  # valid on every replica
    async with (
        open_stream(b.base, reader) as on_b,
        open_stream(a.base, reader) as on_a,
        notifications(database_url) as notified,
    ):
        assert on_b.of("status")[0].data == {"mode": "live"}
        via_a = await write(a.base, author, "via A", PUBLIC)
        await on_b.wait_for(lambda s: delivered(s) == [via_a], timeout=NOTIFY_WITHIN)
        via_b = await write(b.base, author, "via B", PUBLIC)
        await on_a.wait_for(lambda s: delivered(s) == [via_a, via_b], timeout=NOTIFY_WITHIN)
        await on_b.wait_for(lambda s: delivered(s) == [via_a, via_b], timeout=NOTIFY_WITHIN)
        await asyncio.sleep(0.3)  # a NOTIFY sent at commit has reached the listener by now
    assert on_a.ids() == on_b.ids()  # the same outbox ids, whichever replica serves them
    assert on_b.ids() == sorted(set(on_b.ids())) and len(on_b.ids()) == 2
    if bus_settings["live_bus"] == "postgres":
        assert set(on_b.ids()) <= set(notified)
    else:  # no commit took PostgreSQL's notification lock; each was published to NATS
        assert notified == []
        url, subject = bus_settings["nats_url"], bus_settings["nats_subject"]
        assert await stream_messages(url, subject) >= 2


async def test_a_client_moving_to_another_replica_misses_nothing(
    app: FastAPI, client: AsyncClient, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU", clearance="NP")  # DR hidden from it
    async with open_stream(a.base, reader) as first:
        seen = [await write(a.base, author, "seen A", PUBLIC)]
        seen.append(await write(b.base, author, "seen B", PUBLIC))
        await first.wait_for(lambda s: delivered(s) == seen, timeout=NOTIFY_WITHIN)
    last = first.ids()[-1]

    missed: list[str] = []  # while disconnected: written on both replicas, some hidden
    for i, (base, other) in enumerate([(a.base, b.base), (b.base, a.base)] * 2):
        missed.append(await write(base, author, f"missed {i}", PUBLIC))
        await write(other, author, f"hidden {i}", SECRET)

    async with open_stream(b.base, reader, extra={"Last-Event-ID": str(last)}) as second:
        await second.wait_for(lambda s: delivered(s) == missed, timeout=5)
        await write(a.base, author, "hidden after", SECRET)
        after = await write(a.base, author, "after", PUBLIC)
        await second.wait_for(lambda s: delivered(s) == [*missed, after], timeout=NOTIFY_WITHIN)
        await asyncio.sleep(0.3)  # anything extra (hidden, duplicate) would arrive by now
    ids = second.ids()
    assert ids == sorted(set(ids)) and min(ids) > last  # once, in order, nothing seen before
    assert delivered(second) == [*missed, after]
    async with app.state.system_sessions() as session:
        rows = (
            await session.execute(
                select(OutboxEvent.id, OutboxEvent.label)
                .where(OutboxEvent.id > last, OutboxEvent.resource_type == "entry")
                .order_by(OutboxEvent.id)
            )
        ).all()
    assert len(rows) == 10  # 5 visible and 5 hidden written since the last event seen
    assert ids == [row.id for row in rows if row.label["level"] == "NP"]


async def test_a_replica_killed_under_load_loses_nothing(
    app: FastAPI, client: AsyncClient, replicas: tuple[Replica, Replica]
) -> None:
    """kill -9 of the replica serving both the writers and a stream: every acknowledged write
    is stored, and the client resuming on the other replica with its last event id receives
    every stored entry it had not received, once (issue 15)."""
    a, b = replicas
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    acknowledged: list[str] = []

    async def writer(k: int) -> None:
        for i in range(200):
            try:
                acknowledged.append(await write(a.base, author, f"load {k}.{i}", PUBLIC))
            except (httpx.TransportError, AssertionError):
                return  # the replica died during this request: not acknowledged

    async with open_stream(a.base, reader) as first:
        writers = [asyncio.create_task(writer(k)) for k in range(4)]
        await first.wait_for(lambda s: len(delivered(s)) >= 8, timeout=20)
        a.process.kill()
        await asyncio.gather(*writers)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await first.ended.wait()
    received = delivered(first)
    async with app.state.system_sessions() as session:
        stored = [
            str(rid)
            for rid in await session.scalars(
                select(OutboxEvent.resource_id).where(OutboxEvent.type == "entry.create")
            )
        ]
    assert set(acknowledged) <= set(stored), "an acknowledged write was lost"
    last = first.ids()[-1]
    async with open_stream(b.base, reader, extra={"Last-Event-ID": str(last)}) as second:
        await second.wait_for(
            lambda s: set(received) | set(delivered(s)) == set(stored), timeout=10
        )
        await asyncio.sleep(0.3)  # a duplicate would arrive by now
    assert not set(received) & set(delivered(second)), "delivered twice"
    assert len(delivered(second)) == len(set(delivered(second)))


async def test_a_replica_stopped_for_a_release_hands_its_streams_over(
    app: FastAPI, client: AsyncClient, replicas: tuple[Replica, Replica]
) -> None:
    """SIGTERM (a rolling release): the replica tells its streams ``shutdown`` at once and
    exits without waiting for them to go; its client resumes on the other replica from its
    last event id and misses nothing."""
    a, b = replicas
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    async with open_stream(a.base, reader) as first:
        seen = await write(a.base, author, "before the release", PUBLIC)
        await first.wait_for(lambda s: delivered(s) == [seen], timeout=NOTIFY_WITHIN)
        stopped_at = time.monotonic()
        a.process.terminate()
        await first.wait_for(lambda s: bool(s.of("shutdown")), timeout=5)
    told = time.monotonic() - stopped_at
    code = await asyncio.to_thread(a.process.wait, 10)
    exited = time.monotonic() - stopped_at
    # uvicorn re-raises the SIGTERM it caught once it has finished: the usual status of a
    # process ended by that signal (never a kill's -9).
    assert code in (0, -signal.SIGTERM), a.output()
    assert "Application shutdown complete" in a.output()
    assert told < 3 and exited < 8, (told, exited, a.output())  # not the orchestrator's kill
    missed = await write(b.base, author, "during the release", PUBLIC)
    last = str(first.ids()[-1])
    async with open_stream(b.base, reader, extra={"Last-Event-ID": last}) as second:
        await second.wait_for(lambda s: delivered(s) == [missed], timeout=5)
