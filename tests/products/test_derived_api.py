"""Derived products, lineage and version diffs through the API, on both engines (ADR 0028):
a derived product is computed at creation and again at each new data version of a source;
its label dominates its sources'; other domains' sources are read under the defining
steward's rules; lineage leaves out what the reader may not know of; a diff never shows a
hidden column."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from hypervision.audit.models import AuditRecord
from hypervision.identity.models import User
from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in, tx
from tests.products.test_products_api import CSV, create, health, upload

__all__ = ["health"]  # the fixture, shared with test_products_api

PER_DEPARTMENT: dict[str, Any] = {
    "sources": [{"product": "", "alias": "h"}],
    "group_by": ["departement"],
    "measures": [
        {"fn": "sum", "field": "lits", "name": "lits"},
        {"fn": "count", "name": "services"},
    ],
}
CSV_2 = (
    "hopital;departement;service;lits;patients;taux\n"
    "Bichat;75;Urgences;40;39;0,975\n"
    "Bichat;75;SAMU;12;10;0,83\n"
    "Avicenne;93;Urgences;35;31;0,89\n"
    "Lariboisière;75;Urgences;50;20;0,4\n"
).encode("cp1252")


def per_department(source: str) -> dict[str, Any]:
    return {**PER_DEPARTMENT, "sources": [{"product": source, "alias": "h"}]}


async def derive(
    client: AsyncClient, headers: dict[str, str], definition: dict[str, Any], **extra: Any
) -> Any:
    body = {"slug": "lits-departement", "name": "Lits par département",
            "definition": definition, **extra}  # fmt: skip
    return await client.post("/api/v1/products/derived", json=body, headers=headers)


async def rows(client: AsyncClient, headers: dict[str, str], pid: str) -> Any:
    got = await client.get(f"/api/v1/products/{pid}/rows", headers=headers)
    assert got.status_code == 200, got.text
    return got.json()


async def source(client: AsyncClient, health: str) -> tuple[dict[str, str], str]:
    steward = await sign_in(client, "steward")
    pid = (await create(client, steward, health)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    return steward, pid


async def test_derived_product_follows_its_source(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward, pid = await source(client, health)
    made = await derive(client, steward, per_department(pid))
    assert made.status_code == 201, made.text
    derived = made.json()
    assert [(f["name"], f["type"]) for f in derived["table_schema"]["fields"]] == [
        ("departement", "string"), ("lits", "integer"), ("services", "integer"),
    ]  # fmt: skip
    assert derived["table_schema"]["primaryKey"] == ["departement"]
    # The least label over a public source: released to the steward's domain.
    assert derived["label"]["audience"] == ["SANTE"] and derived["data_version"] == 1
    did = derived["id"]
    # Own domain: read whole (SAMU rows included).
    body = await rows(client, steward, did)
    assert [(r["departement"], r["lits"], r["services"]) for r in body["rows"]] == [
        ("75", 102, 3), ("93", 50, 2),
    ]  # fmt: skip

    assert (await upload(client, steward, pid, CSV_2)).status_code == 201
    body = await rows(client, steward, did)
    assert body["version"] == 2
    assert [(r["departement"], r["lits"], r["services"]) for r in body["rows"]] == [
        ("75", 102, 3), ("93", 35, 1),
    ]  # fmt: skip
    versions = (await client.get(f"/api/v1/products/{did}/versions", headers=steward)).json()
    assert [(v["number"], v["mode"], v["source"]["trigger"]) for v in versions] == [
        (2, "derive", "import"), (1, "derive", "create"),
    ]  # fmt: skip
    diff = await client.get(f"/api/v1/products/{did}/diff?from=1&to=2", headers=steward)
    assert diff.status_code == 200, diff.text
    assert diff.json()["key"] == ["departement"]
    assert diff.json()["changes"] == [
        {"change": "changed", "key": {"departement": "93"}, "fields": ["lits", "services"],
         "before": {"lits": 50, "services": 2}, "after": {"lits": 35, "services": 1}},
    ]  # fmt: skip

    refused = await upload(client, steward, did, b"departement;lits;services\n75;1;1\n")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "derived_product"
    schema = {"fields": [*derived["table_schema"]["fields"], {"name": "x", "type": "string"}]}
    changed = await client.put(
        f"/api/v1/products/{did}/schema", json={"table_schema": schema}, headers=steward
    )
    assert changed.status_code == 409
    assert any("définition" in p for p in changed.json()["error"]["problems"])
    async with tx(app) as session:
        actions = list(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action.like("product.d%"))
            )
        )
    assert actions.count("product.derive_read") == 2 and "product.diff" in actions


async def test_bad_definitions_and_labels_are_refused_naming_the_field(
    client: AsyncClient, health: str
) -> None:
    steward, pid = await source(client, health)

    async def refused(definition: dict[str, Any], **extra: Any) -> str:
        got = await derive(client, steward, definition, **extra)
        assert got.status_code == 422, got.text
        return str(got.json()["error"]["fields"][0]["field"])

    assert await refused({**per_department(pid), "group_by": ["region"]}) == (
        "definition.group_by[0]"
    )
    median = {**per_department(pid), "measures": [{"fn": "median", "field": "lits", "name": "m"}]}
    assert await refused(median) == "definition.measures[0].fn"
    unknown = per_department("00000000-0000-4000-8000-000000000000")
    assert await refused(unknown) == "definition.sources[0].product"
    text_sum = {**per_department(pid), "measures": [{"fn": "sum", "field": "service", "name": "s"}]}
    assert await refused(text_sum) == "definition.measures[0].field"
    assert await refused({"sources": [{"product": pid}], "join": {"on": [{"left": "a",
                          "right": "b"}]}}) == "definition.join"  # fmt: skip
    # A DR source: an NP derived product would widen it.
    dr = await create(client, steward, health, slug="capacite-dr",
                      label={"level": "DR", "need_to_know": [], "audience": []})  # fmt: skip
    did = dr.json()["id"]
    lower = {"level": "NP", "need_to_know": [], "audience": []}
    assert await refused(per_department(did), label=lower) == "definition.sources[0].product"
    # Nothing was half-made.
    listed = await client.get("/api/v1/products", headers=steward)
    assert "lits-departement" not in {p["slug"] for p in listed.json()}


async def test_other_domains_are_read_under_the_defining_stewards_rules(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    _, pid = await source(client, health)
    await make_user(app, "pref-steward", "PREF", roles=[Role.DATA_STEWARD], clearance="DR")
    pref = await sign_in(client, "pref-steward")
    prefet = await sign_in(client, "prefet")
    hidden = {"sources": [{"product": pid}], "columns": [{"field": "patients"}]}
    got = await derive(client, pref, hidden)
    assert got.status_code == 422 and got.json()["error"]["fields"][0]["field"] == (
        "definition.columns[0].field"
    )
    made = await derive(client, pref, per_department(pid))
    assert made.status_code == 201, made.text
    did = made.json()["id"]
    # No SAMU row for the prefecture's steward: 75 has 90 beds, not 102.
    body = await rows(client, prefet, did)
    assert [(r["departement"], r["lits"]) for r in body["rows"]] == [("75", 90), ("93", 50)]

    # The health domain's lineage names the use only to those who may know of it.
    health_steward = await sign_in(client, "steward")
    graph = (await client.get(f"/api/v1/products/{pid}/lineage", headers=prefet)).json()
    assert {n["relation"] for n in graph["nodes"]} == {"self", "use"}
    assert graph["edges"] == [{"source": pid, "target": did, "kind": "derived_product"}]
    graph = (await client.get(f"/api/v1/products/{pid}/lineage", headers=health_steward)).json()
    assert [n["id"] for n in graph["nodes"]] == [pid] and graph["edges"] == []
    graph = (await client.get(f"/api/v1/products/{did}/lineage", headers=prefet)).json()
    assert graph["definition"]["group_by"] == ["departement"]
    assert next(n for n in graph["nodes"] if n["id"] == did)["computed_at_versions"] == {pid: 1}
    assert (
        await client.get(f"/api/v1/products/{did}/lineage", headers=health_steward)
    ).status_code == 404

    # The defining steward leaves: the next import of the source still succeeds, the derived
    # product keeps its data and says why it is stale.
    async with tx(app) as session:
        await session.execute(
            update(User).where(User.username == "pref-steward").values(is_active=False)
        )
    assert (await upload(client, health_steward, pid, CSV_2)).status_code == 201
    graph = (await client.get(f"/api/v1/products/{did}/lineage", headers=prefet)).json()
    node = next(n for n in graph["nodes"] if n["id"] == did)
    assert node["data_version"] == 1 and "compte actif" in node["failure"]["fr"]


async def test_a_reader_never_sees_through_a_derived_product_what_the_source_hides(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    """The prefecture's steward is in MEDICAL: the derived product draws on patient counts
    that the source's rules hide from the prefect."""
    _, pid = await source(client, health)
    await make_user(app, "pref-medical", "PREF", roles=[Role.DATA_STEWARD], clearance="DR",
                    groups=["MEDICAL"])  # fmt: skip
    pref = await sign_in(client, "pref-medical")
    prefet = await sign_in(client, "prefet")
    definition = {"sources": [{"product": pid}], "group_by": ["departement"],
                  "measures": [{"fn": "sum", "field": "patients", "name": "patients"}]}  # fmt: skip
    made = await derive(client, pref, definition)
    assert made.status_code == 201, made.text
    did = made.json()["id"]
    assert (await client.get(f"/api/v1/products/{did}/rows", headers=pref)).status_code == 200
    for path in ("rows", "aggregate", "export?format=json", "diff?from=1&to=1"):
        got = await client.get(f"/api/v1/products/{did}/{path}", headers=prefet)
        assert got.status_code == 403, (path, got.text)


