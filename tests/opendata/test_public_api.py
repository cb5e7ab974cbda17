"""The public API and downloads (ADR 0035), no sign-in: listing and search, rows with filters,
ETag and 304, 429 with Retry-After, every format, a large release streamed, an aggregated
publication with suppression. On both engines."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import MutableMapping
from typing import Any

import pyarrow.parquet as pq
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.opendata.ratelimit import TokenBuckets
from tests.opendata.test_publications import product, propose, published, stewards
from tests.products.test_products_api import health, upload
from tests.queries import count_queries

__all__ = ["health"]


async def test_listing_rows_filters_and_caching(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    await published(app, client, health)
    listing = await client.get("/opendata/api/datasets?q=hopitaux")
    assert listing.status_code == 200
    assert [d["slug"] for d in listing.json()["datasets"]] == ["lits-hopitaux"]
    assert (await client.get("/opendata/api/datasets?q=zzz")).json()["total"] == 0
    meta = (await client.get("/opendata/api/datasets/lits-hopitaux")).json()
    assert meta["licence"].startswith("https://www.etalab.gouv.fr/")
    assert meta["themes"] == ["HEAL"] and meta["publisher"] == "Organisation SANTE"
    assert [f["name"] for f in meta["fields"]] == ["hopital", "departement", "service", "lits"]

    rows = await client.get("/opendata/api/datasets/lits-hopitaux/rows?departement=93&size=1")
    assert rows.status_code == 200, rows.text
    body = rows.json()
    assert body["total"] == 2 and len(body["rows"]) == 1
    assert body["rows"][0] == {
        "hopital": "Avicenne",
        "departement": "93",
        "service": "Urgences",
        "lits": 30,
    }
    typed = await client.get("/opendata/api/datasets/lits-hopitaux/rows?lits=40")
    assert [r["hopital"] for r in typed.json()["rows"]] == ["Bichat"]
    bad = await client.get("/opendata/api/datasets/lits-hopitaux/rows?nope=1")
    assert bad.status_code == 422
    wrong = await client.get("/opendata/api/datasets/lits-hopitaux/rows?lits=abc")
    assert wrong.status_code == 422

    for url in (
        "/opendata/api/datasets",
        "/opendata/api/datasets/lits-hopitaux",
        "/opendata/api/datasets/lits-hopitaux/rows?page=1",
        "/opendata/datasets/lits-hopitaux/releases/1/data.csv",
        "/opendata/datasets/lits-hopitaux/releases/latest/data.json",
    ):
        first = await client.get(url)
        assert first.status_code == 200, url
        tag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("public, max-age=")
        again = await client.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["etag"] == tag


CONDITIONAL = (
    "/opendata/api/datasets",
    "/opendata/api/datasets/lits-hopitaux",
    "/opendata/api/datasets/lits-hopitaux/rows?departement=93&size=1",
    "/opendata/api/datasets/lits-hopitaux/schema.json",
    "/catalogue.jsonld",
    "/catalogue.ttl",
)


async def test_a_matching_etag_is_answered_before_the_data_is_read(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    """A conditional request with a matching ``If-None-Match`` costs the dataset's metadata,
    not its releases and rows; a new release changes every tag."""
    _, second, _, pub, _ = await published(app, client, health)
    tags = {}
    for url in CONDITIONAL:
        first = await client.get(url)
        assert first.status_code == 200, (url, first.text)
        tags[url] = first.headers["etag"]
        with count_queries(app) as statements:
            again = await client.get(url, headers={"If-None-Match": tags[url]})
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["etag"] == tags[url]
        read = [s for s in statements if "opendata_releases" in s or "opendata_rows" in s]
        assert read == [], (url, read)
    assert len(set(tags.values())) == len(CONDITIONAL)  # each answer its own tag
    other = await client.get(
        f"{CONDITIONAL[2]}&page=2", headers={"If-None-Match": tags[CONDITIONAL[2]]}
    )
    assert other.status_code == 200 and other.json()["page"] == 2

    refreshed = await client.post(f"/api/v1/publications/{pub}/refresh", headers=second)
    assert refreshed.status_code == 200 and refreshed.json()["release_count"] == 2
    for url, tag in tags.items():
        answer = await client.get(url, headers={"If-None-Match": tag})
        assert answer.status_code == 200, url
        assert answer.headers["etag"] != tag, url
    rows = await client.get(CONDITIONAL[2])
    assert rows.json()["release"] == 2


async def test_every_format(app: FastAPI, client: AsyncClient, health: str) -> None:
    _, _, _, _, release = await published(app, client, health)
    assert set(release["downloads"]) == {"csv", "json", "parquet"}  # no geometry
    as_json = await client.get(release["downloads"]["json"])
    assert as_json.headers["content-type"] == "application/json"
    assert [r["lits"] for r in as_json.json()] == [40, 12, 30, 20, 50]
    parquet = await client.get(release["downloads"]["parquet"])
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("lits").to_pylist() == [40, 12, 30, 20, 50]
    none = await client.get("/opendata/datasets/lits-hopitaux/releases/1/data.geojson")
    assert none.status_code == 404
    for bad in ("/releases/9/data.csv", "/releases/1/data.xlsx", "/releases/x/data.csv"):
        assert (await client.get(f"/opendata/datasets/lits-hopitaux{bad}")).status_code == 404


async def test_scraping_beyond_the_limit_gets_429(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    app.state.opendata_buckets = TokenBuckets(rate=0.01, burst=3)
    answers = [await client.get("/opendata/api/datasets") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1


async def body_messages(app: FastAPI, path: str) -> list[bytes]:
    """The body messages the application sends for ``GET path``, as a server receives them
    (httpx's test transport joins them into one)."""
    sent: list[bytes] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"accept-encoding", b"identity")],
        "client": ("127.0.0.9", 5000),
        "server": ("test", 80),
    }

    asked = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not asked.is_set():
            asked.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer ends
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body" and message.get("body"):
            sent.append(message["body"])

    await app(scope, receive, send)
    return sent


