"""Time buckets in a product's aggregates (``field@hour|day|week|month``), on both engines:
buckets in Paris time as ISO strings, the rows the rules hide left out of the counts, a hidden
column not bucketable, a non-date field or an unknown unit refused with a 422 naming it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.policy.roles import Role
from tests.factories import make_org, make_user, sign_in, tx
from tests.products.test_products_api import PUBLIC, upload

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "site", "type": "string"},
        {"name": "arrivee", "type": "datetime"},
        {"name": "jour", "type": "date"},
        {"name": "secret", "type": "datetime"},
    ]
}
# The 27 July 00:30 row (Paris) is 26 July 22:30 UTC: on the 27th here, where a UTC bucket
# would put it on the 26th. The "Cache" row is denied to every reader.
CSV = (
    b"site;arrivee;jour;secret\n"
    b"Stade;2024-07-26T23:30:00+02:00;2024-07-26;2024-07-26T10:00:00+02:00\n"
    b"Stade;2024-07-26T23:10:00+02:00;2024-07-28;2024-07-26T10:00:00+02:00\n"
    b"Stade;2024-07-27T00:30:00+02:00;2024-07-29;2024-07-26T10:00:00+02:00\n"
    b"Arena;2024-08-01T09:00:00+02:00;2024-08-01;2024-07-26T10:00:00+02:00\n"
    b"Cache;2024-07-26T12:00:00+02:00;2024-07-26;2024-07-26T10:00:00+02:00\n"
)
RULES: dict[str, Any] = {
    "rows": [
        {
            "effect": "deny",
            "when": {"op": "eq", "left": {"rec": "site"}, "right": {"value": "Cache"}},
        }
    ],
    "rows_default": "allow",
    "columns": [
        {
            "columns": ["secret"],
            "effect": "deny",
            "when": {
                "not": {"op": "contains", "left": {"user": "groups"}, "right": {"value": "X"}}
            },
        }
    ],
}


@pytest.fixture
async def pid(app: FastAPI, client: AsyncClient) -> str:
    await make_org(app, "JOP")
    await make_org(app, "PREF")
    await make_user(app, "steward", "JOP", roles=[Role.DATA_STEWARD], clearance="DR")
    await make_user(app, "lecteur", "PREF", clearance="DR")
    steward = await sign_in(client, "steward")
    body = {
        "slug": "arrivees",
        "name": "Arrivées",
        "description": "Arrivées sur les sites",
        "table_schema": SCHEMA,
        "rules": RULES,
        "label": PUBLIC,
    }
    created = await client.post("/api/v1/products", json=body, headers=steward)
    assert created.status_code == 201, created.text
    product_id = str(created.json()["id"])
    imported = await upload(client, steward, product_id, CSV)
    assert imported.status_code == 201, imported.text
    return product_id


async def counts(client: AsyncClient, headers: dict[str, str], pid: str, group_by: str) -> Any:
    answer = await client.get(
        f"/api/v1/products/{pid}/aggregate?group_by={group_by}", headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_buckets_in_paris_time(app: FastAPI, client: AsyncClient, pid: str) -> None:
    reader = await sign_in(client, "lecteur")
    body = await counts(client, reader, pid, "arrivee@day")
    assert body["group_by"] == ["arrivee@day"]
    assert body["rows"] == [
        {"arrivee@day": "2024-07-26T00:00:00+02:00", "count": 2},
        {"arrivee@day": "2024-07-27T00:00:00+02:00", "count": 1},
        {"arrivee@day": "2024-08-01T00:00:00+02:00", "count": 1},
    ]  # the denied "Cache" row (26 July) is not counted
    body = await counts(client, reader, pid, "arrivee@hour")
    assert [r["arrivee@hour"] for r in body["rows"]] == [
        "2024-07-26T23:00:00+02:00",
        "2024-07-27T00:00:00+02:00",
        "2024-08-01T09:00:00+02:00",
    ]
    assert [r["count"] for r in body["rows"]] == [2, 1, 1]
    body = await counts(client, reader, pid, "arrivee@week")
    assert body["rows"] == [
        {"arrivee@week": "2024-07-22T00:00:00+02:00", "count": 3},
        {"arrivee@week": "2024-07-29T00:00:00+02:00", "count": 1},
    ]
    body = await counts(client, reader, pid, "site,arrivee@month")
    assert body["rows"] == [
        {"site": "Arena", "arrivee@month": "2024-08-01T00:00:00+02:00", "count": 1},
        {"site": "Stade", "arrivee@month": "2024-07-01T00:00:00+02:00", "count": 3},
    ]
    async with tx(app) as session:
        records = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "product.aggregate")
            )
        )
    assert len(records) == 4
    assert sorted(r.detail["columns"] for r in records) == [["arrivee"]] * 3 + [["arrivee", "site"]]
    assert {r.detail["rows"] for r in records} == {3, 2}


async def test_date_fields_bucket_by_day_week_month(client: AsyncClient, pid: str) -> None:
    reader = await sign_in(client, "lecteur")
    body = await counts(client, reader, pid, "jour@week")
    assert body["rows"] == [
        {"jour@week": "2024-07-22", "count": 2},
        {"jour@week": "2024-07-29", "count": 2},
    ]
    refused = await client.get(
        f"/api/v1/products/{pid}/aggregate?group_by=jour@hour", headers=reader
    )
    assert refused.status_code == 422 and "jour" in refused.json()["error"]["message"]


async def test_bad_buckets_are_refused_naming_the_field(client: AsyncClient, pid: str) -> None:
    reader = await sign_in(client, "lecteur")
    for group_by, named in (
        ("site@day", "site"),
        ("arrivee@year", "arrivee"),
        ("nope@day", "nope"),
    ):
        answer = await client.get(
            f"/api/v1/products/{pid}/aggregate?group_by={group_by}", headers=reader
        )
        assert answer.status_code == 422, (group_by, answer.text)
        assert named in answer.json()["error"]["message"]
    hidden = await client.get(
        f"/api/v1/products/{pid}/aggregate?group_by=secret@day", headers=reader
    )
    assert hidden.status_code == 403 and "secret" in hidden.json()["error"]["message"]
