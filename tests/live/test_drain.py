"""A hub told to drain (its process is stopping, ``app.drain_on_sigterm``) ends every stream
with ``shutdown`` and ends at once any stream opened after; the stream endpoint refuses new
ones with 503 and ``Retry-After``. The whole hand-over between replicas is in test_replicas."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.live.hub import Filters
from tests.factories import officer
from tests.live.test_notes import bare_hub, person


def test_draining_closes_every_stream_and_each_new_one(tmp_path: Path) -> None:
    hub = bare_hub(tmp_path)
    open_before = [hub.subscribe(person(uuid.uuid4(), uuid.uuid4()), Filters()) for _ in range(3)]
    hub.drain()
    late = hub.subscribe(person(uuid.uuid4(), uuid.uuid4()), Filters())
    assert [s.closed for s in [*open_before, late]] == ["shutdown"] * 4


async def test_a_draining_server_refuses_new_streams(app: FastAPI, client: AsyncClient) -> None:
    reader = await officer(app, client, "reader", "SAMU")
    app.state.hub.drain()
    refused = await client.get("/api/v1/stream", headers=reader)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "stopping"
