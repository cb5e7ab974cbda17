"""Database outages seen by a real server (docs/adr/0015, SECURITY.md item 27): a replica
started while the database is down stays up and becomes ready when it comes back; a frozen
database (as under SIGSTOP, played by a proxy that stops forwarding — never by stopping the
shared PostgreSQL server) neither holds ``/readyz`` nor a request in flight."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hypervision.app import create_app
from tests.conftest import engine_name, make_settings
from tests.factories import ENTRY, officer
from tests.live.proxy import Proxy, proxy_to
from tests.live.server import open_stream, serve

PUBLIC = {"level": "NP", "audience": []}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listening: refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until_ready(http: httpx.AsyncClient, within: float = 20.0) -> None:
    async def poll() -> None:
        while (await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), within)


async def test_started_while_the_database_is_down_stays_up(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{closed_port()}/none"
    app = create_app(make_settings(tmp_path, url))
    async with (
        serve(app, lifespan=True) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        token = await http.post("/api/v1/auth/token", data={"username": "a", "password": "b"})
        assert not app.state.hub.started
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unavailable"
    assert token.status_code == 503


@pytest.fixture
def pg_url(database_url: str, app: FastAPI) -> str:
    """The test database (emptied by the ``app`` fixture), PostgreSQL only."""
    if engine_name(database_url) != "postgresql":
        pytest.skip("a TCP proxy in front of PostgreSQL plays the outage")
    return database_url


@pytest.fixture
async def proxied(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[Proxy, FastAPI]]:
    async with proxy_to(pg_url, down=True) as proxy:
        # 3 s, not less: the set-up (sign-in, first reads) runs under the same time-out, and
        # under a loaded test run a statement there once took more than 1 s (57014)
        settings = make_settings(
            tmp_path, proxy.url(pg_url), db_statement_timeout_seconds=3.0, live_poll_seconds=0.25
        )
        app = create_app(settings)
        yield proxy, app


async def test_the_database_comes_back_and_the_replica_becomes_ready(
    proxied: tuple[Proxy, FastAPI],
) -> None:
    proxy, app = proxied
    async with (
        serve(app, lifespan=True) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "database_unavailable"

        proxy.down = False  # the database is back
        await until_ready(http)
        assert app.state.hub.started

        author = await officer(app, http, "author", "PP")
        reader = await officer(app, http, "reader", "SAMU")
        async with open_stream(base, reader) as stream:
            created = await http.post(
                "/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=author
            )
            assert created.status_code == 201, created.text
            entry_id = created.json()["id"]
            await stream.wait_for(
                lambda s: entry_id in [e.data["resource_id"] for e in s.of("entry.create")]
            )


async def test_a_frozen_database_holds_neither_readyz_nor_a_request(
    proxied: tuple[Proxy, FastAPI],
) -> None:
    proxy, app = proxied
    proxy.down = False
    async with (
        serve(app, lifespan=True) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        await until_ready(http)
        reader = await officer(app, http, "reader", "SAMU")
        assert (await http.get("/api/v1/entries", headers=reader)).status_code == 200
        proxy.freeze()
        try:
            in_flight = asyncio.create_task(http.get("/api/v1/entries", headers=reader))
            ready = await http.get("/readyz")
            assert proxy.frozen  # answered while the database was still frozen
            # the request ends after the statement time-out (3 s here), not when it thaws
            answer = await asyncio.wait_for(in_flight, 20)
            assert proxy.frozen
        finally:
            proxy.resume()
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unavailable"
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "5"
