"""Data products through the API, on both engines: a steward creates a product and imports a
French CSV; readers of other domains see what the stewards' rules let through, rows and
columns, in pages and aggregates; a bad file changes nothing; versions stay readable."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text

from hypervision.audit.models import AuditRecord
from hypervision.policy.roles import Role
from tests.factories import make_group, make_org, make_user, owner_tx, sign_in, tx
from tests.queries import captured_statements

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "hopital", "type": "string", "constraints": {"required": True}},
        {"name": "departement", "type": "string"},
        {"name": "service", "type": "string"},
        {"name": "lits", "type": "integer", "constraints": {"minimum": 0}},
        {"name": "patients", "type": "integer"},
        {"name": "taux", "type": "number"},
    ],
    "primaryKey": ["hopital", "service"],
}
CSV = (
    "hopital;departement;service;lits;patients;taux\n"
    "Bichat;75;Urgences;40;35;0,875\n"
    "Bichat;75;SAMU;12;10;0,83\n"
    "Avicenne;93;Urgences;30;31;1,03\n"
    "Delafontaine;93;Réanimation;20;18;0,9\n"
    "Lariboisière;75;Urgences;50;20;0,4\n"
).encode("cp1252")
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


def rules(health_org: str) -> dict[str, Any]:
    """SAMU rows for health organisations only; patient counts for MEDICAL only."""
    return {
        "rows": [
            {
                "effect": "allow",
                "when": {"op": "ne", "left": {"rec": "service"}, "right": {"value": "SAMU"}},
            },
            {
                "effect": "allow",
                "when": {
                    "op": "in",
                    "left": {"value": health_org},
                    "right": {"user": "organisation_ancestors"},
                },
            },
        ],
        "rows_default": "deny",
        "columns": [
            {
                "columns": ["patients"],
                "effect": "deny",
                "when": {
                    "not": {
                        "op": "contains",
                        "left": {"user": "groups"},
                        "right": {"value": "MEDICAL"},
                    }
                },
            }
        ],
    }


async def make_health(app: FastAPI) -> str:
    """The health domain (SANTE and its agency ARS-IDF), a prefecture, the MEDICAL group, a
    steward of the domain, a doctor of the agency and a prefect; the domain's id."""
    org = await make_org(app, "SANTE")
    await make_org(app, "ARS-IDF", parent="SANTE")
    await make_org(app, "PREF")
    await make_group(app, "MEDICAL")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR",
                    groups=["MEDICAL"])  # fmt: skip
    await make_user(app, "medecin", "ARS-IDF", clearance="DR", groups=["MEDICAL"])
    await make_user(app, "prefet", "PREF", clearance="DR")
    return str(org.id)


@pytest.fixture
async def health(app: FastAPI) -> str:
    return await make_health(app)


async def create(client: AsyncClient, headers: dict[str, str], health: str, **extra: Any) -> Any:
    body = {
        "slug": "capacite-hopitaux",
        "name": "Capacité hospitalière",
        "description": "Lits et patients par hôpital et service",
        "tags": ["santé", "hôpitaux"],
        "table_schema": SCHEMA,
        "rules": rules(health),
        "label": PUBLIC,
        **extra,
    }
    return await client.post("/api/v1/products", json=body, headers=headers)


async def upload(
    client: AsyncClient, headers: dict[str, str], pid: str, data: bytes, mode: str = "replace",
    name: str = "capacite.csv",
) -> Any:  # fmt: skip
    return await client.post(
        f"/api/v1/products/{pid}/imports",
        files={"file": (name, data, "text/csv")},
        data={"mode": mode},
        headers=headers,
    )


