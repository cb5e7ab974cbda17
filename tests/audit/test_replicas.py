"""Several app instances (separate connection pools, as separate processes would have) write
concurrently to one database: the audit chain stays one unbroken sequence."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hypervision.app import create_app
from hypervision.audit import service as audit
from tests.factories import ENTRY, officer, sign_in, tx


async def test_two_instances_one_chain(app: FastAPI, client: AsyncClient) -> None:
    headers = await officer(app, client, "alice", "PP")
    other_app = create_app(app.state.settings)
    transport = ASGITransport(app=other_app)
    try:
        async with AsyncClient(transport=transport, base_url="https://other") as other:
            other_headers = await sign_in(other, "alice")
            jobs = [
                (client if i % 2 else other).post(
                    "/api/v1/entries",
                    json={**ENTRY, "title": f"E{i}"},
                    headers=headers if i % 2 else other_headers,
                )
                for i in range(24)
            ]
            answers = await asyncio.gather(*jobs)
    finally:
        await other_app.state.engine.dispose()
    assert all(a.status_code == 201 for a in answers), [
        a.text for a in answers if a.status_code != 201
    ]
    async with tx(app) as session:
        result = await audit.verify(session=session)
    assert result.ok, result.problem
    assert result.checked >= 24 + 2  # one record per entry, plus the two sign-ins
