"""People's names, not their logins (both engines): the API gives ``author_name`` next to
``author`` (kept: a public contract) for entries, comments, situations and syntheses; the web
pages show the name; a corrected display name shows once its short cache time is over."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.identity import names
from hypervision.identity.models import User
from tests.factories import admin_headers, tx
from tests.synthesis.helpers import Room
from tests.web.conftest import Browser
from tests.web.pages import browse_as


async def test_the_api_and_the_pages_name_the_author(
    app: FastAPI, client: AsyncClient, new_client: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = Room(app, client)
    entry = await room.entry("claire", "Malaise au Stade de France")
    assert (entry["author"], entry["author_name"]) == ("claire", "Claire Dubois")
    said = await client.post(
        f"/api/v1/entries/{entry['id']}/comments",
        json={"body": "Pris en charge."},
        headers=await room("marc"),
    )
    assert (said.json()["author"], said.json()["author_name"]) == ("marc", "Marc Lefebvre")
    situation = await client.post(
        "/api/v1/situations", json={"title": "Chaleur"}, headers=await room("claire")
    )
    assert situation.json()["author_name"] == "Claire Dubois"
    draft = await room.draft("claire", "Point de situation 18 h")
    assert (draft["author"], draft["author_name"]) == ("claire", "Claire Dubois")

    web = await new_client()
    await browse_as(web, "marc")
    page = (await web.get(f"/entrees/{entry['id']}")).text
    assert "rédigée par Claire Dubois (CNCS)" in page
    assert "<strong>Marc Lefebvre</strong>" in page  # the comment
    assert "Claire Dubois" in (await web.get(f"/syntheses/{draft['id']}")).text

    admin = await admin_headers(app, client)
    async with tx(app) as session:
        claire = await session.scalar(select(User).where(User.username == "claire"))
        assert claire is not None
    renamed = await client.patch(
        f"/api/v1/users/{claire.id}", json={"full_name": "Claire Dubois-Roy"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    monkeypatch.setattr(names, "FULL_NAME_TTL", 0.0)
    again = await client.get(f"/api/v1/entries/{entry['id']}", headers=await room("marc"))
    assert (again.json()["author"], again.json()["author_name"]) == ("claire", "Claire Dubois-Roy")
