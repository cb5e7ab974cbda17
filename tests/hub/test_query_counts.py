"""The hub is everyone's home page: its number of SQL statements does not grow with the shifts,
documents and announcements it shows (no query per item)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.hub.world import PUBLIC, at, cast
from tests.queries import count_queries
from tests.web.pages import browse_as

CEILING = 20  # 12 on SQLite, 15 on PostgreSQL (its request context) today


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A browser of its own (cookies), next to ``client`` which uses bearer tokens."""
    transport = ASGITransport(app=app, client=("203.0.113.9", 50002))
    async with AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def add(client: AsyncClient, h: dict[str, dict[str, str]], n: int, tag: str) -> None:
    for i in range(n):
        shift = {
            "username": "olga" if i % 2 else "dr",
            "organisation": "PREF",
            "room": f"Salle {tag}{i % 3}",
            "starts_at": at(-1 + i),
            "ends_at": at(4 + i),
        }
        assert (await client.post("/api/v1/hub/duty", json=shift, headers=h["marc"])).is_success
        notice = {"title": f"Annonce {tag}{i}", "label": PUBLIC}
        made = await client.post("/api/v1/hub/announcements", json=notice, headers=h["chef"])
        assert made.is_success
        shared = await client.post(
            "/api/v1/hub/documents",
            params={"title": f"Document {tag}{i}", "level": "NP"},
            files={"file": ("d.txt", b"d\n")},
            headers=h["olga" if i % 2 else "dr"],
        )
        assert shared.is_success


async def counted(app: FastAPI, web: AsyncClient) -> int:
    with count_queries(app) as statements:
        page = await web.get("/accueil")
    assert page.status_code == 200
    return len(statements)


async def test_the_hub_page(app: FastAPI, client: AsyncClient, web: AsyncClient) -> None:
    h = await cast(app, client)
    await browse_as(web, "olga")
    await add(client, h, 2, "a")
    few = await counted(app, web)
    await add(client, h, 8, "b")
    many = await counted(app, web)
    assert few == many, "no query per shift, document or announcement"
    assert many <= CEILING, many