async def test_diff_under_the_readers_rules(client: AsyncClient, health: str) -> None:
    steward, pid = await source(client, health)
    assert (await upload(client, steward, pid, CSV_2)).status_code == 201
    medecin = await sign_in(client, "medecin")
    prefet = await sign_in(client, "prefet")
    seen = (await client.get(f"/api/v1/products/{pid}/diff?from=1&to=2", headers=medecin)).json()
    assert seen["key"] == ["hopital", "service"]
    by_key = {(c["key"]["hopital"], c["change"]): c for c in seen["changes"]}
    assert by_key["Bichat", "changed"]["fields"] == ["patients", "taux"]
    assert by_key["Avicenne", "changed"]["fields"] == ["lits", "taux"]
    assert by_key["Delafontaine", "removed"]["row"]["lits"] == 20
    # The prefect: no patient counts, not even as "changed"; SAMU rows never.
    seen = (await client.get(f"/api/v1/products/{pid}/diff?from=1&to=2", headers=prefet)).json()
    assert "patients" not in seen["columns"] and seen["hidden_columns"] == ["patients"]
    assert all("patients" not in str(c) for c in seen["changes"])
    by_key = {(c["key"]["hopital"], c["change"]): c for c in seen["changes"]}
    assert by_key["Bichat", "changed"]["fields"] == ["taux"]
    # Keyset pages of one change each cover every change once.
    pages, after = [], None
    while True:
        url = f"/api/v1/products/{pid}/diff?from=1&to=2&limit=1" + (
            f"&after={after}" if after else ""
        )
        page = (await client.get(url, headers=prefet)).json()
        pages += page["changes"]
        after = page["next_cursor"]
        if not after:
            break
    assert pages == seen["changes"]
    bad = await client.get(f"/api/v1/products/{pid}/diff?from=1&to=9", headers=prefet)
    assert bad.status_code == 422


