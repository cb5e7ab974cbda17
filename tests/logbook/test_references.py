"""References are protected like their targets (SECURITY.md item 32): a visible entry linked
to a hidden situation or entry shows no trace of it, in the API, the web pages, the history
and the live stream; a filter on a hidden id behaves exactly like one on an unknown id; a
stream replay drops the events of records raised since."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, officer
from tests.live.server import open_stream, serve
from tests.web.pages import browse_as

NP = {"level": "NP", "audience": []}
DR = {"level": "DR", "audience": []}


async def _post(client: AsyncClient, url: str, body: dict[str, Any], who: dict[str, str]) -> Any:
    response = await client.post(url, json=body, headers=who)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _triage(
    client: AsyncClient, entry_id: str, what: str, body: dict[str, Any], who: dict[str, str]
) -> Any:
    current = await client.get(f"/api/v1/entries/{entry_id}", headers=who)
    headers = {**who, "If-Match": current.headers["etag"]}
    return await _post(client, f"/api/v1/entries/{entry_id}/{what}", body, headers)


async def test_links_to_hidden_records_leave_no_trace(app: FastAPI, client: AsyncClient) -> None:
    chief = await officer(app, client, "chief", "CNCS", roles=(Role.WATCH_OFFICER,))
    reader = await officer(app, client, "np.reader", "SAMU", clearance="NP")
    situation = await _post(client, "/api/v1/situations", {"title": "Filature", "label": DR}, chief)
    hidden_entry = await _post(client, "/api/v1/entries", {**ENTRY, "label": DR}, chief)
    linked = await _post(
        client,
        "/api/v1/entries",
        {
            **ENTRY,
            "label": NP,
            "situation_id": situation["id"],
            "follow_up_of_id": hidden_entry["id"],
        },
        chief,
    )
    duplicate = await _post(client, "/api/v1/entries", {**ENTRY, "label": NP}, chief)
    await _triage(client, duplicate["id"], "duplicate", {"duplicate_of": hidden_entry["id"]}, chief)
    moved = await _post(client, "/api/v1/entries", {**ENTRY, "label": NP}, chief)
    await _triage(client, moved["id"], "situation", {"situation_id": situation["id"]}, chief)
    secrets = {situation["id"], hidden_entry["id"]}

    # The cleared watch officer sees every link.
    full = (await client.get(f"/api/v1/entries/{linked['id']}", headers=chief)).json()
    assert full["situation_id"] == situation["id"]
    assert full["follow_up_of_id"] == hidden_entry["id"]

    # The NP reader sees the entries, never the ids they link to.
    bodies = [
        (await client.get(f"/api/v1/entries/{linked['id']}", headers=reader)).text,
        (await client.get(f"/api/v1/entries/{duplicate['id']}", headers=reader)).text,
        (await client.get("/api/v1/entries", headers=reader)).text,
        (await client.get(f"/api/v1/entries/{moved['id']}/versions", headers=reader)).text,
        (await client.get(f"/api/v1/entries/{duplicate['id']}/versions", headers=reader)).text,
        (await client.get("/api/v1/search", params={"q": "colis"}, headers=reader)).text,
    ]
    for body in bodies:
        assert not any(secret in body for secret in secrets), body
    one = (await client.get(f"/api/v1/entries/{linked['id']}", headers=reader)).json()
    assert one["situation_id"] is None and one["follow_up_of_id"] is None
    assert len((await client.get("/api/v1/entries", headers=reader)).json()["items"]) == 3

    # A filter on the hidden situation answers exactly like one on an unknown id.
    on_hidden = await client.get(
        "/api/v1/entries", params={"situation_id": situation["id"]}, headers=reader
    )
    on_unknown = await client.get(
        "/api/v1/entries", params={"situation_id": str(uuid.uuid4())}, headers=reader
    )
    assert on_hidden.status_code == on_unknown.status_code == 200
    assert on_hidden.json() == on_unknown.json() == {"items": [], "next_cursor": None}
    maps = [
        await client.get(
            "/api/v1/map/entries",
            params={"situation_id": target, "view": "2,48,3,49", "zoom": 16},
            headers=reader,
        )
        for target in (situation["id"], str(uuid.uuid4()))
    ]
    assert maps[0].status_code == maps[1].status_code == 200
    assert maps[0].json() == maps[1].json()
    chief_filter = await client.get(
        "/api/v1/entries", params={"situation_id": situation["id"]}, headers=chief
    )
    assert {e["id"] for e in chief_filter.json()["items"]} == {linked["id"], moved["id"]}

    # The web pages: the entry page and a feed filtered on the hidden situation.
    await browse_as(client, "np.reader")
    page = await client.get(f"/entrees/{moved['id']}")
    assert page.status_code == 200 and not any(s in page.text for s in secrets)
    for s in secrets:
        assert s[:8] not in page.text
    unknown = str(uuid.uuid4())
    hidden_feed = await client.get("/main-courante", params={"situation": situation["id"]})
    unknown_feed = await client.get("/main-courante", params={"situation": unknown})
    assert hidden_feed.status_code == unknown_feed.status_code == 200

    # the same page but for the id typed (echoed in the page's links and its notice) and the
    # CSRF token, masked afresh on every page (ADR 0022)
    csrf = re.compile(r'(name="csrf[-_]token" (?:content|value)=)"[^"]*"')

    def typed(text: str, value: str) -> str:
        return csrf.sub(r'\1""', text.replace(value, "?").replace(value[:8], "?"))

    assert typed(hidden_feed.text, situation["id"]) == typed(unknown_feed.text, unknown)


async def test_live_events_and_replays_hide_what_is_hidden_now(
    app: FastAPI, client: AsyncClient
) -> None:
    chief = await officer(app, client, "chief", "CNCS", roles=(Role.WATCH_OFFICER,))
    reader = await officer(app, client, "np.reader", "SAMU", clearance="NP")
    cleared = await officer(app, client, "dr.reader", "SAMU")
    situation = await _post(client, "/api/v1/situations", {"title": "Filature", "label": DR}, chief)
    async with serve(app) as base:
        async with open_stream(base, reader) as np_stream, open_stream(base, cleared) as dr:
            linked = await _post(
                client,
                "/api/v1/entries",
                {**ENTRY, "label": NP, "situation_id": situation["id"]},
                chief,
            )
            await np_stream.wait_for(lambda s: bool(s.of("entry.create")))
            await dr.wait_for(lambda s: bool(s.of("entry.create")))
        assert np_stream.of("entry.create")[0].data["situation_id"] is None
        assert situation["id"] not in str([e.data for e in np_stream.events])
        assert dr.of("entry.create")[0].data["situation_id"] == situation["id"]

        # Raised after its events were written: a replay from the start no longer shows it.
        raised = await _post(client, "/api/v1/entries", {**ENTRY, "label": NP}, chief)
        await _triage(client, raised["id"], "label", {"label": DR}, chief)
        async with open_stream(base, reader, query="?since=0") as replay:
            await replay.wait_for(lambda s: bool(s.ids()))
            await asyncio.sleep(0.3)
        replayed = {e.data["resource_id"] for e in replay.events if e.id}
        assert replayed == {linked["id"]}
        assert raised["id"] not in str([e.data for e in replay.events])
        assert situation["id"] not in str([e.data for e in replay.events])
