"""Counts of entries (``GET /api/v1/entries/aggregate``), on both engines: a reader counts
exactly the entries the feed shows them (never one they may not see), grouped by a field
and/or a time bucket in Paris time; a zone is decided on each entry's shape; the read is
audited without an entry id; bad groupings are 422s naming the parameter."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_group, officer, tx
from tests.geo.test_geo_api import PUBLIC, ZONE, point

LABELS = [
    {"level": "NP", "need_to_know": [], "audience": []},
    {"level": "DR", "need_to_know": [], "audience": []},
    {"level": "NP", "need_to_know": ["VIP"], "audience": []},
    {"level": "NP", "need_to_know": [], "audience": ["SAMU"]},
]
# (category, severity, occurred_at): 26 July 23:30 and 27 July 00:30 in Paris fall on two
# days there, on the same day in UTC.
SHAPES = [
    ("security", "major", "2024-07-26T23:30:00+02:00"),
    ("security", "minor", "2024-07-27T00:30:00+02:00"),
    ("health", "critical", "2024-07-27T00:45:00+02:00"),
    ("transport", "info", "2024-08-02T10:00:00+02:00"),
]


async def write(client: AsyncClient, headers: dict[str, str], **fields: Any) -> str:
    created = await client.post("/api/v1/entries", json={**ENTRY, **fields}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def counts(client: AsyncClient, headers: dict[str, str], query: str) -> Any:
    answer = await client.get(f"/api/v1/entries/aggregate?{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def readers(app: FastAPI, client: AsyncClient) -> dict[str, dict[str, str]]:
    await make_group(app, "VIP")
    return {
        "author": await officer(
            app, client, "author", "PREF", groups=["VIP"], roles=(Role.WATCH_OFFICER,)
        ),
        "np": await officer(app, client, "np", "MAIRIE", clearance="NP"),
        "dr": await officer(app, client, "dr", "MAIRIE", clearance="DR"),
        "vip": await officer(app, client, "vip", "SAMU", clearance="NP", groups=["VIP"]),
    }


async def test_a_reader_counts_exactly_what_the_feed_shows(
    app: FastAPI, client: AsyncClient
) -> None:
    people = await readers(app, client)
    for label, (category, severity, at) in itertools.product(LABELS, SHAPES):
        await write(client, people["author"], label=label, category=category,
                    severity=severity, occurred_at=at)  # fmt: skip
    expected_totals = {"author": 16, "np": 4, "dr": 8, "vip": 12}
    for name, headers in people.items():
        feed = (await client.get("/api/v1/entries?limit=200", headers=headers)).json()["items"]
        assert len(feed) == expected_totals[name], name
        for group_by in ("category", "severity", "status", "organisation_id"):
            body = await counts(client, headers, f"group_by={group_by}")
            if group_by == "organisation_id":  # the feed names it by its code
                assert [g["count"] for g in body["groups"]] == [len(feed)]
            else:
                seen = Counter(str(e[group_by]) for e in feed)
                assert {g[group_by]: g["count"] for g in body["groups"]} == seen, name
            assert body["total"] == len(feed)
        body = await counts(client, headers, "group_by=severity&category=security")
        assert [g["severity"] for g in body["groups"]] == ["minor", "major"]  # natural order
        assert sum(g["count"] for g in body["groups"]) == expected_totals[name] // 2
    assert (await counts(client, people["np"], ""))["groups"] == [{"count": 4}]
    assert (await counts(client, people["np"], "group_by=severity"))["levels"] == ["NP"]
    assert (await counts(client, people["dr"], "group_by=severity"))["levels"] == ["NP", "DR"]

    async with tx(app) as session:
        records = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "entry.aggregate")
            )
        )
    assert len(records) == 4 * 5 + 3
    assert all(r.resource_ids == [] for r in records)
    assert {r.detail["groups"] for r in records if r.detail["group_by"] == "severity"} >= {2, 4}
    assert all(len(r.detail["predicate"]) == 32 for r in records)


async def test_buckets_are_paris_days_and_hours(app: FastAPI, client: AsyncClient) -> None:
    people = await readers(app, client)
    for category, severity, at in SHAPES:
        await write(client, people["author"], category=category, severity=severity,
                    occurred_at=at, label=LABELS[0])  # fmt: skip
    await write(client, people["author"], occurred_at=SHAPES[0][2], label=LABELS[1])
    np = people["np"]
    body = await counts(client, np, "bucket=day")
    assert body["groups"] == [
        {"bucket": "2024-07-26T00:00:00+02:00", "count": 1},
        {"bucket": "2024-07-27T00:00:00+02:00", "count": 2},
        {"bucket": "2024-08-02T00:00:00+02:00", "count": 1},
    ]  # the DR entry of the 26th is not counted for this reader
    body = await counts(client, people["dr"], "bucket=day&group_by=severity")
    assert body["groups"][:2] == [
        {"severity": "major", "bucket": "2024-07-26T00:00:00+02:00", "count": 2},
        {"severity": "minor", "bucket": "2024-07-27T00:00:00+02:00", "count": 1},
    ]
    body = await counts(client, np, "bucket=hour&since=2024-07-27T00:00:00%2B02:00")
    assert body["groups"] == [
        {"bucket": "2024-07-27T00:00:00+02:00", "count": 2},
        {"bucket": "2024-08-02T10:00:00+02:00", "count": 1},
    ]
    body = await counts(client, np, "bucket=week")
    assert [g["count"] for g in body["groups"]] == [3, 1]
    assert body["groups"][0]["bucket"] == "2024-07-22T00:00:00+02:00"


async def test_a_zone_counts_the_entries_its_shape_holds(app: FastAPI, client: AsyncClient) -> None:
    people = await readers(app, client)
    chef, np = people["author"], people["np"]
    zone = await client.post(
        "/api/v1/zones",
        json={"name": "Champ-de-Mars", "kind": "perimeter", "geometry": ZONE, "label": PUBLIC},
        headers=chef,
    )
    assert zone.status_code == 201, zone.text
    zid = zone.json()["id"]
    await write(client, chef, location=point(2.285, 48.845), label=LABELS[0])  # inside
    await write(client, chef, location=point(2.285, 48.846), label=LABELS[1])  # inside, DR
    await write(client, chef, location=point(2.30, 48.855), label=LABELS[0])  # in the hole
    await write(client, chef, location=point(2.33, 48.88), label=LABELS[0])  # box corner
    await write(client, chef, location=point(2.31, 48.86), severity="minor", label=LABELS[0])
    body = await counts(client, np, f"zone={zid}&group_by=severity")
    assert body["groups"] == [{"severity": "minor", "count": 1}, {"severity": "major", "count": 1}]
    assert body["levels"] == ["NP"]
    body = await counts(client, people["dr"], f"zone={zid}&bucket=day")
    assert body["total"] == 3 and len(body["groups"]) == 1


async def test_bad_groupings_are_refused(app: FastAPI, client: AsyncClient) -> None:
    people = await readers(app, client)
    await write(client, people["author"], severity="minor", label=LABELS[0])
    await write(client, people["author"], severity="major", label=LABELS[0])
    np = people["np"]
    for query, field in (("group_by=title", "group_by"), ("bucket=month", "bucket")):
        answer = await client.get(f"/api/v1/entries/aggregate?{query}", headers=np)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["fields"][0]["field"] == field
    answer = await client.get("/api/v1/entries/aggregate?group_by=severity&limit=1", headers=np)
    assert answer.status_code == 422 and "Trop de groupes" in answer.json()["error"]["message"]
    assert (await client.get("/api/v1/entries/aggregate")).status_code == 401
