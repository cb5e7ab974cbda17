"""A schema's foreign keys hold at every import (products.references): a row naming a key its
product lacks refuses the whole file, naming the row and the field; a referenced product the
importer may not see is "not found"; a product may reference itself. On both engines."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.policy.roles import Role
from tests.factories import make_group, make_org, make_user, sign_in, tx

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
OPEN_RULES = {"rows": [], "rows_default": "allow", "columns": []}
DEPARTMENTS = {
    "fields": [{"name": "code", "type": "string"}, {"name": "nom", "type": "string"}],
    "primaryKey": ["code"],
}
CAPACITY = {
    "fields": [
        {"name": "hopital", "type": "string"},
        {"name": "departement", "type": "string"},
        {"name": "lits", "type": "integer"},
    ],
    "primaryKey": ["hopital"],
    "foreignKeys": [
        {"fields": ["departement"], "reference": {"resource": "departements", "fields": ["code"]}}
    ],
}


async def product(
    client: AsyncClient, headers: dict[str, str], slug: str, schema: dict[str, Any], **extra: Any
) -> str:
    body = {
        "slug": slug,
        "name": slug.capitalize(),
        "table_schema": schema,
        "rules": OPEN_RULES,
        "label": PUBLIC,
        **extra,
    }
    created = await client.post("/api/v1/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def upload(client: AsyncClient, headers: dict[str, str], pid: str, csv: str) -> Any:
    return await client.post(
        f"/api/v1/products/{pid}/imports",
        files={"file": ("data.csv", csv.encode(), "text/csv")},
        data={"mode": "append"},
        headers=headers,
    )


async def test_a_row_naming_an_unknown_key_refuses_the_whole_file(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "SANTE")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    steward = await sign_in(client, "steward")
    departments = await product(client, steward, "departements", DEPARTMENTS)
    capacity = await product(client, steward, "capacite", CAPACITY)

    early = await upload(client, steward, capacity, "hopital;departement;lits\nBichat;75;40\n")
    assert early.status_code == 422 and "75" in early.text  # nothing to reference yet
    done = await upload(client, steward, departments, "code;nom\n75;Paris\n93;Seine-Saint-Denis\n")
    assert done.status_code == 201, done.text

    refused = await upload(
        client,
        steward,
        capacity,
        "hopital;departement;lits\nBichat;75;40\nAvicenne;93;30\nCréteil;94;25\nX;;3\nY;95;1\n",
    )
    assert refused.status_code == 422, refused.text
    body = refused.json()["error"]
    assert body["code"] == "invalid_rows" and body["error_count"] == 2
    assert [(r["row"], r["field"]) for r in body["rows"]] == [
        (4, "departement"),
        (6, "departement"),
    ]
    assert "« 94 » n'existe pas dans le produit « departements »" in body["rows"][0]["message"]
    page = await client.get(f"/api/v1/products/{capacity}", headers=steward)
    assert page.json()["row_count"] == 0 and page.json()["data_version"] == 0  # nothing written

    kept = await upload(
        client, steward, capacity, "hopital;departement;lits\nBichat;75;40\nX;;3\n"
    )  # an empty key references nothing
    assert kept.status_code == 201, kept.text
    assert kept.json()["version"]["row_count"] == 2
    async with tx(app) as session:  # the referenced keys' read, audited with the import
        checks = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "product.reference_check")
            )
        )
    assert [(c.resource_ids, c.detail["keys"]) for c in checks] == [([departments], 2)]


async def test_a_product_the_importer_may_not_see_is_not_found(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "SANTE")
    await make_org(app, "DGSI")
    await make_group(app, "SECRET-DEFENSE-CELL")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    await make_user(app, "agent", "DGSI", roles=[Role.DATA_STEWARD], clearance="DR",
                    groups=["SECRET-DEFENSE-CELL"])  # fmt: skip
    steward, agent = await sign_in(client, "steward"), await sign_in(client, "agent")
    hidden = {**PUBLIC, "need_to_know": ["SECRET-DEFENSE-CELL"]}
    departments = await product(client, agent, "departements", DEPARTMENTS, label=hidden)
    done = await upload(client, agent, departments, "code;nom\n75;Paris\n")
    assert done.status_code == 201, done.text
    capacity = await product(client, steward, "capacite", CAPACITY)

    refused = await upload(client, steward, capacity, "hopital;departement;lits\nBichat;75;40\n")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "foreign_key_target"
    assert "« departements »" in refused.json()["error"]["message"]


async def test_a_product_may_reference_itself(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "SANTE")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    steward = await sign_in(client, "steward")
    schema = {
        "fields": [{"name": "code", "type": "string"}, {"name": "parent", "type": "string"}],
        "primaryKey": ["code"],
        "foreignKeys": [
            {"fields": ["parent"], "reference": {"resource": "structures", "fields": ["code"]}}
        ],
    }
    structures = await product(client, steward, "structures", schema)
    first = await upload(client, steward, structures, "code;parent\nAPHP;\nBICHAT;APHP\n")
    assert first.status_code == 201, first.text
    more = await upload(client, steward, structures, "code;parent\nURG;BICHAT\n")  # kept rows
    assert more.status_code == 201, more.text
    orphan = await upload(client, steward, structures, "code;parent\nREA;LARIB\n")
    assert orphan.status_code == 422 and orphan.json()["error"]["rows"][0]["row"] == 2
