"""The demo publishes two datasets (issue 19): heat alerts per department, and daily transit
incidents per line with small-count suppression; both public, without sign-in."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.demo import opendata, products, scenario
from tests.factories import tx


async def test_demo_publishes_two_datasets(app: FastAPI, client: AsyncClient) -> None:
    settings = app.state.settings
    async with tx(app) as session:
        await scenario.load(session, settings)
    async with tx(app) as session:
        await products.load(session, settings)
    async with tx(app) as session:
        assert await opendata.load(session, settings) == 2
    async with tx(app) as session:
        assert await opendata.load(session, settings) == 0

    listed = (await client.get("/opendata/api/datasets")).json()
    assert {d["slug"] for d in listed["datasets"]} == {
        "vigilance-canicule",
        "incidents-transports-quotidiens",
    }
    heat = (await client.get("/opendata/api/datasets/vigilance-canicule")).json()
    assert heat["releases"][0]["row_count"] == 56 and heat["themes"] == ["ENVI", "HEAL"]
    assert heat["temporal"] == ["2024-07-30", "2024-08-05"]
    incidents = (await client.get("/opendata/api/datasets/incidents-transports-quotidiens")).json()
    release = incidents["releases"][0]
    assert release["row_count"] > 50 and release["suppressed"] > 0
    rows = await client.get(
        "/opendata/api/datasets/incidents-transports-quotidiens/rows?ligne=RER%20B&size=100"
    )
    body = rows.json()
    assert body["total"] == 14
    assert all(r["count"] is None or r["count"] >= 11 for r in body["rows"])
    assert sum(r["suppressed"] for r in body["rows"]) != 1  # never a lone suppressed cell