DEPARTMENTS: dict[str, Any] = {
    "fields": [
        {"name": "code", "type": "string", "title": "Code"},
        {"name": "nom", "type": "string", "title": "Nom du département"},
    ],
    "primaryKey": ["code"],
}


async def test_a_join_of_two_products_and_a_rules_change_recompute(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward, pid = await source(client, health)
    public = {"level": "NP", "need_to_know": [], "audience": []}
    body = {"slug": "departements", "name": "Départements", "table_schema": DEPARTMENTS,
            "label": public}  # fmt: skip
    made = await client.post("/api/v1/products", json=body, headers=steward)
    assert made.status_code == 201, made.text
    did = made.json()["id"]
    csv = b"code;nom\n75;Paris\n92;Hauts-de-Seine\n"
    assert (await upload(client, steward, did, csv, name="dep.csv")).status_code == 201
    definition = {
        "sources": [{"product": pid, "alias": "h"}, {"product": did, "alias": "d"}],
        "join": {"how": "left", "on": [{"left": "departement", "right": "code"}]},
        "where": [{"field": "h.service", "op": "eq", "value": "Urgences"}],
        "columns": [{"field": "hopital"}, {"field": "d.nom", "name": "departement"},
                    {"field": "lits"}],
    }  # fmt: skip
    joined = await derive(client, steward, definition, label=public)
    assert joined.status_code == 201, joined.text
    jid = joined.json()["id"]
    assert "primaryKey" not in joined.json()["table_schema"]  # a join keeps no key
    got = await rows(client, steward, jid)
    assert [(r["hopital"], r["departement"], r["lits"]) for r in got["rows"]] == [
        ("Bichat", "Paris", 40), ("Avicenne", None, 30), ("Lariboisière", "Paris", 50),
    ]  # fmt: skip
    graph = (await client.get(f"/api/v1/products/{jid}/lineage", headers=steward)).json()
    assert {n["id"] for n in graph["nodes"] if n["relation"] == "source"} == {pid, did}

    # Another domain's steward defines a product over the health one; when the health
    # stewards narrow its rules (no Bichat row for anyone any more), it is recomputed.
    await make_user(app, "pref-steward", "PREF", roles=[Role.DATA_STEWARD], clearance="DR")
    pref = await sign_in(client, "pref-steward")
    names_only = {"sources": [{"product": pid}], "columns": [{"field": "hopital"}]}
    made = await derive(client, pref, names_only, slug="hopitaux-pref")
    assert made.status_code == 201, made.text
    pref_id = made.json()["id"]
    assert len((await rows(client, pref, pref_id))["rows"]) == 4  # no SAMU row
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    narrowed = {**product["rules"]}
    bichat = {"op": "eq", "left": {"rec": "hopital"}, "right": {"value": "Bichat"}}
    narrowed["rows"] = [{"effect": "deny", "when": bichat}, *narrowed["rows"]]
    changed = await client.put(
        f"/api/v1/products/{pid}/rules", json={"rules": narrowed}, headers=steward
    )
    assert changed.status_code == 200 and changed.json()["pending"] is None, changed.text
    after = await rows(client, pref, pref_id)
    assert after["version"] == 2 and {r["hopital"] for r in after["rows"]} == {
        "Avicenne", "Delafontaine", "Lariboisière",
    }  # fmt: skip
    async with tx(app) as session:
        triggers = list(
            await session.scalars(
                select(AuditRecord.detail).where(AuditRecord.action == "product.derive")
            )
        )
    assert len(triggers) >= 4
