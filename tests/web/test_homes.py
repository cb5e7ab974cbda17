"""Roles' homes: officers land on the main courante (the site's root is the hub, /accueil),
authorities on their inbox (what they have not read, each synthesis summarised, no officer
tour nor "new entry"), watch officers see the syntheses awaiting their validation; the inbox
link carries the unread count."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_org, make_user, sign_in
from tests.web.pages import browse_as

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
NARRATIVE = "## Situation générale\n\nAffluence **forte** au Stade de France, sans incident."


async def cast(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_user(app, "olga", "PREF", clearance="DR")
    await make_user(app, "marc", "PREF", roles=[Role.WATCH_OFFICER], clearance="DR")
    await make_user(app, "claire", "PREF", roles=[Role.WATCH_OFFICER], clearance="DR")
    await make_user(app, "helene", "PREF", roles=[Role.AUTHORITY], clearance="DR")


async def synthesis(client: AsyncClient, *, steps: tuple[str, ...]) -> str:
    """A synthesis drafted by marc, taken through ``steps`` (claire validates, sends)."""
    marc, claire = await sign_in(client, "marc"), await sign_in(client, "claire")
    entry = {"title": "Affluence", "category": "security", "severity": "info", "label": PUBLIC}
    assert (await client.post("/api/v1/entries", json=entry, headers=marc)).status_code == 201
    drafted = await client.post(
        "/api/v1/syntheses", json={"title": "Point de 18 h", "scope": {"hours": 24}}, headers=marc
    )
    assert drafted.status_code == 201, drafted.text
    sid = str(drafted.json()["id"])
    edited = await client.patch(
        f"/api/v1/syntheses/{sid}", json={"narrative": NARRATIVE}, headers=marc
    )
    assert edited.status_code == 200, edited.text
    plan: dict[str, tuple[dict[str, str], Any]] = {
        "submit": (marc, None),
        "validate": (claire, None),
        "send": (claire, {"users": ["helene"]}),
    }
    for action in steps:
        headers, body = plan[action]
        done = await client.post(f"/api/v1/syntheses/{sid}/{action}", json=body, headers=headers)
        assert done.status_code == 200, (action, done.text)
    return sid


async def test_each_role_lands_on_its_home(app: FastAPI, client: AsyncClient) -> None:
    await cast(app)
    for username, home in (("olga", "/main-courante"), ("helene", "/boite")):
        signed = await client.post(
            "/connexion", data={"username": username, "password": "correct horse battery staple"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == home, username
        root = await client.get("/")
        assert root.headers["location"] == "/accueil"
        hub = await client.get("/accueil")  # the hub (docs/adr/0042), one click from any page
        assert hub.status_code == 200 and "Annonces du CNCS" in hub.text
        client.cookies.clear()


async def test_authority_inbox_with_unread_count_and_summaries(
    app: FastAPI, client: AsyncClient
) -> None:
    await cast(app)
    sid = await synthesis(client, steps=("submit", "validate", "send"))
    await browse_as(client, "helene")
    inbox = await client.get("/boite")
    assert inbox.status_code == 200
    assert "1 synthèse à lire" in inbox.text
    assert "Affluence forte au Stade de France, sans incident." in inbox.text  # the summary
    assert "##" not in inbox.text and "**" not in inbox.text
    badge = re.search(r'id="badge-boite">(.*?)</span></a>', inbox.text, re.S)
    assert badge and badge.group(1).endswith("1"), "the unread count on the inbox link"
    feed = await client.get("/main-courante")
    assert "badge-boite" in feed.text  # on every page
    assert "/main-courante/nouvelle" not in feed.text  # no "new entry" for an authority
    assert 'data-tour="pending"' not in feed.text  # nor the officer's tour

    readers = await client.get(f"/syntheses/{sid}/diffusion", headers={"HX-Request": "true"})
    assert readers.status_code == 200, readers.text
    # helene (sent to her), marc and claire (watch officers); not olga, an officer
    assert "3 personnes peuvent la lire." in readers.text
    assert 'hx-get="/syntheses/' in (await client.get(f"/syntheses/{sid}")).text

    acknowledged = await client.post(
        f"/api/v1/syntheses/{sid}/acknowledge", headers=await sign_in(client, "helene")
    )
    assert acknowledged.status_code in (200, 204), acknowledged.text
    inbox = await client.get("/boite")
    assert "badge-boite" not in inbox.text
    assert "Tout ce qui a été reçu a été lu." in inbox.text


async def test_watch_officer_sees_what_awaits_validation(app: FastAPI, client: AsyncClient) -> None:
    await cast(app)
    await synthesis(client, steps=("submit",))
    await browse_as(client, "claire")
    feed = await client.get("/main-courante")
    assert "1 synthèse attend votre validation" in feed.text
    client.cookies.clear()
    await browse_as(client, "marc")  # its author may not validate it (four eyes)
    assert "attend votre validation" not in (await client.get("/main-courante")).text
    client.cookies.clear()
    await browse_as(client, "olga")
    feed = await client.get("/main-courante")
    assert "attend votre validation" not in feed.text
    assert 'href="/main-courante/nouvelle"' in feed.text