async def test_a_large_release_is_streamed(app: FastAPI, client: AsyncClient, health: str) -> None:
    first, second = await stewards(app, client)
    pid = await product(client, first, health)
    lines = ["hopital;departement;service;lits;patients;taux"]
    lines += [f"H{i};{i % 95:02d};S;{i % 300};1;0,5" for i in range(12_000)]
    assert (await upload(client, first, pid, "\n".join(lines).encode())).status_code == 201
    made = await propose(client, first, pid)
    approved = await client.post(
        f"/api/v1/publications/{made.json()['id']}/approve", headers=second
    )
    release = approved.json()
    assert release["row_count"] == 12_000
    chunks = []
    chunks = await body_messages(app, release["downloads"]["csv"])
    assert len(chunks) >= 3  # the header, then one message per batch of 5,000 rows
    content = b"".join(chunks)
    assert hashlib.sha256(content).hexdigest() == release["sha256"]
    assert len(list(csv.reader(io.StringIO(content.decode())))) == 12_001
    as_json = await client.get(release["downloads"]["json"])
    assert len(json.loads(as_json.content)) == 12_000


async def test_an_aggregated_publication_suppresses_small_counts(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, second = await stewards(app, client)
    pid = await product(client, first, health)
    lines = ["hopital;departement;service;lits;patients;taux"]
    sizes = {"75": 30, "93": 4, "94": 15}
    lines += [f"H{d}-{i};{d};S;1;1;0,5" for d, n in sizes.items() for i in range(n)]
    assert (await upload(client, first, pid, "\n".join(lines).encode())).status_code == 201
    made = await propose(
        client,
        first,
        pid,
        slug="lits-par-departement",
        columns=[],
        aggregation={"group_by": ["departement"], "measures": ["count", "sum:lits"]},
    )
    assert made.status_code == 201, made.text
    approved = await client.post(
        f"/api/v1/publications/{made.json()['id']}/approve", headers=second
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["suppressed"] == 2
    rows = (await client.get("/opendata/api/datasets/lits-par-departement/rows")).json()
    assert rows["rows"] == [
        {"departement": "75", "count": 30, "sum_lits": 30, "suppressed": False},
        {"departement": "93", "count": None, "sum_lits": None, "suppressed": True},
        {"departement": "94", "count": None, "sum_lits": None, "suppressed": True},
    ]
