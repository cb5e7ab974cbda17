"""Module results shared between readers (ADR 0047), on both engines: readers the policy can
tell apart never share a result; readers it cannot do, each leaving their own audit records
(``shared``); a write, a rule change or a relabelling is seen by the next read; concurrent
identical reads compute once; a product's event reaches the streams that follow that product
only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.live.hub import Filters
from hypervision.spaces.cache import ModuleCache, Shared
from tests.factories import ENTRY, make_user, sign_in, tx
from tests.products.test_products_api import CSV, SCHEMA, make_health, rules, upload
from tests.spaces.test_spaces_api import PUBLIC, data, module


async def world(app: FastAPI, client: AsyncClient) -> dict[str, Any]:
    """A product under rules (SAMU rows for health organisations, patients for MEDICAL), a
    public space over it, and readers: two of the prefecture alike, a doctor of the agency."""
    health = await make_health(app)
    await make_user(app, "adjoint", "PREF", clearance="DR")
    await make_user(app, "stagiaire", "PREF", clearance="NP")
    headers = {n: await sign_in(client, n) for n in
               ("steward", "medecin", "prefet", "adjoint", "stagiaire")}  # fmt: skip
    created = await client.post(
        "/api/v1/products",
        json={"slug": "capacite", "name": "Capacité", "description": "Lits",
              "table_schema": SCHEMA, "rules": rules(health), "label": PUBLIC},
        headers=headers["steward"],
    )  # fmt: skip
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert (await upload(client, headers["steward"], pid, CSV)).status_code == 201
    moved = await client.post(
        f"/api/v1/products/{pid}/status", json={"status": "active"}, headers=headers["steward"]
    )
    assert moved.status_code == 200, moved.text
    modules = [
        module("lits", "table", product_id=pid, sort="hopital"),
        module("total", "kpi", source="product", product_id=pid, measure="sum:lits"),
        module("fil", "feed", limit=10),
        module("texte", "text", markdown="**Consignes**"),
    ]
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "PC", "modules": modules, "label": PUBLIC},
        headers=headers["prefet"],
    )
    assert made.status_code == 201, made.text
    return {"headers": headers, "pid": pid, "sid": made.json()["id"]}


async def shared_records(app: FastAPI, username: str, action: str) -> list[AuditRecord]:
    async with tx(app) as session:
        found = await session.scalars(
            select(AuditRecord).where(
                AuditRecord.actor_name == username, AuditRecord.action == action
            )
        )
        return [r for r in found if r.detail.get("shared")]


async def test_readers_the_policy_tells_apart_never_share_and_others_do_each_audited(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, sid = w["headers"], w["sid"]
    cache: ModuleCache = app.state.module_cache
    cache.invalidate()

    doctor = await data(client, h["medecin"], sid, "lits")
    prefect = await data(client, h["prefet"], sid, "lits")
    assert "patients" in doctor["data"]["columns"] and len(doctor["data"]["rows"]) == 5
    assert "patients" not in prefect["data"]["columns"] and len(prefect["data"]["rows"]) == 4
    assert cache.hits == 0  # different rights: two computations

    deputy = await data(client, h["adjoint"], sid, "lits")  # the prefect's rights exactly
    assert deputy == prefect and cache.hits == 1
    intern = await data(client, h["stagiaire"], sid, "lits")  # a lower clearance: its own
    assert intern["data"] == prefect["data"] and cache.hits == 1

    # the deputy's read left its own records: the product's rows and the module, shared
    rows = await shared_records(app, "adjoint", "product.rows")
    assert len(rows) == 1 and rows[0].resource_ids == [w["pid"]]
    assert rows[0].detail["rows"] == 4 and "patients" not in rows[0].detail["columns"]
    assert len(await shared_records(app, "adjoint", "space.module")) == 1
    assert await shared_records(app, "prefet", "space.module") == []


async def test_a_write_and_a_rule_change_are_seen_by_the_next_read(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, sid, pid = w["headers"], w["sid"], w["pid"]
    cache: ModuleCache = app.state.module_cache

    before = await data(client, h["prefet"], sid, "total")
    assert before["data"]["value"] == 140  # 152 less the SAMU row's 12
    feed = await data(client, h["prefet"], sid, "fil")
    assert feed["data"]["entries"] == []
    assert await data(client, h["adjoint"], sid, "total") == before  # shared

    # an import: the next read counts it, for every reader (no wait for MAX_AGE)
    more = b"hopital;departement;service;lits;patients;taux\nCochin;75;Urgences;8;3;0,4\n"
    assert (await upload(client, h["steward"], pid, more, mode="append")).status_code == 201
    assert (await data(client, h["adjoint"], sid, "total"))["data"]["value"] == 148

    # an entry: the feed shows it at once
    body = {**ENTRY, "label": PUBLIC}
    assert (await client.post("/api/v1/entries", json=body, headers=h["prefet"])).status_code == 201
    titles = [e["title"] for e in (await data(client, h["adjoint"], sid, "fil"))["data"]["entries"]]
    assert titles == [ENTRY["title"]]

    # a rule that hides Bichat's rows from everyone: gone at once from the shared results
    product = (await client.get(f"/api/v1/products/{pid}", headers=h["steward"])).json()
    narrowed = {**product["rules"]}
    bichat = {"op": "eq", "left": {"rec": "hopital"}, "right": {"value": "Bichat"}}
    narrowed["rows"] = [{"effect": "deny", "when": bichat}, *narrowed["rows"]]
    changed = await client.put(
        f"/api/v1/products/{pid}/rules", json={"rules": narrowed}, headers=h["steward"]
    )
    assert changed.status_code == 200 and changed.json()["pending"] is None, changed.text
    hits = cache.hits
    table = await data(client, h["prefet"], sid, "lits")
    assert "Bichat" not in str(table["data"]["rows"]) and cache.hits == hits
    assert (await data(client, h["adjoint"], sid, "total"))["data"]["value"] == 108


async def test_concurrent_identical_reads_compute_once() -> None:
    cache = ModuleCache()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> Shared:
        nonlocal calls
        calls += 1
        await gate.wait()
        return Shared("ok", None, "NP", {"value": 1}, [], ("NP",), ())

    key = ("space", "module", "fr", "signature", (1,), 0)
    readers = [asyncio.create_task(cache.get(key, compute)) for _ in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    answers = await asyncio.gather(*readers)
    assert calls == 1
    assert sorted(shared for _, shared in answers) == [False, True, True, True, True]
    assert len({id(result) for result, _ in answers}) == 1

    # a failure that must not be shared: each waiting reader computes its own
    failing = Shared("invalid", None, None, {}, [], (), (), shareable=False)

    async def broken() -> Shared:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return failing

    calls = 0
    other = ("space", "module", "fr", "signature", (2,), 0)
    answers = await asyncio.gather(*(cache.get(other, broken) for _ in range(3)))
    assert calls == 3 and all(not shared for _, shared in answers)
    assert len(cache) == 1  # only the shareable result is kept


async def test_the_cache_is_bounded_and_forgets_old_results() -> None:
    cache = ModuleCache(max_age=0.05, max_entries=3, max_bytes=10_000)

    def result(size: int) -> Shared:
        return Shared("ok", None, None, {}, [], (), (), size=size)

    for n in range(5):
        await cache.get(("k", n), lambda: _ready(result(10)))
    assert len(cache) == 3  # the least recently used went first
    await cache.get(("k", 0), lambda: _ready(result(1000)))  # over max_bytes / 16: not kept
    assert len(cache) == 3 and ("k", 0) not in cache._entries
    await asyncio.sleep(0.06)
    _, shared = await cache.get(("k", 4), lambda: _ready(result(10)))
    assert not shared  # older than max_age: computed again


async def _ready(value: Shared) -> Shared:
    return value


async def test_a_product_topic_carries_that_product_only(app: FastAPI, client: AsyncClient) -> None:
    w = await world(app, client)
    pid = w["pid"]
    following = Filters(topics=frozenset({f"product:{pid}", "entry"}))
    async with tx(app) as session:
        events = list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
    mine = [e for e in events if e.resource_type == "product" and str(e.resource_id) == pid]
    assert mine and all(following.accepts(e) for e in mine)
    other = OutboxEvent(type="product.import", resource_type="product",
                        resource_id=uuid.uuid4(), label={}, payload={})  # fmt: skip
    assert not following.accepts(other)

    stream = await client.get(
        "/api/v1/stream", params={"topic": ["entry", "product:nope"]},
        headers=w["headers"]["prefet"],
    )  # fmt: skip
    assert stream.status_code == 422


async def test_module_data_names_its_product_topic_and_a_placeholder_none(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, sid, pid = w["headers"], w["sid"], w["pid"]
    seen = await data(client, h["prefet"], sid, "lits")
    assert seen["live"] == [f"product:{pid}"]
    assert (await data(client, h["prefet"], sid, "fil"))["live"] == ["entry"]
