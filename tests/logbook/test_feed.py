"""The feed: filters, keyset pagination, audit of delivered ids, bounded query count."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from tests.factories import ENTRY, officer, tx
from tests.queries import count_queries

PUBLIC = {"level": "NP", "audience": []}


async def test_filters_and_pagination(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    for i in range(7):
        body = {
            **ENTRY,
            "title": f"Entrée {i}",
            "label": PUBLIC,
            "category": "traffic" if i % 2 else "security",
            "severity": "critical" if i == 3 else "minor",
            "tags": ["jo", f"t{i}"],
            "location": {"type": "Point", "coordinates": [2.29 + i * 0.01, 48.85]},
        }
        assert (await client.post("/api/v1/entries", json=body, headers=alice)).status_code == 201
    page1 = (await client.get("/api/v1/entries?limit=3", headers=alice)).json()
    page2 = (
        await client.get(f"/api/v1/entries?limit=3&cursor={page1['next_cursor']}", headers=alice)
    ).json()
    page3 = (
        await client.get(f"/api/v1/entries?limit=3&cursor={page2['next_cursor']}", headers=alice)
    ).json()
    titles = [e["title"] for p in (page1, page2, page3) for e in p["items"]]
    assert titles == [f"Entrée {i}" for i in range(6, -1, -1)]
    assert page3["next_cursor"] is None

    async def titles_for(query: str) -> list[str]:
        response = await client.get(f"/api/v1/entries?{query}", headers=alice)
        assert response.status_code == 200, response.text
        return sorted(e["title"] for e in response.json()["items"])

    assert await titles_for("category=traffic") == ["Entrée 1", "Entrée 3", "Entrée 5"]
    assert await titles_for("severity=critical") == ["Entrée 3"]
    assert await titles_for("tag=t4") == ["Entrée 4"]
    assert await titles_for("tag=jo&tag=t2") == ["Entrée 2"]
    assert await titles_for("bbox=2.305,48.8,2.325,48.9") == ["Entrée 2", "Entrée 3"]
    assert await titles_for("organisation=PP&status=open") == [f"Entrée {i}" for i in range(7)]
    assert await titles_for("since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z") == []
    for bad in (
        "bbox=1,2,3",
        "bbox=10,0,5,1",
        "cursor=%%%",
        "since=2024-01-01T00:00:00",
        "limit=0",
        "severity=huge",
        "organisation=NOPE",
    ):
        response = await client.get(f"/api/v1/entries?{bad}", headers=alice)
        assert response.status_code in (404, 422), bad


async def test_list_is_audited_with_delivered_ids(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    ids = [
        (
            await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
        ).json()["id"]
        for _ in range(3)
    ]
    await client.get("/api/v1/entries", headers=alice)
    async with tx(app) as session:
        record = await session.scalar(
            select(AuditRecord)
            .where(AuditRecord.action == "entry.list")
            .order_by(AuditRecord.qid.desc())
        )
    assert record is not None
    assert sorted(record.resource_ids) == sorted(ids)
    assert record.labels == ["NP"]


async def test_feed_query_count_is_bounded(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    for _ in range(3):
        await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
    with count_queries(app) as few:
        await client.get("/api/v1/entries?limit=3", headers=alice)
    for _ in range(20):
        await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
    with count_queries(app) as many:
        response = await client.get("/api/v1/entries?limit=23", headers=alice)
    assert len(response.json()["items"]) == 23
    assert len(many) == len(few)  # no query per row
    assert len(many) <= 14
