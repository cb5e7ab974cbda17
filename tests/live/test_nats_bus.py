"""The NATS bus (``live.nats_bus``, docs/adr/0019), beyond what test_degraded and test_replicas
ask of both buses: a hub started while NATS is down polls, says so, and goes live when NATS
comes up; no commit runs pg_notify meanwhile.

PostgreSQL only: NATS stands in for PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.config import Settings
from hypervision.events.outbox import CHANNEL
from hypervision.live.hub import Hub
from hypervision.live.nats_bus import NatsBus
from tests.conftest import engine_name, make_settings
from tests.factories import ENTRY, officer
from tests.live.natsserver import NatsServer, unique_subject
from tests.live.server import Stream, open_stream, serve
from tests.live.test_degraded import (
    NOTIFY_WITHIN,
    POLL,
    POLLED_WITHIN,
    delivered,
    modes,
    unannounced,
)

PUBLIC = {"level": "NP", "audience": []}


@pytest.fixture(autouse=True)
def _postgresql_only(database_url: str) -> None:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: NATS stands in for PostgreSQL's LISTEN/NOTIFY")


@pytest.fixture
def settings(database_url: str, tmp_path: Path, nats_server: NatsServer) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        live_poll_seconds=POLL,
        live_bus="nats",
        nats_url=nats_server.url,  # not started: the test starts it
        nats_subject=unique_subject(),
    )


async def test_a_hub_started_while_nats_is_down_polls_then_goes_live(
    app: FastAPI, client: AsyncClient, database_url: str, nats_server: NatsServer
) -> None:
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    hub: Hub = app.state.hub
    created: list[str] = []

    async def post(title: str) -> str:
        response = await client.post(
            "/api/v1/entries", json={**ENTRY, "title": title, "label": PUBLIC}, headers=author
        )
        assert response.status_code == 201, response.text  # REST works without NATS
        created.append(response.json()["id"])
        return created[-1]

    async def arrives(stream: Stream, entry_id: str, within: float) -> None:
        await stream.wait_for(lambda s: entry_id in delivered(s), timeout=within)

    listener = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5
    )
    notified: list[str] = []
    await listener.add_listener(CHANNEL, lambda *args: notified.append(args[3]))
    try:
        async with serve(app) as base, open_stream(base, reader) as stream:
            bus = hub.bus
            assert isinstance(bus, NatsBus) and not bus.connected
            assert modes(stream) == ["polling"] and hub.mode == "polling"
            with unannounced(hub):  # only polling can deliver this
                await arrives(stream, await post("polling"), POLLED_WITHIN)

            nats_server.start()
            await stream.wait_for(
                lambda s: modes(s) == ["polling", "live"], timeout=bus.retry_seconds + 5
            )
            assert hub.mode == "live" and bus.connected and bus.acknowledged
            with unannounced(hub):  # only NATS can deliver these this fast
                for i in range(2):
                    await arrives(stream, await post(f"live {i}"), NOTIFY_WITHIN)
            assert bus.published >= 2
    finally:
        await listener.close(timeout=5)
    assert delivered(stream) == created  # each once, in order
    assert notified == []  # no commit took PostgreSQL's notification lock
