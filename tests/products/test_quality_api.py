"""Data products' quality through the API, on both engines: stewards declare rules without code
(bad ones refused, 422 in French and English), every import is checked (a failing blocking rule
refuses it whole, warnings flag it), scores per rule and per product with their history, the
failing rows listed under the product's row and column rules, references to another product,
staleness and the scheduled checks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from hypervision.audit.models import AuditRecord
from hypervision.db import utcnow
from hypervision.events.models import OutboxEvent
from hypervision.products import quality_schedule
from hypervision.products.models import ProductVersion
from hypervision.products.quality_models import QualityFailure, QualityRun
from hypervision.records.models import RecordVersion
from tests.factories import sign_in, tx
from tests.products.test_products_api import CSV, PUBLIC, create, health, upload

__all__ = ["health"]  # the fixture, shared with test_products_api

RULES: list[dict[str, Any]] = [
    {"id": "dep", "kind": "pattern", "field": "departement", "pattern": r"\d{2}",
     "severity": "blocking"},
    {"id": "lits", "kind": "range", "field": "lits", "min": 15, "max": 45},
    {"id": "graves", "kind": "range", "field": "patients", "max": 20},
    {"id": "services", "kind": "allowed", "field": "service",
     "values": ["Urgences", "SAMU", "Réanimation"]},
    {"id": "frais", "kind": "freshness", "max_age_minutes": 120},
    {"id": "taille", "kind": "row_count", "min": 3, "severity": "blocking"},
]  # fmt: skip


async def put(client: AsyncClient, headers: dict[str, str], pid: str, rules: Any) -> Any:
    return await client.put(f"/api/v1/products/{pid}/quality", json={"rules": rules},
                            headers=headers)  # fmt: skip


async def ready(client: AsyncClient, health: str) -> tuple[str, dict[str, str]]:
    steward = await sign_in(client, "steward")
    pid = (await create(client, steward, health)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    return pid, steward


async def test_bad_rules_are_refused_with_what_is_wrong(client: AsyncClient, health: str) -> None:
    pid, steward = await ready(client, health)
    prefet = await sign_in(client, "prefet")
    assert (await put(client, prefet, pid, RULES)).status_code == 403
    bad = [
        {"kind": "required"},
        {"kind": "range", "field": "hopital", "max": 3},
        {"kind": "pattern", "field": "hopital", "pattern": "(["},
        {"kind": "allowed", "field": "lits", "values": ["douze"]},
        {"kind": "unique", "field": "inconnu"},
        {"kind": "reference", "field": "hopital", "product": "00000000-0000-0000-0000-000000000000",
         "product_field": "nom"},
        {"kind": "freshness"},
        {"kind": "teleportation", "field": "lits"},
    ]  # fmt: skip
    refused = await put(client, steward, pid, bad)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_rules"
    paths = {p["path"] for p in error["problems"]}
    assert paths == {"[7].kind"}  # the shape first: an unknown kind stops there
    refused = await put(client, steward, pid, bad[:7])
    error = refused.json()["error"]
    paths = {p["path"] for p in error["problems"]}
    assert paths == {"[0].field", "[1].field", "[2].pattern", "[3].values[0]", "[4].field",
                     "[5].product", "[6].max_age_minutes"}  # fmt: skip
    assert "champ « inconnu » inconnu" in error["message"]
    english = await client.put(f"/api/v1/products/{pid}/quality", json={"rules": bad[:1]},
                               headers={**steward, "Accept-Language": "en"})  # fmt: skip
    assert "this rule needs a field" in english.json()["error"]["message"]
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    assert product["quality"] is None and product["version"] == 2


async def test_imports_are_checked_and_scored(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    pid, steward = await ready(client, health)
    declared = await put(client, steward, pid, RULES)
    assert declared.status_code == 200, declared.text
    body = declared.json()
    assert body["scope"] == "product" and body["last_run"]["trigger"] == "rules"
    figures = {r["rule"]["id"]: r for r in body["rules"]}
    # lits: Bichat SAMU (12) and Lariboisière (50) out of 15..45; patients: 35 and 31 > 20
    assert (figures["lits"]["failing"], figures["lits"]["checked"]) == (2, 5)
    assert figures["lits"]["score"] == 0.6 and figures["graves"]["failing"] == 2
    assert figures["dep"]["passed"] and figures["frais"]["passed"] and figures["taille"]["passed"]
    async with tx(app) as session:  # one transaction: the record version, its event, its audit
        changed = select(RecordVersion).where(RecordVersion.action == "quality")
        assert [v.version for v in await session.scalars(changed)] == [3]
        events = select(OutboxEvent.type).where(OutboxEvent.resource_id == uuid.UUID(pid))
        assert "product.quality" in list(await session.scalars(events))
        audited = select(AuditRecord.action).where(AuditRecord.action.like("product.quality%"))
        assert sorted(await session.scalars(audited)) == ["product.quality", "product.quality_read"]
    assert abs(body["score"] - (1 + 0.6 + 0.6 + 1 + 1 + 1) / 6) < 1e-9  # the rules' mean

    bad = CSV + "Cochin;7S;Urgences;30;3;0,5\n".encode("cp1252")
    refused = await upload(client, steward, pid, bad)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quality_refused" and error["by_rule"] == {"dep": 1}
    assert error["rows"][0]["field"] == "departement" and "7S" in error["rows"][0]["message"]
    assert "hopital = Cochin" in error["rows"][0]["message"]
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    assert (product["data_version"], product["row_count"]) == (1, 5)

    warned = await upload(client, steward, pid, CSV + b"Cochin;75;Urgences;30;3;0,5\n")
    assert warned.status_code == 201, warned.text
    assert any("lits" in w for w in warned.json()["warnings"])
    got = (await client.get(f"/api/v1/products/{pid}/quality", headers=steward)).json()
    assert [r["trigger"] for r in got["history"]] == ["import", "rules"]
    assert got["last_run"]["data_version"] == 2 and got["last_run"]["row_count"] == 6
    summary = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()["quality"]
    assert summary["rules"] == 6 and summary["stale"] is False
    assert summary["failed_rules"] == 2 and 0 < summary["score"] < 1
    async with tx(app) as session:  # only the latest run's failing rows are kept
        runs = {r.id for r in await session.scalars(select(QualityRun))}
        kept = list(await session.scalars(select(QualityFailure)))
    assert len(runs) == 2 and {f.run_id for f in kept} == {got_run(kept)}
    assert len(kept) == 4


def got_run(kept: list[QualityFailure]) -> Any:
    return kept[0].run_id


async def test_failing_rows_follow_the_rules(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    pid, steward = await ready(client, health)
    assert (await put(client, steward, pid, RULES)).status_code == 200
    prefet = await sign_in(client, "prefet")
    medecin = await sign_in(client, "medecin")

    url = f"/api/v1/products/{pid}/quality/failures"
    seen = await client.get(f"{url}?rule=lits", headers=prefet)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert [r["hopital"] for r in body["rows"]] == ["Lariboisière"]  # the SAMU row is hidden
    assert "patients" not in body["columns"] and all("patients" not in r for r in body["rows"])
    assert (await client.get(f"{url}?rule=graves", headers=prefet)).status_code == 403
    assert (await client.get(f"{url}?rule=frais", headers=prefet)).status_code == 422
    assert (await client.get(f"{url}?rule=nope", headers=prefet)).status_code == 404

    first = (await client.get(f"{url}?rule=lits&limit=1", headers=medecin)).json()
    assert [r["service"] for r in first["rows"]] == ["SAMU"] and first["next_cursor"]
    second = (await client.get(f"{url}?rule=lits&limit=1&after={first['next_cursor']}",
                               headers=medecin)).json()  # fmt: skip
    assert [r["hopital"] for r in second["rows"]] == ["Lariboisière"]
    assert second["next_cursor"] is None

    mine = (await client.get(f"/api/v1/products/{pid}/quality", headers=prefet)).json()
    assert mine["scope"] == "reader" and mine["history"] == []
    figures = {r["rule"]["id"]: r for r in mine["rules"]}
    assert (figures["lits"]["checked"], figures["lits"]["failing"]) == (4, 1)
    assert figures["graves"]["hidden"] and figures["graves"]["failing"] is None
    assert figures["frais"]["passed"] is True
    summary = (await client.get(f"/api/v1/products/{pid}", headers=prefet)).json()["quality"]
    assert summary["score"] is None and summary["stale"] is False
    listed = (await client.get("/api/v1/products", headers=prefet)).json()
    assert listed[0]["quality"]["rules"] == len(RULES)

    async with tx(app) as session:
        audited = select(AuditRecord).where(AuditRecord.action == "product.quality_failures")
        records = list(await session.scalars(audited))
    assert sorted(r.detail["rows"] for r in records) == [1, 1, 1]


async def test_reference_to_another_product(client: AsyncClient, health: str) -> None:
    pid, steward = await ready(client, health)
    other = await client.post(
        "/api/v1/products",
        json={
            "slug": "etablissements",
            "name": "Établissements",
            "table_schema": {"fields": [{"name": "nom", "type": "string"}], "primaryKey": ["nom"]},
            "label": PUBLIC,
        },
        headers=steward,
    )
    oid = other.json()["id"]
    names = "nom\nBichat\nAvicenne\nLariboisière\n".encode()
    assert (await upload(client, steward, oid, names)).status_code == 201
    rule = {"id": "ref", "kind": "reference", "field": "hopital", "product": oid,
            "product_field": "nom"}  # fmt: skip
    wrong_field = await put(client, steward, pid, [{**rule, "product_field": "autre"}])
    assert wrong_field.status_code == 422
    declared = await put(client, steward, pid, [rule])
    assert declared.status_code == 200, declared.text
    assert declared.json()["rules"][0]["failing"] == 1  # Delafontaine is not listed
    failing = await client.get(f"/api/v1/products/{pid}/quality/failures?rule=ref",
                               headers=steward)  # fmt: skip
    assert [r["hopital"] for r in failing.json()["rows"]] == ["Delafontaine"]


async def test_stale_products_and_scheduled_checks(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    pid, steward = await ready(client, health)
    assert (await put(client, steward, pid, RULES)).status_code == 200
    assert await quality_schedule.run_round(app.state.system_sessions) == 0  # nothing changed
    async with tx(app) as session:  # the last import was three hours ago
        await session.execute(update(ProductVersion).values(at=utcnow() - timedelta(hours=3)))
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    assert product["quality"]["stale"] is True
    prefet = await sign_in(client, "prefet")
    listed = (await client.get("/api/v1/products", headers=prefet)).json()
    assert listed[0]["quality"]["stale"] is True
    assert await quality_schedule.run_round(app.state.system_sessions) == 1
    got = (await client.get(f"/api/v1/products/{pid}/quality", headers=steward)).json()
    assert got["stale"] is True and got["last_run"]["trigger"] == "schedule"
    assert got["last_run"]["stale"] is True
    assert {r["rule"]["id"]: r["passed"] for r in got["rules"]}["frais"] is False
