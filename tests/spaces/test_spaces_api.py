"""Spaces through the API, on both engines: made from a template, read and listed under the
policy (label, then the named people), changed by their editors only with If-Match, versioned,
exported and imported; each module's data read as the reader — a module over a product the
reader may not see is a neutral placeholder, the same as over a product that never existed."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, officer, sign_in, tx
from tests.products.test_products_api import CSV, SCHEMA, upload

SANTE_ONLY = {"level": "NP", "need_to_know": [], "audience": ["SANTE"]}
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


def module(ident: str, module_type: str, /, **config: Any) -> dict[str, Any]:
    return {"id": ident, "type": module_type, "title": ident, "x": 0, "y": 0, "w": 6, "h": 3,
            "config": config}  # fmt: skip


async def product(client: AsyncClient, steward: dict[str, str], label: dict[str, Any]) -> str:
    created = await client.post(
        "/api/v1/products",
        json={
            "slug": f"lits-{uuid.uuid4().hex[:6]}",
            "name": "Lits disponibles",
            "description": "Lits par hôpital",
            "table_schema": SCHEMA,
            "label": label,
        },
        headers=steward,
    )
    assert created.status_code == 201, created.text
    pid: str = created.json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    moved = await client.post(
        f"/api/v1/products/{pid}/status", json={"status": "active"}, headers=steward
    )
    assert moved.status_code == 200, moved.text
    return pid


async def data(client: AsyncClient, headers: dict[str, str], sid: str, mid: str) -> Any:
    answer = await client.get(f"/api/v1/spaces/{sid}/modules/{mid}/data", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_template_space_is_shared_with_its_organisation_and_reads_as_each_reader(
    app: FastAPI, client: AsyncClient
) -> None:
    chef = await officer(app, client, "chef", "PREF", roles=(Role.WATCH_OFFICER,))
    voisin = await officer(app, client, "voisin", "PREF", clearance="NP")
    autre = await officer(app, client, "autre", "SDIS")
    for title, level in (("Bus en panne", "NP"), ("Menace ligne 13", "DR")):
        body = {**ENTRY, "title": title, "category": "transport",
                "label": {"level": level, "need_to_know": [], "audience": []}}  # fmt: skip
        assert (await client.post("/api/v1/entries", json=body, headers=chef)).status_code == 201

    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Suivi transport", "template": "suivi-transport"},
        headers=chef,
    )
    assert made.status_code == 201, made.text
    space = made.json()
    sid = space["id"]
    assert made.headers["ETag"] == f'"{sid}.1"'
    assert [m["type"] for m in space["modules"]] == ["kpi", "chart", "feed", "map"]
    assert space["label"]["audience"] == ["PREF"] and space["can_edit"]

    listed = await client.get("/api/v1/spaces", headers=voisin)
    assert [s["id"] for s in listed.json()["items"]] == [sid]
    assert (await client.get("/api/v1/spaces", headers=autre)).json()["total"] == 0
    assert (await client.get(f"/api/v1/spaces/{sid}", headers=autre)).status_code == 404
    hidden = await client.get(f"/api/v1/spaces/{sid}/modules/fil/data", headers=autre)
    assert hidden.status_code == 404

    mine = await data(client, chef, sid, "fil")
    theirs = await data(client, voisin, sid, "fil")
    assert {e["title"] for e in mine["data"]["entries"]} == {"Bus en panne", "Menace ligne 13"}
    assert [e["title"] for e in theirs["data"]["entries"]] == ["Bus en panne"]
    assert (mine["label"], theirs["label"]) == ("DR", "NP")
    assert mine["live"] == ["entry"]
    figure = (await data(client, chef, sid, "perturbations"))["data"]
    assert (figure["value"], figure["previous"], figure["change"]) == (2, "0", "+2")
    for mid in ("perturbations", "courbe", "carte"):
        assert (await data(client, voisin, sid, mid))["status"] == "ok"

    async with tx(app) as session:
        reads = (
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "space.module"))
        ).all()
    assert len(reads) == 6 and all(str(r.resource_ids[0]) == sid for r in reads)


async def test_named_people_narrow_a_space_and_only_editors_change_it(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PREF")
    bob = await officer(app, client, "bob", "PREF")
    carol = await officer(app, client, "carol", "PREF")
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Cellule de crise", "people": ["bob"], "editors": ["bob"]},
        headers=alice,
    )
    assert made.status_code == 201, made.text
    sid, etag = made.json()["id"], made.headers["ETag"]
    assert made.json()["owner"] == "alice" and made.json()["people"] == ["bob"]
    assert (await client.get(f"/api/v1/spaces/{sid}", headers=bob)).status_code == 200
    assert (await client.get(f"/api/v1/spaces/{sid}", headers=carol)).status_code == 404

    change = {"modules": [module("note", "text", markdown="# Consignes")]}
    assert (
        await client.patch(f"/api/v1/spaces/{sid}", json=change, headers=bob)
    ).status_code == 428
    changed = await client.patch(
        f"/api/v1/spaces/{sid}", json=change, headers={**bob, "If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    stale = await client.patch(
        f"/api/v1/spaces/{sid}", json={"title": "x"}, headers={**alice, "If-Match": etag}
    )
    assert stale.status_code == 412

    await make_user(app, "dave", "PREF", roles=[Role.AUTHORITY])
    dave = await sign_in(client, "dave")
    org_space = await client.post("/api/v1/spaces", json={"title": "PC"}, headers=alice)
    refused = await client.patch(
        f"/api/v1/spaces/{org_space.json()['id']}",
        json={"title": "Autre"},
        headers={**dave, "If-Match": org_space.headers["ETag"]},
    )
    assert refused.status_code == 403, refused.text

    versions = await client.get(f"/api/v1/spaces/{sid}/versions", headers=alice)
    assert [v["action"] for v in versions.json()] == ["create", "update"]


async def test_bad_modules_are_refused_naming_the_field_and_nothing_is_stored(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PREF")
    twice = [module("a", "text"), module("a", "text")]
    cases = (
        ({"title": "x", "modules": twice}, "modules[1].id"),
        ({"title": "x", "modules": [module("a", "feed", limit=500)]}, "modules[0].config.limit"),
        ({"title": "x", "template": "inconnu"}, "template"),
        ({"title": "x", "modules": [{**module("a", "text"), "x": 10, "w": 6}]}, "modules"),
        ({"title": "x", "modules": [module("a", "links", links=[
            {"title": "piège", "url": "javascript:alert(1)"}])]}, "modules[0].config.links.0.url"),
    )  # fmt: skip
    for body, field in cases:
        refused = await client.post("/api/v1/spaces", json=body, headers=alice)
        assert refused.status_code == 422, refused.text
        fields = [f["field"] for f in refused.json()["error"].get("fields", [])]
        assert any(f.startswith(field) or field in f for f in fields), (field, fields)
    assert (await client.get("/api/v1/spaces", headers=alice)).json()["total"] == 0


async def test_import_keeps_unknown_modules_as_a_message_and_export_round_trips(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PREF")
    file = {
        "format": "hypervision.space/1",
        "title": "Venu d'ailleurs",
        "modules": [
            module("texte", "text", markdown="Bonjour <script>alert(1)</script>**à tous**"),
            module("futur", "hologramme", angle=3),
            module("fil", "feed", limit="beaucoup"),
        ],
    }
    made = await client.post("/api/v1/spaces/import", json=file, headers=alice)
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    assert [m["known"] for m in made.json()["modules"]] == [True, False, True]
    text = await data(client, alice, sid, "texte")
    assert (
        "<strong>à tous</strong>" in text["data"]["html"] and "<script" not in text["data"]["html"]
    )
    unknown = await data(client, alice, sid, "futur")
    assert unknown["status"] == "unknown" and "hologramme" in unknown["message"]
    invalid = await data(client, alice, sid, "fil")
    assert invalid["status"] == "invalid" and invalid["data"] == {}

    exported = await client.get(f"/api/v1/spaces/{sid}/export", headers=alice)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    again = await client.post("/api/v1/spaces/import", json=exported.json(), headers=alice)
    assert again.status_code == 201, again.text
    assert again.json()["modules"] == made.json()["modules"]
    assert again.json()["label"] == made.json()["label"]


async def test_a_module_over_a_hidden_product_reveals_nothing(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "SANTE")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    steward = await sign_in(client, "steward")
    medecin = await officer(app, client, "medecin", "SANTE")
    prefet = await officer(app, client, "prefet", "PREF")
    secret = await product(client, steward, SANTE_ONLY)
    open_ = await product(client, steward, PUBLIC)
    modules = [
        module("secret", "table", product_id=secret, columns=["hopital", "lits"]),
        module("rien", "table", product_id=str(uuid.uuid4())),
        module("ouvert", "kpi", source="product", product_id=open_, measure="sum:lits",
               warning=150, alert=200),
        module("courbe", "chart", source="product", product_id=open_, group_by="departement",
               measure="sum:lits", kind="bar"),
        module("ancien", "table", product_id=open_, columns=["hopital", "supprime"]),
        module("somme", "kpi", source="product", product_id=open_, measure="sum:hopital"),
    ]  # fmt: skip
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Santé", "modules": modules, "label": PUBLIC},
        headers=medecin,
    )
    assert made.status_code == 201, made.text
    sid = made.json()["id"]

    seen = await data(client, medecin, sid, "secret")
    assert seen["status"] == "ok" and len(seen["data"]["rows"]) == 5
    hidden, missing = (
        await data(client, prefet, sid, "secret"),
        await data(client, prefet, sid, "rien"),
    )
    assert hidden["status"] == missing["status"] == "unavailable"
    assert hidden["message"] == missing["message"] and hidden["data"] == missing["data"] == {}
    assert "Lits" not in str(hidden) and hidden["label"] is None

    figure = await data(client, prefet, sid, "ouvert")
    assert figure["status"] == "ok", figure
    assert figure["data"]["value"] == 152 and figure["data"]["level"] == "warning"
    chart = await data(client, prefet, sid, "courbe")
    assert chart["status"] == "ok", chart
    assert chart["data"]["spec"]["categories"] == ["75", "93"]
    assert chart["data"]["spec"]["series"][0]["values"] == [102, 50]

    for mid in ("ancien", "somme"):  # a field gone from the schema; a sum of text
        broken = await data(client, prefet, sid, mid)
        assert broken["status"] == "invalid" and broken["data"] == {}, broken
        assert "configuration" in broken["message"]

    deprecated = await client.post(
        f"/api/v1/products/{open_}/status", json={"status": "deprecated"}, headers=steward
    )
    assert deprecated.status_code == 200, deprecated.text
    noted = await data(client, prefet, sid, "ouvert")
    assert noted["status"] == "ok" and "déprécié" in noted["message"]