async def test_steward_creates_imports_and_readers_see_what_rules_allow(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward = await sign_in(client, "steward")
    prefet = await sign_in(client, "prefet")
    medecin = await sign_in(client, "medecin")

    assert (await create(client, prefet, health)).status_code == 403
    created = await create(client, steward, health)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["domain"] == "SANTE"
    assert (await create(client, steward, health)).status_code == 409

    imported = await upload(client, steward, pid, CSV)
    assert imported.status_code == 201, imported.text
    version = imported.json()["version"]
    assert (version["number"], version["rows_added"], version["row_count"]) == (1, 5, 5)
    assert imported.json()["product"]["row_count"] == 5

    seen = await client.get(f"/api/v1/products/{pid}/rows?sort=hopital", headers=medecin)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert len(body["rows"]) == 5 and "patients" in body["columns"]
    assert body["rows"][0]["hopital"] == "Avicenne"
    assert body["rows"][0]["taux"] == pytest.approx(1.03)

    seen = await client.get(f"/api/v1/products/{pid}/rows?sort=hopital", headers=prefet)
    body = seen.json()
    assert seen.status_code == 200, seen.text
    assert {r["service"] for r in body["rows"]} == {"Urgences", "Réanimation"}
    assert "patients" not in body["columns"] and body["hidden_columns"] == ["patients"]
    assert all("patients" not in r for r in body["rows"])
    refused = await client.get(f"/api/v1/products/{pid}/rows?filter=patients:gt:5", headers=prefet)
    assert refused.status_code == 403, refused.text

    totals = await client.get(
        f"/api/v1/products/{pid}/aggregate?group_by=departement&measure=sum:lits&measure=count",
        headers=prefet,
    )
    assert totals.status_code == 200, totals.text
    assert totals.json()["rows"] == [
        {"departement": "75", "sum_lits": 90, "count": 2},
        {"departement": "93", "sum_lits": 50, "count": 2},
    ]
    hidden_sum = await client.get(
        f"/api/v1/products/{pid}/aggregate?measure=sum:patients", headers=prefet
    )
    assert hidden_sum.status_code == 403
    totals = await client.get(
        f"/api/v1/products/{pid}/aggregate?measure=sum:patients", headers=medecin
    )
    assert totals.json()["rows"] == [{"sum_patients": 114}]

    async with tx(app) as session:
        records = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "product.rows"))
        )
    by_rows = {r.detail["rows"]: r for r in records}
    assert set(by_rows) == {4, 5}
    record = by_rows[4]  # the prefect's read: no SAMU row, no patient count
    assert record.detail["columns"] == ["hopital", "departement", "service", "lits", "taux"]
    assert len(record.detail["predicate"]) == 32


