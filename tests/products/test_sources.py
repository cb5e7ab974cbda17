"""HTTP sources of data products, on both engines, against a real HTTP server on a local port:
a steward attaches a source; runs (now, or by the poller when due) import through the normal
path, skip unchanged content, and record every run; a bad file or a refused address changes
nothing and says why; only the stewards of the domain see or change a source."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, update

from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.models import User
from hypervision.products import sources
from hypervision.products.models import DataProduct
from hypervision.products.source_models import ProductSource, ProductSourceRun
from tests.conftest import make_settings
from tests.factories import sign_in, tx
from tests.products.http_source import Page, Site, site
from tests.products.test_products_api import CSV, create, health

__all__ = ["health", "site"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        product_source_hosts=("127.0.0.1",),
        product_source_poll_seconds=0,
        product_source_timeout_seconds=2,
    )


async def steward_product(client: AsyncClient, health: str) -> tuple[dict[str, str], str]:
    headers = await sign_in(client, "steward")
    made = await create(client, headers, health)
    assert made.status_code == 201, made.text
    return headers, made.json()["id"]


async def attach(
    client: AsyncClient, headers: dict[str, str], pid: str, url: str, **extra: Any
) -> Any:
    body = {"url": url, "format": "csv", "mode": "replace", "interval_minutes": 5, **extra}
    return await client.put(f"/api/v1/products/{pid}/source", json=body, headers=headers)


async def test_runs_import_skip_unchanged_and_keep_a_history(
    app: FastAPI, client: AsyncClient, health: str, site: Site
) -> None:
    headers, pid = await steward_product(client, health)
    site.pages["/capacite.csv"] = Page(CSV, headers={"Content-Type": "text/csv"})
    got = await attach(client, headers, pid, site.url("/capacite.csv"))
    assert got.status_code == 200, got.text
    assert got.json()["set_by"] == "steward"

    first = await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() | {"id": None, "started_at": None, "duration_ms": None} == {
        "id": None, "started_at": None, "duration_ms": None, "trigger": "manual",
        "status": "imported", "http_status": 200, "rows": 5, "data_version": 1, "error": "",
    }  # fmt: skip
    # The same ETag: a conditional request, 304, nothing imported.
    again = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert (again["status"], again["http_status"]) == ("unchanged", 304)
    assert again["data_version"] is None
    # No ETag this time, the same bytes: skipped by their hash.
    site.pages["/capacite.csv"] = Page(CSV, etag=False)
    again = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert (again["status"], again["http_status"]) == ("unchanged", 200)
    # New content: version 2, by key per the source's mode (now upsert).
    await attach(client, headers, pid, site.url("/capacite.csv"), mode="upsert")
    site.pages["/capacite.csv"] = Page(CSV.replace(b"Bichat", b"Cochin"))
    second = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert (second["status"], second["data_version"]) == ("imported", 2)
    product = (await client.get(f"/api/v1/products/{pid}", headers=headers)).json()
    assert product["row_count"] == 7

    read = (await client.get(f"/api/v1/products/{pid}/source", headers=headers)).json()
    assert read["source"]["mode"] == "upsert" and read["source"]["last_status"] == "imported"
    assert [r["status"] for r in read["runs"]] == ["imported", "unchanged", "unchanged", "imported"]
    versions = (await client.get(f"/api/v1/products/{pid}/versions", headers=headers)).json()
    assert [v["source"]["filename"] for v in versions] == ["source.csv", "source.csv"]
    async with tx(app) as session:
        actions = list(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action.like("product.source%"))
            )
        )
    assert actions.count("product.source_run") == 4
    assert {"product.source", "product.source_run"} <= set(actions)


async def test_the_poller_runs_due_sources_once(
    app: FastAPI, client: AsyncClient, settings: Settings, health: str, site: Site
) -> None:
    headers, pid = await steward_product(client, health)
    site.pages["/capacite.csv"] = Page(CSV)
    assert (await attach(client, headers, pid, site.url("/capacite.csv"))).status_code == 200
    runs = await sources.poll(app.state.system_sessions, settings)
    assert [(r.status, r.data_version, r.trigger) for r in runs] == [("imported", 1, "schedule")]
    assert await sources.poll(app.state.system_sessions, settings) == []  # not due again yet
    assert site.hits["/capacite.csv"] == 1
    async with tx(app) as session:
        source = await session.scalar(select(ProductSource))
        assert source is not None
        assert source.next_run_at - source.last_run_at == timedelta(minutes=5)
        await session.execute(
            update(ProductSource).values(next_run_at=utcnow() - timedelta(seconds=1))
        )
    runs = await sources.poll(app.state.system_sessions, settings)
    assert [(r.status, r.http_status) for r in runs] == [("unchanged", 304)]
    # By its product's identifier, due or not (the CLI's `products poll <slug>`).
    runs = await sources.poll(app.state.system_sessions, settings, slug="capacite-hopitaux")
    assert [r.status for r in runs] == ["unchanged"]


async def test_a_bad_file_or_a_failing_server_changes_nothing(
    app: FastAPI, client: AsyncClient, health: str, site: Site
) -> None:
    headers, pid = await steward_product(client, health)
    site.pages["/bad.csv"] = Page(CSV + b"Cochin;75;Urgences;douze;1;0,5\n")
    await attach(client, headers, pid, site.url("/bad.csv"))
    run = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert (run["status"], run["http_status"], run["data_version"]) == ("failed", 200, None)
    assert "rien n'est importé" in run["error"] and "ligne 7" in run["error"]

    await attach(client, headers, pid, site.url("/missing.csv"))
    run = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert (run["status"], run["http_status"]) == ("failed", 404)
    assert "404" in run["error"]

    site.pages["/data.json"] = Page(
        b'[{"hopital": "Bichat", "departement": "75", "service": "SAMU", "lits": 2, '
        b'"patients": 1, "taux": 0.5}]'
    )
    await attach(client, headers, pid, site.url("/data.json"))
    run = (await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)).json()
    assert run["status"] == "failed" and "attendu : CSV" in run["error"]

    product = (await client.get(f"/api/v1/products/{pid}", headers=headers)).json()
    assert (product["data_version"], product["row_count"]) == (0, 0)
    async with tx(app) as session:
        assert len(list(await session.scalars(select(ProductSourceRun)))) == 3


async def test_size_limit_timeout_and_redirects(
    app: FastAPI, client: AsyncClient, health: str, site: Site, tmp_path: Path
) -> None:
    headers, pid = await steward_product(client, health)
    big = CSV + b"".join(b"H%d;75;Urgences;1;1;0,5\n" % i for i in range(4000))
    site.pages["/big.csv"] = Page(big, chunked=True)
    site.pages["/slow.csv"] = Page(CSV, delay=3)
    site.pages["/moved.csv"] = Page(status=302, headers={"Location": "/capacite.csv"})
    site.pages["/away.csv"] = Page(
        status=302, headers={"Location": "http://example.com/capacite.csv"}
    )
    site.pages["/capacite.csv"] = Page(CSV)
    small = app.state.settings.model_copy(update={"product_max_bytes": 50_000})

    async def run(path: str, settings: Settings | None = None) -> ProductSourceRun:
        await attach(client, headers, pid, site.url(path))
        async with tx(app) as session:
            source = await session.scalar(select(ProductSource))
            assert source is not None
            await session.execute(
                update(ProductSource).values(next_run_at=utcnow() - timedelta(seconds=1))
            )
        runs = await sources.poll(app.state.system_sessions, settings or app.state.settings)
        assert len(runs) == 1
        return runs[0]

    too_big = await run("/big.csv", small)
    assert too_big.status == "failed" and "trop volumineuse" in too_big.error
    slow = await run("/slow.csv")
    assert slow.status == "failed" and "Pas de réponse complète en 2 s" in slow.error
    moved = await run("/moved.csv")
    assert (moved.status, moved.data_version) == ("imported", 1)
    away = await run("/away.csv")
    assert away.status == "failed" and "« example.com » n'est pas autorisé" in away.error


async def test_only_allowed_urls_and_only_stewards(
    app: FastAPI, client: AsyncClient, health: str, site: Site
) -> None:
    headers, pid = await steward_product(client, health)
    for url, words in (
        ("http://example.com/a.csv", "n'est pas autorisé"),
        ("file:///etc/passwd", "http:// et https://"),
        ("ftp://127.0.0.1/a.csv", "http:// et https://"),
        (f"http://user:secret@127.0.0.1:{site.port}/a.csv", "mot de passe"),
        ("http://localhost/a.csv", "n'est pas autorisé"),
    ):
        got = await attach(client, headers, pid, url)
        assert got.status_code == 422, url
        assert words in got.json()["error"]["message"], (url, got.json())
    got = await attach(client, headers, pid, site.url("/a.csv"), interval_minutes=0)
    assert got.status_code == 422
    got = await attach(client, headers, pid, site.url("/a.csv"), format="xml")
    assert got.status_code == 422

    assert (await attach(client, headers, pid, site.url("/a.csv"))).status_code == 200
    reader = await sign_in(client, "prefet")
    for method, path in (
        ("GET", "source"),
        ("PUT", "source"),
        ("DELETE", "source"),
        ("POST", "source/run"),
    ):
        body = {"url": site.url("/b.csv")} if method == "PUT" else None
        got = await client.request(
            method, f"/api/v1/products/{pid}/{path}", json=body, headers=reader
        )
        assert got.status_code == 403, (method, path, got.text)
        unknown = "/api/v1/products/00000000-0000-4000-8000-000000000000/"
        got = await client.request(method, unknown + path, json=body, headers=headers)
        assert got.status_code == 404, (method, path)
    assert site.hits == {}  # nothing fetched on their behalf

    got = await client.delete(f"/api/v1/products/{pid}/source", headers=headers)
    assert got.status_code == 204
    read = (await client.get(f"/api/v1/products/{pid}/source", headers=headers)).json()
    assert read == {"source": None, "runs": []}
    got = await client.post(f"/api/v1/products/{pid}/source/run", headers=headers)
    assert got.status_code == 404


async def test_runs_act_as_the_steward_and_one_replica_polls_at_a_time(
    app: FastAPI, client: AsyncClient, settings: Settings, health: str, site: Site
) -> None:
    headers, pid = await steward_product(client, health)
    site.pages["/capacite.csv"] = Page(CSV)
    assert (await attach(client, headers, pid, site.url("/capacite.csv"))).status_code == 200
    if app.state.engine.dialect.name == "postgresql":
        # Another replica's round holds the lease: this one skips its round, fetches nothing.
        async with tx(app) as other:
            held = await other.scalar(select(func.pg_try_advisory_xact_lock(sources.LEASE_KEY)))
            assert held
            assert await sources.poll(app.state.system_sessions, settings) == []
        assert site.hits == {}
    # The steward who set the source loses their account: runs fail, nothing is fetched.
    async with tx(app) as session:
        await session.execute(
            update(User).where(User.username == "steward").values(is_active=False)
        )
    runs = await sources.poll(app.state.system_sessions, settings)
    assert [(r.status, r.http_status) for r in runs] == [("failed", None)]
    assert "n'a plus de compte actif" in runs[0].error
    assert site.hits == {}
    async with tx(app) as session:
        product = await session.get(DataProduct, uuid.UUID(pid))
        assert product is not None and product.data_version == 0
