"""Sending only to recipients cleared for the synthesis and everything in it: a named
uncleared user refuses the whole sending (with their name) and nothing is stored; an
organisation's uncleared members are left out, and one with nobody cleared is refused."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.synthesis.helpers import RESTRICTED, Room


async def restricted(room: Room, title: str = "Point de 19 h", **label: Any) -> str:
    """A validated DR synthesis (one DR entry inside), ready to be sent by Sophie."""
    await room.entry("antoine", "Renseignement sur un rassemblement", label={**RESTRICTED, **label})
    sid = str((await room.draft("claire", title))["id"])
    await room.validated("claire", "sophie", sid)
    return sid


async def still_unsent(room: Room, sid: str) -> None:
    synthesis = (
        await room.client.get(f"/api/v1/syntheses/{sid}", headers=await room("sophie"))
    ).json()
    assert synthesis["status"] == "validated" and synthesis["sent_at"] is None
    assert await room.recipients(sid) == []


async def test_an_uncleared_named_user_refuses_the_sending(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    for username in ("prefet", "maire"):
        await room(username)
    sid = await restricted(room)
    refused = await room.step("sophie", sid, "send", json={"users": ["maire"]}, status=403)
    assert refused["error"]["code"] == "recipient_not_cleared"
    assert "Anne Maire" in refused["error"]["message"]
    await still_unsent(room, sid)

    # Together with a cleared one: still nothing for anybody, and only the uncleared is named.
    both = await room.step("sophie", sid, "send", json={"users": ["prefet", "maire"]}, status=403)
    assert "Anne Maire" in both["error"]["message"]
    assert "Hélène Préfète" not in both["error"]["message"]
    await still_unsent(room, sid)
    assert (await client.get("/api/v1/inbox", headers=await room("prefet"))).json() == []

    # An unknown name is a mistake, not a refusal.
    unknown = await room.step("sophie", sid, "send", json={"users": ["nobody"]}, status=422)
    assert "nobody" in unknown["error"]["message"]
    await room.step("sophie", sid, "send", json={}, status=422)  # at least one recipient
    await still_unsent(room, sid)

    sent = await room.step("sophie", sid, "send", json={"users": ["prefet"]})
    assert sent["status"] == "sent"
    assert [r.user_id for r in await room.recipients(sid)] == [await room.user_id("prefet")]


async def test_organisations_send_to_their_cleared_members_only(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    for username in ("prefet", "garde", "maire", "elu"):  # PREF: DR + NP; MAIRIE: NP only
        await room(username)
    sid = await restricted(room)
    nobody = await room.step("sophie", sid, "send", json={"organisations": ["MAIRIE"]}, status=403)
    assert nobody["error"]["code"] == "recipient_not_cleared"
    assert "MAIRIE" in nobody["error"]["message"]
    await still_unsent(room, sid)
    await room.step("sophie", sid, "send", json={"organisations": ["NOWHERE"]}, status=422)
    # One organisation with nobody cleared refuses the sending to both.
    await room.step("sophie", sid, "send", json={"organisations": ["PREF", "MAIRIE"]}, status=403)
    await still_unsent(room, sid)

    await room.step("sophie", sid, "send", json={"organisations": ["PREF"]})
    rows = await room.recipients(sid)
    assert [r.user_id for r in rows] == [await room.user_id("prefet")]
    assert rows[0].via_organisation_id is not None
    assert len((await client.get("/api/v1/inbox", headers=await room("prefet"))).json()) == 1
    assert (await client.get("/api/v1/inbox", headers=await room("garde"))).json() == []


async def test_a_missing_need_to_know_group_refuses(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    for username in ("prefet", "ministre"):  # both DR; only the minister is in VIP
        await room(username)
    sid = await restricted(room, need_to_know=["VIP"])
    refused = await room.step("sophie", sid, "send", json={"users": ["prefet"]}, status=403)
    assert refused["error"]["code"] == "recipient_not_cleared"
    assert "Hélène Préfète" in refused["error"]["message"]
    assert "besoin d en connaître" in refused["error"]["message"]
    await still_unsent(room, sid)
    # Sent to the prefecture: the minister only.
    await room.step("sophie", sid, "send", json={"organisations": ["PREF"]})
    assert [r.user_id for r in await room.recipients(sid)] == [await room.user_id("ministre")]