async def test_bad_file_changes_nothing_and_versions_stay_readable(
    client: AsyncClient, health: str
) -> None:
    steward = await sign_in(client, "steward")
    pid = (await create(client, steward, health)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201

    bad = CSV + "Cochin;75;Urgences;douze;3;0,5\n".encode("cp1252")
    refused = await upload(client, steward, pid, bad)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_rows"
    assert error["rows"][0]["row"] == 7 and error["rows"][0]["field"] == "lits"
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    assert (product["data_version"], product["row_count"]) == (1, 5)

    change = (
        "hopital;departement;service;lits;patients;taux\n"
        "Bichat;75;Urgences;44;35;0,8\n"
        "Bichat;75;SAMU;12;10;0,83\n"
        "Cochin;75;Urgences;25;5;0,2\n"
    ).encode("cp1252")
    upserted = await upload(client, steward, pid, change, mode="upsert")
    assert upserted.status_code == 201, upserted.text
    counts = upserted.json()["version"]
    assert (counts["rows_added"], counts["rows_changed"], counts["row_count"]) == (1, 1, 6)

    now = await client.get(
        f"/api/v1/products/{pid}/rows?filter=hopital:eq:Bichat&filter=service:eq:Urgences",
        headers=steward,
    )
    assert [r["lits"] for r in now.json()["rows"]] == [44]
    before = await client.get(
        f"/api/v1/products/{pid}/rows?filter=hopital:eq:Bichat&filter=service:eq:Urgences"
        "&version=1",
        headers=steward,
    )
    assert [r["lits"] for r in before.json()["rows"]] == [40]
    assert (
        await client.get(f"/api/v1/products/{pid}/rows?version=9", headers=steward)
    ).status_code == 422

    replaced = await upload(client, steward, pid, change, mode="replace")
    counts = replaced.json()["version"]
    assert (counts["rows_added"], counts["rows_changed"], counts["rows_removed"]) == (0, 0, 3)
    assert counts["row_count"] == 3

    history = await client.get(f"/api/v1/products/{pid}/versions", headers=steward)
    assert [v["number"] for v in history.json()] == [3, 2, 1]
    assert history.json()[-1]["source"]["encoding"] is not None


async def test_keyset_pages_cover_every_row_once(client: AsyncClient, health: str) -> None:
    steward = await sign_in(client, "steward")
    pid = (await create(client, steward, health)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    for sort in ("lits", "-lits", "-hopital", None):
        seen: list[int] = []
        after: str | None = None
        while True:
            query = f"/api/v1/products/{pid}/rows?limit=2" + (f"&sort={sort}" if sort else "")
            page = await client.get(query + (f"&after={after}" if after else ""), headers=steward)
            assert page.status_code == 200, page.text
            seen += [r["_row"] for r in page.json()["rows"]]
            after = page.json()["next_cursor"]
            if after is None:
                break
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 5, (sort, seen)
    bad = await client.get(f"/api/v1/products/{pid}/rows?after=xyz", headers=steward)
    assert bad.status_code == 422


TYPED = {
    "fields": [
        {"name": "code", "type": "integer"},
        {"name": "jour", "type": "date"},
        {"name": "vu", "type": "datetime"},
        {"name": "ouvert", "type": "boolean"},
        {"name": "taux", "type": "number"},
    ],
    "primaryKey": ["code"],
}


async def test_typed_values_round_trip_and_compare(client: AsyncClient, health: str) -> None:
    """Dates, times, booleans and numbers come back as imported, and filter and sort in SQL
    (the bulk load writes SQLite's storage forms itself)."""
    steward = await sign_in(client, "steward")
    created = await create(client, steward, health, slug="types", table_schema=TYPED, rules=None)
    pid = created.json()["id"]
    data = (
        b"code;jour;vu;ouvert;taux\n"
        b"1;02/07/2024;2024-07-02T10:05:03.000012Z;oui;0,5\n"
        b"2;01/07/2024;2024-07-01T23:00:00+02:00;non;\n"
        b"3;;;;12\n"
    )
    assert (await upload(client, steward, pid, data)).status_code == 201
    page = await client.get(f"/api/v1/products/{pid}/rows?sort=vu", headers=steward)
    assert page.status_code == 200, page.text
    fields = ("code", "jour", "vu", "ouvert", "taux")
    assert [{k: r[k] for k in fields} for r in page.json()["rows"]] == [
        {"code": 2, "jour": "2024-07-01", "vu": "2024-07-01T21:00:00+00:00", "ouvert": False,
         "taux": None},
        {"code": 1, "jour": "2024-07-02", "vu": "2024-07-02T10:05:03.000012+00:00",
         "ouvert": True, "taux": 0.5},
        {"code": 3, "jour": None, "vu": None, "ouvert": None, "taux": 12.0},
    ]  # fmt: skip
    for query, codes in (
        ("filter=jour:ge:2024-07-02", [1]),
        ("filter=vu:lt:2024-07-02T00:00:00%2B00:00", [2]),
        ("filter=ouvert:eq:oui", [1]),
        ("filter=taux:gt:1", [3]),
    ):
        rows = await client.get(f"/api/v1/products/{pid}/rows?{query}", headers=steward)
        assert [r["code"] for r in rows.json()["rows"]] == codes, (query, rows.text)


async def test_catalogue_search_and_bad_requests(client: AsyncClient, health: str) -> None:
    steward = await sign_in(client, "steward")
    prefet = await sign_in(client, "prefet")
    pid = (await create(client, steward, health)).json()["id"]
    secret = await create(
        client, steward, health, slug="lits-secrets", name="Lits secrets",
        label={"level": "DR", "need_to_know": ["MEDICAL"], "audience": []},
    )  # fmt: skip
    assert secret.status_code == 201, secret.text
    found = await client.get("/api/v1/products?q=hopital", headers=prefet)
    assert [p["id"] for p in found.json()] == [pid]
    assert (await client.get("/api/v1/products?q=secrets", headers=prefet)).json() == []
    hidden = await client.get(f"/api/v1/products/{secret.json()['id']}", headers=prefet)
    assert hidden.status_code == 404
    bad_schema = await create(
        client,
        steward,
        health,
        slug="autre",
        table_schema={"fields": [{"name": "x", "type": "nope"}]},
    )
    assert bad_schema.status_code == 422 and bad_schema.json()["error"]["code"] == "invalid_schema"
    bad_rules = await create(
        client, steward, health, slug="autre",
        rules={"rows": [{"effect": "allow", "when": {"op": "eq", "left": {"rec": "absent"},
                                                     "right": {"value": 1}}}],
               "rows_default": "deny"},
    )  # fmt: skip
    assert bad_rules.status_code == 422 and "absent" in bad_rules.text
    for query in ("filter=lits", "filter=nope:eq:1", "filter=lits:eq:douze", "sort=nope"):
        answer = await client.get(f"/api/v1/products/{pid}/rows?{query}", headers=steward)
        assert answer.status_code == 422, (query, answer.text)
    no_file = await client.post(f"/api/v1/products/{pid}/imports", headers=steward)
    assert no_file.status_code == 422


async def test_exports_hold_what_the_rules_let_through(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward = await sign_in(client, "steward")
    prefet = await sign_in(client, "prefet")
    pid = (await create(client, steward, health)).json()["id"]
    formula = CSV + '"=HYPERLINK(""http://x"")";75;Urgences;1;1;0,1\n'.encode("cp1252")
    assert (await upload(client, steward, pid, formula)).status_code == 201
    url = f"/api/v1/products/{pid}/export"

    sheet = await client.get(url, headers=prefet)
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"].startswith("text/csv")
    assert 'filename="capacite-hopitaux-v1.csv"' in sheet.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == ["hopital", "departement", "service", "lits", "taux"]  # no patients
    assert len(lines) == 1 + 5 and not any("SAMU" in line for line in lines)
    assert ['\'=HYPERLINK("http://x")', "75", "Urgences", "1", "0.1"] in lines  # as text

    as_json = await client.get(f"{url}?format=json&filter=departement:eq:93", headers=prefet)
    assert [r["hopital"] for r in as_json.json()] == ["Avicenne", "Delafontaine"]
    assert as_json.json()[0] == {
        "hopital": "Avicenne", "departement": "93", "service": "Urgences", "lits": 30,
        "taux": pytest.approx(1.03),
    }  # fmt: skip

    parquet = await client.get(f"{url}?format=parquet", headers=steward)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 6 and "patients" in table.column_names
    assert table.schema.field("lits").type == pa.int64()

    no_geometry = await client.get(f"{url}?format=geojson", headers=prefet)
    assert no_geometry.status_code == 422 and "géométrique" in no_geometry.text
    unknown = await client.get(f"{url}?format=xls", headers=prefet)
    assert unknown.status_code == 422 and "csv, json, geojson, parquet" in unknown.text

    async with tx(app) as session:
        records = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "product.export"))
        )
    assert sorted((r.detail["format"], r.detail["rows"]) for r in records) == [
        ("csv", 5), ("json", 2), ("parquet", 6),
    ]  # fmt: skip
    assert all(len(r.detail["predicate"]) == 32 for r in records)


