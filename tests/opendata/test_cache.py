"""The public answers' cache (ADR 0049): hits touch no database and keep the rate limit;
what is public changing (approval, withdrawal) is seen at once by the replica that made the
change, and by another replica sharing the database at its next generation check."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hypervision.app import create_app
from hypervision.opendata.cache import PublicCache
from hypervision.opendata.ratelimit import TokenBuckets
from tests.opendata.test_publications import product, propose, published, stewards
from tests.products.test_products_api import health
from tests.queries import count_queries

__all__ = ["health"]

META = "/opendata/api/datasets/lits-hopitaux"
PUBLIC = (
    META,
    f"{META}/rows?size=2",
    f"{META}/schema.json",
    "/opendata/api/datasets",
    "/opendata/api/datasets?q=lits",
    "/opendata",
    "/opendata/lits-hopitaux",
    "/catalogue.jsonld",
    "/catalogue.ttl",
)


def cache_of(app: FastAPI) -> PublicCache:
    found: PublicCache = app.state.opendata_cache
    return found


async def test_hits_are_served_without_the_database(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    await published(app, client, health)
    first = {url: await client.get(url) for url in PUBLIC}
    assert {url: a.status_code for url, a in first.items()} == dict.fromkeys(PUBLIC, 200)
    with count_queries(app) as statements:
        again = {url: await client.get(url) for url in PUBLIC}
        tag = first[META].headers["etag"]
        revalidated = await client.get(META, headers={"If-None-Match": tag})
    assert statements == []
    for url in PUBLIC:
        assert again[url].content == first[url].content, url
        assert again[url].headers["etag"] == first[url].headers["etag"], url
        assert again[url].headers["content-security-policy"], url  # the request context's
        assert again[url].headers["x-request-id"] != first[url].headers["x-request-id"]
    assert revalidated.status_code == 304
    assert revalidated.headers["etag"] == tag
    # Another language, another entry: the English page is not the French one.
    english = await client.get("/opendata/lits-hopitaux", headers={"Cookie": "hv_lang=en"})
    assert english.headers["content-language"] == "en"
    assert "Releases" in english.text and "Versions" not in english.text
    assert cache_of(app).cache.hits >= len(PUBLIC)


async def test_a_signed_in_reader_is_not_served_from_the_cache(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _, _, _, _ = await published(app, client, health)
    await client.get(META)
    with count_queries(app) as statements:
        signed = await client.get(META, headers=first)
    assert signed.status_code == 200
    assert statements  # through the application, answered no-store by the request context
    assert signed.headers["cache-control"] == "no-store"


async def test_the_rate_limit_applies_to_hits(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    await published(app, client, health)
    await client.get(META)
    app.state.opendata_buckets = TokenBuckets(rate=0.01, burst=2)
    with count_queries(app) as statements:
        answers = [await client.get(META) for _ in range(2)]
    assert statements == []  # two hits
    refused = await client.get(META)
    assert [a.status_code for a in answers] == [200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Trop de tentatives" in refused.json()["error"]["message"]


async def test_an_approval_is_visible_at_once(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, second = await stewards(app, client)
    pid = await product(client, first, health)
    made = await propose(client, first, pid)
    assert (await client.get("/opendata/api/datasets")).json()["total"] == 0
    assert (await client.get(META)).status_code == 404
    approved = await client.post(
        f"/api/v1/publications/{made.json()['id']}/approve", headers=second
    )
    assert approved.status_code == 200, approved.text
    assert (await client.get("/opendata/api/datasets")).json()["total"] == 1
    assert (await client.get(META)).status_code == 200
    assert "Lits des hôpitaux" in (await client.get("/opendata")).text


@pytest.fixture
async def other(app: FastAPI) -> AsyncIterator[FastAPI]:
    """A second replica of the application on the same database."""
    replica = create_app(app.state.settings)
    yield replica
    await replica.state.hub.stop()
    await replica.state.engine.dispose()


async def test_a_withdrawal_reaches_every_replica_within_the_check_interval(
    app: FastAPI, other: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _, _, pub, _ = await published(app, client, health)
    transport = ASGITransport(app=other, client=("203.0.113.8", 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as elsewhere:
        assert (await elsewhere.get(META)).status_code == 200  # cached there
        now = [1000.0]
        freshness = cache_of(other).freshness
        freshness.clock = lambda: now[0]
        freshness.next_check = now[0] + other.state.settings.opendata_cache_check_seconds
        assert (await client.get(META)).status_code == 200  # cached here
        gone = await client.post(
            f"/api/v1/publications/{pub}/withdraw",
            json={"reason": "Erreur de saisie dans la source"},
            headers=first,
        )
        assert gone.status_code == 200, gone.text
        here = await client.get(META)
        assert here.status_code == 410 and "Erreur de saisie" in here.text  # this replica
        # The other replica has not looked yet: its answer is at most this old…
        assert (await elsewhere.get(META)).status_code == 200
        # …until its check is due (opendata_cache_check_seconds later).
        now[0] += other.state.settings.opendata_cache_check_seconds
        there = await elsewhere.get(META)
        assert there.status_code == 410 and "Erreur de saisie" in there.text
        assert (await elsewhere.get("/opendata/lits-hopitaux")).status_code == 410
