"""Entries through the API: create, read, list, correct with If-Match, history, foreign ids."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.logbook.models import Entry
from hypervision.records.models import RecordVersion
from tests.factories import ENTRY, officer, tx


async def test_create_read_and_history(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    created = await client.post("/api/v1/entries", json=ENTRY, headers=alice)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["author"] == "alice" and body["organisation"] == "PP"
    assert body["label"] == {"level": "NP", "need_to_know": [], "audience": ["PP"]}
    assert body["tags"] == ["chapelle", "colis"]
    assert "<strong>sécurité</strong>" in body["body_html"]
    etag = created.headers["etag"]
    entry_id = body["id"]

    read = await client.get(f"/api/v1/entries/{entry_id}", headers=alice)
    assert read.status_code == 200 and read.headers["etag"] == etag

    no_match = await client.patch(
        f"/api/v1/entries/{entry_id}", json={"status": "closed"}, headers=alice
    )
    assert no_match.status_code == 428
    patched = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"status": "in_progress"},
        headers={**alice, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    stale = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"status": "closed"},
        headers={**alice, "If-Match": etag},
    )
    assert stale.status_code == 412

    versions = (await client.get(f"/api/v1/entries/{entry_id}/versions", headers=alice)).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["changes"] == {"status": {"from": "open", "to": "in_progress"}}
    assert versions[1]["actor"] == "alice"

    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(RecordVersion)) == 2
        events = list(await session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)))
        assert events == ["entry.create", "entry.update"]
        actions = list(
            await session.scalars(
                select(AuditRecord.action)
                .where(AuditRecord.action.like("entry.%"))
                .order_by(AuditRecord.qid)
            )
        )
        assert actions == ["entry.create", "entry.read", "entry.update", "entry.versions"]


async def test_label_cannot_be_changed_by_patch(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    entry = await client.post(
        "/api/v1/entries", headers=alice, json={**ENTRY, "label": {"level": "DR", "audience": []}}
    )
    etag = entry.headers["etag"]
    for body in ({"label": {"level": "NP"}}, {"label_level": "NP"}, {"organisation_id": "x"}):
        response = await client.patch(
            f"/api/v1/entries/{entry.json()['id']}", json=body, headers={**alice, "If-Match": etag}
        )
        assert response.status_code == 403, body
    async with tx(app) as session:
        row = await session.get(Entry, uuid.UUID(entry.json()["id"]))
        assert row is not None and row.label_level == "DR" and row.version == 1


async def test_foreign_ids_answer_like_missing_ones(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    bob = await officer(app, client, "bob", "SAMU", clearance="NP")
    secret = await client.post(
        "/api/v1/entries", headers=alice, json={**ENTRY, "label": {"level": "DR", "audience": []}}
    )
    hidden_id = secret.json()["id"]
    missing_id = str(uuid.uuid4())
    for suffix in ("", "/versions"):
        hidden = await client.get(f"/api/v1/entries/{hidden_id}{suffix}", headers=bob)
        missing = await client.get(f"/api/v1/entries/{missing_id}{suffix}", headers=bob)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == missing.json()
    for path, body in (("validate", {}), ("severity", {"severity": "minor"})):
        hidden = await client.post(f"/api/v1/entries/{hidden_id}/{path}", json=body, headers=bob)
        assert hidden.status_code == 404
    patch = await client.patch(
        f"/api/v1/entries/{hidden_id}",
        json={"title": "x"},
        headers={**bob, "If-Match": secret.headers["etag"]},
    )
    assert patch.status_code == 404
    listed = (await client.get("/api/v1/entries", headers=bob)).json()["items"]
    assert listed == []


async def test_idempotent_creation(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    headers = {**alice, "Idempotency-Key": "7f1c1f8e-retry-1"}
    first = await client.post("/api/v1/entries", json=ENTRY, headers=headers)
    again = await client.post("/api/v1/entries", json=ENTRY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await client.post("/api/v1/entries", json={**ENTRY, "title": "autre"}, headers=headers)
    assert other.status_code == 422
    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(Entry)) == 1


async def test_bad_entries_are_refused_with_the_field(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP", clearance="NP")
    cases = [
        ({**ENTRY, "category": "astrology"}, "category"),
        ({**ENTRY, "title": ""}, "title"),
        ({**ENTRY, "title": "x" * 201}, "title"),
        ({**ENTRY, "severity": "apocalyptic"}, "severity"),
        (
            {**ENTRY, "location": {"type": "Point", "coordinates": [200, 48]}},
            "location.Point.coordinates.0",
        ),
        (
            {
                **ENTRY,
                "location": {"type": "Polygon", "coordinates": [[[2, 48], [2.1, 48], [2, 48.1]]]},
            },
            "location.Polygon",
        ),
        ({**ENTRY, "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({**ENTRY, "label": {"level": "TS"}}, "label.level"),
        ({**ENTRY, "label": {"level": "DR"}}, "label.level"),  # above alice's clearance
        ({**ENTRY, "label": {"level": "NP", "need_to_know": ["VIP"]}}, "label.need_to_know"),
        ({**ENTRY, "label": {"level": "NP", "audience": ["NOWHERE"]}}, "label.audience"),
        ({**ENTRY, "author_id": str(uuid.uuid4())}, "author_id"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/entries", json=body, headers=alice)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field, response.text
    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(Entry)) == 0