async def test_geometry_products_export_as_geojson(client: AsyncClient, health: str) -> None:
    steward = await sign_in(client, "steward")
    schema = {
        "fields": [
            {"name": "site", "type": "string"},
            {"name": "geometry", "type": "geojson"},
            {"name": "agents", "type": "integer"},
        ]
    }
    pid = (
        await create(client, steward, health, slug="secteurs", table_schema=schema, rules=None)
    ).json()["id"]
    features = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [2.36, 48.92]},
                "properties": {"site": "Stade de France", "agents": 120},
            }
        ],
    }
    loaded = await client.post(
        f"/api/v1/products/{pid}/imports",
        files={"file": ("secteurs.geojson", json.dumps(features), "application/geo+json")},
        headers=steward,
    )
    assert loaded.status_code == 201, loaded.text
    answer = await client.get(f"/api/v1/products/{pid}/export?format=geojson", headers=steward)
    assert answer.status_code == 200, answer.text
    feature = answer.json()["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.36, 48.92]}
    assert feature["properties"] == {"site": "Stade de France", "agents": 120}
    prefet = await sign_in(client, "prefet")
    on_map = await client.get(f"/api/v1/products/{pid}/features", headers=prefet)
    assert on_map.status_code == 200 and on_map.json()["features"] == [feature]
    beds = (await create(client, steward, health)).json()["id"]  # no geometry field
    assert (
        await client.get(f"/api/v1/products/{beds}/features", headers=prefet)
    ).status_code == 422


async def test_schema_changes_add_fields_and_refuse_what_breaks(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    steward = await sign_in(client, "steward")
    prefet = await sign_in(client, "prefet")
    pid = (await create(client, steward, health)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    url = f"/api/v1/products/{pid}/schema"
    wider = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "telephone", "type": "string"}]}
    assert (await client.put(url, json={"table_schema": wider}, headers=prefet)).status_code == 403

    changed = await client.put(url, json={"table_schema": wider}, headers=steward)
    assert changed.status_code == 200, changed.text
    assert changed.json()["changes"] == ["champ ajouté : « telephone » (texte)"]
    rows = (await client.get(f"/api/v1/products/{pid}/rows", headers=steward)).json()
    assert "telephone" in rows["columns"] and all(r["telephone"] is None for r in rows["rows"])
    with_phone = (
        "hopital;departement;service;lits;patients;taux;telephone\n"
        "Bichat;75;Urgences;40;35;0,875;01 40 25 80 80\n"
    ).encode("cp1252")
    assert (await upload(client, steward, pid, with_phone, mode="upsert")).status_code == 201
    found = await client.get(
        f"/api/v1/products/{pid}/rows?filter=telephone:notnull", headers=steward
    )
    assert [r["telephone"] for r in found.json()["rows"]] == ["01 40 25 80 80"]

    fields = [f for f in wider["fields"] if f["name"] not in ("taux", "service")]
    fields += [{"name": "taux", "type": "string"}, {"name": "code", "type": "string",
               "constraints": {"required": True}}]  # fmt: skip
    breaking = {"fields": fields, "primaryKey": ["hopital"]}
    refused = await client.put(url, json={"table_schema": breaking}, headers=steward)
    assert refused.status_code == 409, refused.text
    problems = refused.json()["error"]["problems"]
    assert len(problems) == 4 and any("« service »" in p for p in problems)
    again = await client.put(url, json={"table_schema": wider}, headers=steward)
    assert again.status_code == 409
    product = (await client.get(f"/api/v1/products/{pid}", headers=steward)).json()
    assert [f["name"] for f in product["table_schema"]["fields"]][-1] == "telephone"
    async with tx(app) as session:
        actions = list(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action == "product.schema")
            )
        )
    assert actions == ["product.schema"]


