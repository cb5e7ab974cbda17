"""The recipients' side: the inbox, acknowledgement, and nothing for anybody else (a synthesis
not sent to you does not exist, exactly like a missing id)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from tests.factories import tx
from tests.synthesis.helpers import Room


async def test_inbox_and_acknowledgement(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    entry = await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 19 h"))["id"]
    await room.sent("claire", "marc", sid, users=["prefet"])
    prefet = await room("prefet")

    inbox = (await client.get("/api/v1/inbox", headers=prefet)).json()
    assert len(inbox) == 1
    assert inbox[0]["synthesis"]["id"] == sid and inbox[0]["synthesis"]["status"] == "sent"
    assert inbox[0]["delivered_at"] and inbox[0]["acknowledged_at"] is None
    read = await client.get(f"/api/v1/syntheses/{sid}", headers=prefet)
    assert read.status_code == 200
    assert [e["title"] for e in read.json()["entries"]] == [entry["title"]]
    listed = (await client.get("/api/v1/syntheses", headers=prefet)).json()
    assert [s["id"] for s in listed] == [sid]

    acknowledged = await client.post(f"/api/v1/syntheses/{sid}/acknowledge", headers=prefet)
    assert acknowledged.status_code == 204 and acknowledged.content == b""
    first = (await client.get("/api/v1/inbox", headers=prefet)).json()[0]["acknowledged_at"]
    assert first is not None and datetime.fromisoformat(first)
    (row,) = await room.recipients(sid)
    assert row.acknowledged_at is not None
    # Acknowledging twice keeps the first time (and records it once).
    again = await client.post(f"/api/v1/syntheses/{sid}/acknowledge", headers=prefet)
    assert again.status_code == 204
    assert (await client.get("/api/v1/inbox", headers=prefet)).json()[0]["acknowledged_at"] == first
    async with tx(app) as session:
        acks = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "synthesis.acknowledge")
            )
        )
    assert len(acks) == 1 and acks[0].resource_ids == [sid]


async def test_not_sent_to_you_is_not_found(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 19 h"))["id"]
    await room.sent("claire", "marc", sid, users=["prefet"])
    garde = await room("garde")  # an authority of the same prefecture, cleared NP: not a recipient
    missing = uuid.uuid4()
    for path in ("", "/pdf"):
        response = await client.get(f"/api/v1/syntheses/{sid}{path}", headers=garde)
        absent = await client.get(f"/api/v1/syntheses/{missing}{path}", headers=garde)
        assert response.status_code == absent.status_code == 404
        assert response.json() == absent.json()
    acknowledged = await client.post(f"/api/v1/syntheses/{sid}/acknowledge", headers=garde)
    assert acknowledged.status_code == 404
    assert (await client.get("/api/v1/inbox", headers=garde)).json() == []
    assert (await client.get("/api/v1/syntheses", headers=garde)).json() == []
    # A watch officer who is not a recipient reads it (it is not in their inbox) …
    marc = await room("marc")
    assert (await client.get(f"/api/v1/syntheses/{sid}", headers=marc)).status_code == 200
    assert (await client.get("/api/v1/inbox", headers=marc)).json() == []
    # … but cannot acknowledge what was not sent to them.
    not_mine = await client.post(f"/api/v1/syntheses/{sid}/acknowledge", headers=marc)
    assert not_mine.status_code == 404


async def test_drafts_are_for_watch_officers(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 19 h"))["id"]
    for username in ("antoine", "emilie", "prefet"):  # officers (DR and NP), an authority
        headers = await room(username)
        assert (await client.get("/api/v1/syntheses", headers=headers)).json() == []
        response = await client.get(f"/api/v1/syntheses/{sid}", headers=headers)
        assert response.status_code == 404
        drafted = await client.post(
            "/api/v1/syntheses", json={"title": "Mon point"}, headers=headers
        )
        assert drafted.status_code == 403
        submit = await client.post(f"/api/v1/syntheses/{sid}/submit", headers=headers)
        assert submit.status_code == 403
        schedule = await client.post(
            "/api/v1/synthesis-schedules", json={"name": "x", "times": ["07:00"]}, headers=headers
        )
        assert schedule.status_code == 403
    # Another watch officer sees the draft in the list.
    listed = (await client.get("/api/v1/syntheses", headers=await room("marc"))).json()
    assert [s["id"] for s in listed] == [sid]
