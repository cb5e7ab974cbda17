"""A burst of stream opens queues for the database instead of being refused (docs/adr/0015):
every stream is opened, resumed streams get their backlog, and no stream keeps a database
connection once its authentication and backlog are done. Opened with the live benchmark's
load generator (``bench/live_client.py``: raw asyncio connections, one per stream)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from bench.live_client import Generator
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.pool import QueuePool

from hypervision.app import create_app
from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from tests.audit.tamper import owner
from tests.conftest import make_settings, reset_database
from tests.factories import ENTRY, officer, refuse_audit, tx
from tests.live.server import serve

STREAMS = 300
READERS = 5
PUBLIC = {"level": "NP", "audience": []}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The former pool (5 + 10 connections, 1 s wait) refused about a third of such a burst.
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def app(settings: Settings) -> FastAPI:
    application = create_app(settings)
    await reset_database(application)
    return application


def checked_out(app: FastAPI) -> int:
    pool = app.state.engine.pool
    return pool.checkedout() if isinstance(pool, QueuePool) else 0


async def released(app: FastAPI, baseline: int) -> None:
    while checked_out(app) > baseline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def test_a_burst_of_stream_opens_all_succeed_and_release_the_pool(
    app: FastAPI, client: AsyncClient
) -> None:
    author = await officer(app, client, "author", "PP")
    tokens = [
        (await officer(app, client, f"reader{i}", "SAMU"))["Authorization"].split(" ", 1)[1]
        for i in range(READERS)
    ]
    created = [
        (
            await client.post(
                "/api/v1/entries", json={**ENTRY, "label": PUBLIC, "title": f"e{i}"}, headers=author
            )
        ).json()["id"]
        for i in range(3)
    ]
    assert len(set(created)) == 3
    gen = Generator()
    try:
        async with serve(app) as base:
            url = urlsplit(base)
            await app.state.hub.ensure_started()
            baseline = checked_out(app)
            # half resume from the start (backlog: 3 events), half only live
            specs = [
                (i, "/api/v1/stream?since=0" if i % 2 else "/api/v1/stream", tokens[i % READERS])
                for i in range(STREAMS)
            ]
            opened = await gen.connect(
                url.hostname or "127.0.0.1", url.port or 80, specs, STREAMS, 1, 120
            )
            assert opened["opened"] == STREAMS, opened["failures"]
            assert opened["retries"] == 0

            async def backlog_delivered() -> None:
                while any(len(c.ids) < 3 for c in gen.clients if c.tag % 2):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(backlog_delivered(), 30)
            resumed = [c for c in gen.clients if c.tag % 2]
            assert len(resumed) == STREAMS // 2
            assert all(len(c.ids) == 3 for c in resumed)  # each event once
            # every stream is still open, and none holds a connection: an open stream would
            # hold its connection for good, while a background pass (the audit sequencer, the
            # batched openings' writer, the alert mail loop) holds one for a moment only
            assert not [c.closed for c in gen.clients if c.closed]
            await asyncio.wait_for(released(app, baseline), 10)
            await gen.close_all()
        async with tx(app) as session:  # one audit record per opening, each with its actor
            opens = list(
                await session.scalars(
                    select(AuditRecord.actor_name).where(AuditRecord.action == "stream.open")
                )
            )
        assert len(opens) == STREAMS
        assert set(opens) == {f"reader{i}" for i in range(READERS)}
    finally:
        await app.state.hub.stop()
        await app.state.engine.dispose()


async def test_no_audit_no_stream(
    app: FastAPI, client: AsyncClient, owner_database_url: str
) -> None:
    """An opening whose audit record cannot be written is refused and leaves no subscriber
    (on PostgreSQL the record is written by the batched writer, live.opens)."""
    reader = await officer(app, client, "reader", "SAMU")
    try:
        async with serve(app) as base:
            await app.state.hub.ensure_started()
            async with owner(owner_database_url) as session:
                await refuse_audit(session)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                response = await http.get("/api/v1/stream", headers=reader)
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "audit_unavailable"
            assert not app.state.hub.subscribers
            await asyncio.wait_for(released(app, 0), 10)
    finally:
        await app.state.hub.stop()
        await app.state.engine.dispose()
