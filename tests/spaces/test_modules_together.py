"""Several modules of a space in one answer (ADR 0051), on both engines: each as the per-module
route answers it for that reader — readers with other rights see other rows, a module over a
product the reader may not see is the placeholder of a product that never existed —, an id
the space does not have is a clear error, every reader's read is audited (a shared result's
reads again, marked ``shared``), and the page's route gives each module's fragment."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.spaces.cache import ModuleCache
from tests.factories import tx
from tests.spaces.test_shared_modules import world
from tests.spaces.test_spaces_api import PUBLIC, SANTE_ONLY, data, module, product
from tests.web.pages import browse_as

ASKED = ["lits", "cache", "absent", "fil", "texte"]


async def space(client: AsyncClient, w: dict[str, Any]) -> str:
    """A public space over the world's product, a product only SANTE reads and one that never
    existed."""
    hidden = await product(client, w["headers"]["steward"], SANTE_ONLY)
    modules = [
        module("lits", "table", product_id=w["pid"], sort="hopital"),
        module("cache", "table", product_id=hidden),
        module("absent", "table", product_id=str(uuid.uuid4())),
        module("fil", "feed", limit=10),
        module("texte", "text", markdown="**Consignes**"),
    ]
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "PC avancé", "modules": modules, "label": PUBLIC},
        headers=w["headers"]["prefet"],
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def together(client: AsyncClient, headers: dict[str, str], sid: str, ids: list[str]) -> Any:
    got = await client.get(
        f"/api/v1/spaces/{sid}/modules/data", params={"modules": ",".join(ids)}, headers=headers
    )
    assert got.status_code == 200, got.text
    return got.json()["items"]


async def records(app: FastAPI, username: str, action: str) -> list[AuditRecord]:
    async with tx(app) as session:
        found = await session.scalars(
            select(AuditRecord)
            .where(AuditRecord.actor_name == username, AuditRecord.action == action)
            .order_by(AuditRecord.qid)
        )
        return list(found)


async def test_each_module_as_the_reader_reads_it_alone_and_each_read_audited(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h = w["headers"]
    sid = await space(client, w)
    cache: ModuleCache = app.state.module_cache
    cache.invalidate()

    prefect = await together(client, h["prefet"], sid, ASKED)
    assert [i["module_id"] for i in prefect] == ASKED  # in the order asked
    for item in prefect:  # the same answer as the module's own route
        assert item == await data(client, h["prefet"], sid, item["module_id"])
    by_id = {i["module_id"]: i for i in prefect}
    assert "patients" not in by_id["lits"]["data"]["columns"]
    assert len(by_id["lits"]["data"]["rows"]) == 4
    # a product the prefect may not see: the placeholder of one that never existed
    assert by_id["cache"]["status"] == "unavailable" and by_id["cache"]["live"] == []
    assert {**by_id["cache"], "module_id": "absent"} == by_id["absent"]
    assert by_id["texte"]["status"] == "ok"

    doctor = {i["module_id"]: i for i in await together(client, h["medecin"], sid, ["lits"])}
    assert "patients" in doctor["lits"]["data"]["columns"]
    assert len(doctor["lits"]["data"]["rows"]) == 5
    steward = {i["module_id"]: i for i in await together(client, h["steward"], sid, ["cache"])}
    assert steward["cache"]["status"] == "ok" and steward["cache"]["data"]["rows"]

    # the deputy has the prefect's rights: served the shared results, each read audited
    hits = cache.hits
    deputy = await together(client, h["adjoint"], sid, ASKED)
    assert deputy == prefect and cache.hits >= hits + len(ASKED)
    modules = await records(app, "adjoint", "space.module")
    assert [r.detail["module"] for r in modules] == ASKED
    assert all(r.detail.get("shared") for r in modules)
    assert all(r.resource_ids == [sid] for r in modules)
    assert [r.detail["status"] for r in modules] == [
        "ok", "unavailable", "unavailable", "ok", "ok"
    ]  # fmt: skip
    rows = [r for r in await records(app, "adjoint", "product.rows") if r.detail.get("shared")]
    assert len(rows) == 1 and rows[0].resource_ids == [w["pid"]]
    assert rows[0].detail["space"] == sid and rows[0].detail["module"] == "lits"
    # the prefect's own reads were computed: their records, not marked shared
    mine = await records(app, "prefet", "space.module")
    assert [r.detail["module"] for r in mine][: len(ASKED)] == ASKED
    assert not any(r.detail.get("shared") for r in mine[: len(ASKED)])


async def test_an_unknown_module_none_or_a_hidden_space_is_a_clear_error(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h = w["headers"]
    sid = w["sid"]
    url = f"/api/v1/spaces/{sid}/modules/data"
    unknown = await client.get(url, params={"modules": "lits,nulle-part"}, headers=h["prefet"])
    assert unknown.status_code == 404 and "nulle-part" in unknown.text
    for empty in ("", ",", " , "):
        got = await client.get(url, params={"modules": empty}, headers=h["prefet"])
        assert got.status_code == 422, (empty, got.text)
    assert (await client.get(url, headers=h["prefet"])).status_code == 422
    too_many = ",".join(f"m{n}" for n in range(41))
    crowded = await client.get(url, params={"modules": too_many}, headers=h["prefet"])
    assert crowded.status_code == 422, crowded.text

    # a space the reader may not read: 404, as for a space that does not exist
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Cellule santé", "modules": [module("texte", "text", markdown="x")],
              "label": SANTE_ONLY},
        headers=h["steward"],
    )  # fmt: skip
    assert made.status_code == 201, made.text
    hidden = f"/api/v1/spaces/{made.json()['id']}/modules/data"
    missing = f"/api/v1/spaces/{uuid.uuid4()}/modules/data"
    refused = await client.get(hidden, params={"modules": "texte"}, headers=h["prefet"])
    absent = await client.get(missing, params={"modules": "texte"}, headers=h["prefet"])
    assert refused.status_code == absent.status_code == 404
    assert refused.json()["error"] == absent.json()["error"]
    assert await records(app, "prefet", "space.module") == []  # nothing delivered


async def test_the_page_route_gives_each_modules_fragment(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    sid = await space(client, w)
    await browse_as(client, "adjoint")
    got = await client.get(
        f"/espaces/{sid}/modules", params={"modules": "lits,cache,texte"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert got.status_code == 200, got.text
    assert re.findall(r'<template data-fragment="([\w-]+)">', got.text) == [
        "lits", "cache", "texte"
    ]  # fmt: skip
    fragments = dict(
        re.findall(r'<template data-fragment="([\w-]+)">(.*?)</template>', got.text, re.S)
    )
    assert "Bichat" in fragments["lits"] and "patients" not in fragments["lits"].lower()
    assert 'data-status="unavailable"' in fragments["cache"]
    assert "<strong>Consignes</strong>" in fragments["texte"]
    alone = await client.get(f"/espaces/{sid}/modules/texte", headers={"HX-Request": "true"})
    assert alone.text.strip() == fragments["texte"].strip()
    # a module removed since the page was opened: a notice to reload, the others refreshed
    removed = await client.get(
        f"/espaces/{sid}/modules", params={"modules": "inconnu,texte"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert removed.status_code == 200, removed.text
    parts = dict(
        re.findall(r'<template data-fragment="([\w-]+)">(.*?)</template>', removed.text, re.S)
    )
    assert parts["texte"].strip() == fragments["texte"].strip()
    assert 'data-status="removed"' in parts["inconnu"]
    assert "Ce module a été retiré de l'espace." in parts["inconnu"].replace("&#39;", "'")
    only_removed = await client.get(f"/espaces/{sid}/modules", params={"modules": "inconnu"})
    assert only_removed.status_code == 200 and 'data-status="removed"' in only_removed.text
    assert [r.detail["module"] for r in await records(app, "adjoint", "space.module")] == [
        "lits", "cache", "texte", "texte", "texte"
    ]  # fmt: skip


async def test_a_fragment_is_rendered_once_per_shared_result_but_a_form_each_time(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Main courante", "label": PUBLIC, "modules": [
            module("texte", "text", markdown="**Consignes**"),
            module("lits", "table", product_id=w["pid"], sort="hopital"),
            module("signaler", "form", target="entry")]},
        headers=w["headers"]["prefet"],
    )  # fmt: skip
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    cache: ModuleCache = app.state.module_cache
    cache.invalidate()

    async def fragments(username: str) -> dict[str, str]:
        await browse_as(client, username)
        got = await client.get(
            f"/espaces/{sid}/modules", params={"modules": "texte,lits,signaler"},
            headers={"HX-Request": "true"},
        )  # fmt: skip
        assert got.status_code == 200, got.text
        found = re.findall(r'<template data-fragment="([\w-]+)">(.*?)</template>', got.text, re.S)
        return dict(found)

    prefect, deputy, doctor = (
        await fragments("prefet"), await fragments("adjoint"), await fragments("medecin")
    )  # fmt: skip
    kept = {v for result in cache._entries.values() for v in result.rendered.values()}
    assert prefect["texte"] in kept and prefect["lits"] in kept
    assert deputy["texte"] == prefect["texte"] and deputy["lits"] == prefect["lits"]
    assert "patients" in doctor["lits"].lower() and doctor["lits"] not in {prefect["lits"]}
    # a form holds the reader's own CSRF token: never kept, rendered for each reader
    assert not any("csrf_token" in html for html in kept)
    token = re.compile(r'name="csrf_token" value="([^"]+)"')
    assert token.findall(prefect["signaler"]) != token.findall(deputy["signaler"])
    # each reader's read audited all the same
    for username in ("prefet", "adjoint", "medecin"):
        read = [r.detail["module"] for r in await records(app, username, "space.module")]
        assert read == ["texte", "lits", "signaler"]
