"""Four eyes on a derived product drawn whole from a source of its own domain whose rules
restrict readers (ADR 0028): until a second steward of the domain releases it, only the
domain's stewards read it; its author cannot release it; the release is a version, an event
and an audit record. A source without such rules needs no release. On both engines."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in, tx
from tests.products.test_derived_api import derive, per_department, rows, source
from tests.products.test_products_api import CSV, create, health, upload

__all__ = ["health"]  # the fixture, shared with test_products_api

EVERYONE = {"level": "NP", "need_to_know": [], "audience": []}


async def test_a_second_steward_releases_what_restricted_rules_fed(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    await make_user(app, "steward2", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    author, pid = await source(client, health)  # its rules hide SAMU rows and a column
    second, medecin = await sign_in(client, "steward2"), await sign_in(client, "medecin")
    made = await derive(client, author, per_department(pid), label=EVERYONE)
    assert made.status_code == 201, made.text
    did = made.json()["id"]

    refused = await client.get(f"/api/v1/products/{did}/rows", headers=medecin)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "derived_withheld"
    for path in ("aggregate?group_by=departement", "export?format=csv", "diff?from=1&to=1"):
        got = await client.get(f"/api/v1/products/{did}/{path}", headers=medecin)
        assert got.status_code == 403, (path, got.text)
    assert len((await rows(client, second, did))["rows"]) == 2  # stewards review it
    lineage = (await client.get(f"/api/v1/products/{did}/lineage", headers=author)).json()
    assert next(n for n in lineage["nodes"] if n["relation"] == "self")["withheld"] is True

    own = await client.post(f"/api/v1/products/{did}/release", headers=author)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    outsider = await client.post(f"/api/v1/products/{did}/release", headers=medecin)
    assert outsider.status_code == 403
    released = await client.post(f"/api/v1/products/{did}/release", headers=second)
    assert released.status_code == 200, released.text
    again = await client.post(f"/api/v1/products/{did}/release", headers=second)
    assert again.status_code == 409

    body = await rows(client, medecin, did)
    assert [(r["departement"], r["lits"]) for r in body["rows"]] == [("75", 102), ("93", 50)]
    async with tx(app) as session:
        audited = await session.scalar(
            select(AuditRecord).where(AuditRecord.action == "product.release")
        )
        event = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.type == "product.release")
        )
    assert audited is not None and audited.resource_ids == [did]
    assert event is not None and str(event.resource_id) == did


async def test_an_unrestricted_source_needs_no_release(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward, medecin = await sign_in(client, "steward"), await sign_in(client, "medecin")
    open_rules = {"rows": [], "rows_default": "allow", "columns": []}
    pid = (await create(client, steward, health, rules=open_rules)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    made = await derive(client, steward, per_department(pid), label=EVERYONE)
    assert made.status_code == 201, made.text
    assert len((await rows(client, medecin, made.json()["id"]))["rows"]) == 2
    nothing = await client.post(f"/api/v1/products/{made.json()['id']}/release", headers=steward)
    assert nothing.status_code == 409
