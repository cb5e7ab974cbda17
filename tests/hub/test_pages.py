"""The hub's pages: /accueil shows the announcements, who is on duty by room with the next
shift, the latest documents and the (empty, for now) spaces section; watch officers keep the
directory with forms, the CNCS publishes, officers share documents; bad input is a 422 page."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.hub.models import Announcement, DutyAssignment, HubDocument
from tests.factories import make_org, make_user, sign_in, tx
from tests.hub.world import PUBLIC, at, cast
from tests.web.pages import browse_as


def paris_local(hours: float) -> str:
    """A datetime-local value (Paris time) ``hours`` from now."""
    from datetime import datetime, timedelta

    from hypervision.core.timezone import PARIS

    return (datetime.now(PARIS) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


async def fill(app: FastAPI, client: AsyncClient, h: dict[str, dict[str, str]]) -> None:
    shifts = [
        ("olga", "Salle CNCS", -1, 6),
        ("marc", "Salle CNCS", 6, 12),
        ("dr", "PC Stade de France", -2, 2),
    ]
    for username, room, start, end in shifts:
        made = await client.post(
            "/api/v1/hub/duty",
            json={
                "username": username,
                "organisation": "PREF",
                "room": room,
                "phone": "01 40 00 00 00",
                "radio": "TPH 7",
                "starts_at": at(start),
                "ends_at": at(end),
            },
            headers=h["marc"],
        )
        assert made.status_code == 201, made.text
    notice = {"title": "Point presse à 18 h", "body": "Salle **Bleue**.", "label": PUBLIC}
    assert (
        await client.post("/api/v1/hub/announcements", json=notice, headers=h["chef"])
    ).status_code == 201
    doc = await client.post(
        "/api/v1/hub/documents",
        params={"title": "Plan de circulation", "level": "NP"},
        files={"file": ("plan.txt", b"plan\n", "text/plain")},
        headers=h["olga"],
    )
    assert doc.status_code == 201


async def test_the_hub_page(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    await fill(app, client, h)
    await browse_as(client, "olga")
    root = await client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/accueil"
    page = await client.get("/accueil")
    assert page.status_code == 200
    html = page.text
    assert "<title>Accueil — Hypervision</title>" in html
    assert "Annonces du CNCS" in html and "Point presse à 18 h" in html
    assert "Salle <strong>Bleue</strong>." in html
    rooms = re.findall(r'<h3 class="fr-h6 fr-mb-1v">([^<]+)</h3>', html)
    assert rooms == ["PC Stade de France", "Salle CNCS"]
    assert "Olga" in html and 'href="tel:0140000000"' in html
    assert "Relève : Marc (PREF)" in html  # the next shift of the CNCS room
    assert "Plan de circulation" in html
    assert "Aucun espace pour l’instant" in html and 'href="/espaces"' in html
    assert 'href="/accueil/annuaire">Tout l’annuaire de crise' in html  # olga keeps nothing
    token = re.search(r'name="csrf-token" content="([^"]*)"', html)
    assert token is not None
    english = await client.post(
        "/langue", data={"locale": "en", "csrf_token": token.group(1), "suite": "/accueil"}
    )
    assert english.status_code == 303
    assert "Announcements from the CNCS" in (await client.get("/accueil")).text


async def test_roles_without_reads_still_get_a_hub(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    await fill(app, client, h)
    await browse_as(client, "sec")
    page = await client.get("/accueil")
    assert page.status_code == 200
    assert "Votre rôle ne lit pas les annonces." in page.text
    assert "Point presse" not in page.text and "Plan de circulation" not in page.text
    assert 'href="/accueil/annonces"' not in page.text and "Olga" not in page.text
    client.cookies.clear()
    await browse_as(client, "admin")  # keeps the directory, reads no record
    page = await client.get("/accueil")
    assert page.status_code == 200 and "Olga" in page.text and "Point presse" not in page.text


async def test_watch_officers_keep_the_directory(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    csrf = await browse_as(client, "marc")
    form = {
        "csrf_token": csrf,
        "username": "",
        "person_name": "Cdt Martin (SDIS 93)",
        "organisation": "PREF",
        "room": "PC Stade de France",
        "function": "Officier SDIS",
        "phone": "+33 6 12 34 56 78",
        "radio": "",
        "email": "martin@sdis93.example.fr",
        "starts_at": paris_local(-1),
        "ends_at": paris_local(8),
        "note": "",
    }
    made = await client.post("/accueil/annuaire", data=form)
    assert made.status_code == 303 and made.headers["location"] == "/accueil/annuaire?enregistree=1"
    listed = await client.get("/accueil/annuaire?enregistree=1")
    assert "Cdt Martin (SDIS 93)" in listed.text and "Permanence enregistrée." in listed.text
    async with tx(app) as session:
        row = await session.scalar(select(DutyAssignment))
    assert row is not None and row.ends_at > row.starts_at
    edit = await client.get(f"/accueil/annuaire/{row.id}")
    assert edit.status_code == 200 and 'value="PC Stade de France"' in edit.text
    moved = await client.post(f"/accueil/annuaire/{row.id}", data={**form, "room": "Salle CNCS"})
    assert moved.status_code == 303
    bad = await client.post("/accueil/annuaire", data={**form, "email": "pas-une-adresse"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text and "email" in bad.text
    late = await client.post("/accueil/annuaire", data={**form, "ends_at": paris_local(-3)})
    assert late.status_code == 422 and "la fin doit suivre le début" in late.text
    garbled = await client.post("/accueil/annuaire", data={**form, "starts_at": "hier"})
    assert garbled.status_code == 422 and "Les dates s’écrivent" in garbled.text
    ended = await client.post(f"/accueil/annuaire/{row.id}/fin", data={"csrf_token": csrf})
    assert ended.status_code == 303
    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(DutyAssignment)) == 1
        row = await session.scalar(select(DutyAssignment))
    assert row is not None and row.room == "Salle CNCS" and row.version == 3
    client.cookies.clear()
    csrf = await browse_as(client, "olga")
    refused = await client.post("/accueil/annuaire", data={**form, "csrf_token": csrf})
    assert refused.status_code == 403
    assert "Inscrire une permanence" not in (await client.get("/accueil/annuaire")).text


async def test_the_cncs_publishes_and_officers_share(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    csrf = await browse_as(client, "chef")
    form = {
        "csrf_token": csrf,
        "title": "Alerte météo",
        "body": "Orages **violents** <img src=x onerror=alert(1)>",
        "importance": "urgent",
        "starts_at": paris_local(-0.1),
        "ends_at": "",
        "audience": "own",
        "also": "PREF",
        "level": "NP",
    }
    made = await client.post("/accueil/annonces", data=form)
    assert made.status_code == 303, made.text
    async with tx(app) as session:
        notice = await session.scalar(select(Announcement))
    assert notice is not None and notice.importance == "urgent"
    assert len(notice.audience) == 2  # the CNCS and the prefecture
    bad = await client.post("/accueil/annonces", data={**form, "title": ""})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    client.cookies.clear()
    csrf = await browse_as(client, "olga")
    hub = (await client.get("/accueil")).text
    assert "Alerte météo" in hub and "<strong>violents</strong>" in hub and "<img" not in hub
    assert (
        await client.post("/accueil/annonces", data={**form, "csrf_token": csrf})
    ).status_code == 403
    shared = await client.post(
        "/accueil/documents",
        data={"csrf_token": csrf, "title": "Consignes", "audience": "all", "level": "NP"},
        files={"file": ("consignes.txt", b"Consignes\n", "text/plain")},
    )
    assert shared.status_code == 303, shared.text
    exe = await client.post(
        "/accueil/documents",
        data={"csrf_token": csrf, "title": "Outil", "audience": "all", "level": "NP"},
        files={"file": ("outil.exe", b"MZ\x90\x00" + bytes(300), "application/octet-stream")},
    )
    assert exe.status_code == 422 and "Type de fichier refusé" in exe.text
    async with tx(app) as session:
        docs = list(await session.scalars(select(HubDocument)))
    assert [d.title for d in docs] == ["Consignes"] and docs[0].audience == []
    archived = await client.post(
        f"/accueil/documents/{docs[0].id}/archiver", data={"csrf_token": csrf}
    )
    assert archived.status_code == 303
    assert "Consignes" not in (await client.get("/accueil/documents")).text
    assert "Consignes" in (await client.get("/accueil/documents?archives=1")).text


async def test_the_hub_lists_the_spaces_one_may_open(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "PREF")
    await make_org(app, "SDIS")
    await make_user(app, "paul", "PREF")
    await make_user(app, "sam", "SDIS")
    paul, sam = await sign_in(client, "paul"), await sign_in(client, "sam")
    mine = await client.post("/api/v1/spaces", json={"title": "PC préfecture"}, headers=paul)
    theirs = await client.post("/api/v1/spaces", json={"title": "PC pompiers"}, headers=sam)
    assert mine.status_code == theirs.status_code == 201
    await browse_as(client, "paul")
    html = (await client.get("/accueil")).text
    assert f'href="/espaces/{mine.json()["id"]}">PC préfecture</a>' in html
    assert "Espace de PREF" in html and "PC pompiers" not in html