async def test_fields_a_steward_indexes_serve_sorted_pages(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    """``"index": true`` on a field makes indexes over the current rows in both row-page orders
    (PostgreSQL plans a sorted page through them, the stewards' row rule included); taking it
    away drops them; a geometry cannot be indexed."""
    steward = await sign_in(client, "steward")
    indexed = {**SCHEMA, "fields": [{**f, "index": f["name"] == "taux"} for f in SCHEMA["fields"]]}
    pid = (await create(client, steward, health, table_schema=indexed)).json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    table = "dp_" + pid.replace("-", "")

    async def indexes() -> set[str]:
        async with tx(app) as session:
            if session.get_bind().dialect.name == "postgresql":
                query = text("SELECT indexname FROM pg_indexes WHERE tablename = :t")
            else:
                query = text(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
                )
            names = set(await session.scalars(query, {"t": table}))
        return {n.removeprefix(table) for n in names if n.startswith(table + "_")} - {
            "_current", "_key", "_pkey"}  # fmt: skip

    made = await indexes()
    async with tx(app) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
    assert len(made) == (2 if postgres else 1), made
    if postgres:  # the sorted pages the API reads are planned through them
        prefet = await sign_in(client, "prefet")
        with captured_statements(app) as seen:
            for sort in ("taux", "-taux"):
                page = await client.get(f"/api/v1/products/{pid}/rows?sort={sort}", headers=prefet)
                assert page.status_code == 200, page.text
        pages = [
            (sql, params) for sql, params in seen if f"FROM {table}" in sql and "ORDER BY" in sql
        ]
        assert len(pages) == 2, seen
        async with owner_tx(app) as session:
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            await session.execute(text("SET LOCAL enable_sort = off"))
            for sql, params in pages:
                plan = (await session.connection()).exec_driver_sql("EXPLAIN " + sql, params)
                lines = "\n".join(row[0] for row in (await plan).all())
                assert "Index Scan" in lines and table + "_" in lines and "Sort" not in lines, lines

    url = f"/api/v1/products/{pid}/schema"
    plain = {**SCHEMA, "fields": [dict(f) for f in SCHEMA["fields"]]}
    changed = await client.put(url, json={"table_schema": plain}, headers=steward)
    assert changed.status_code == 200, changed.text
    assert changed.json()["changes"] == ["champ « taux » : index retiré"]
    assert await indexes() == set()
    geometry = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "lieu", "type": "geojson",
                                                        "index": True}]}  # fmt: skip
    refused = await client.put(url, json={"table_schema": geometry}, headers=steward)
    assert refused.status_code == 422 and "géométrie ne s'indexe pas" in refused.text
