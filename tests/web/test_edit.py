"""Correcting an entry and changing its status in the web app (both engines): each change is a
new version in the history, the same policy as the API decides who may, a concurrent change is
not overwritten and the typed text comes back, bad input gets a French message."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.logbook.models import Entry
from hypervision.policy.roles import Role
from hypervision.records.models import RecordVersion
from tests.factories import ENTRY, make_org, make_user, sign_in, tx
from tests.web.conftest import Browser
from tests.web.pages import browse_as

ETAG = re.compile(r'name="etag" value="([^"]+)"')


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_org(app, "SAMU")
    await make_user(app, "alice", "PREF", clearance="DR")
    await make_user(app, "paul", "PREF", clearance="DR")
    await make_user(app, "bob", "SAMU", clearance="DR")
    await make_user(app, "chef", "SAMU", roles=[Role.WATCH_OFFICER], clearance="DR")


async def an_entry(client: AsyncClient) -> str:
    headers = await sign_in(client, "alice")
    shared = {**ENTRY, "label": {"level": "NP", "audience": []}}  # every organisation reads it
    response = await client.post("/api/v1/entries", json=shared, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def stored(app: FastAPI, entry_id: str) -> tuple[Entry, list[RecordVersion]]:
    async with tx(app) as session:
        entry = await session.get(Entry, uuid.UUID(entry_id))
        assert entry is not None
        rows = await session.scalars(
            select(RecordVersion)
            .where(RecordVersion.resource_id == entry.id)
            .order_by(RecordVersion.version)
        )
        return entry, list(rows)


def etag_of(html: str) -> str:
    found = ETAG.search(html)
    assert found, "no version on the form"
    return unescape(found.group(1))


async def test_correction_and_status_are_new_versions_in_the_history(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    web = await new_client()
    csrf = await browse_as(web, "paul")  # same organisation as the author
    page = await web.get(f"/entrees/{entry_id}")
    assert 'id="corriger"' in page.text and 'id="changer-statut"' in page.text
    form = await web.get(f"/entrees/{entry_id}/corriger")
    assert form.status_code == 200
    assert 'id="correction"' in form.text and "démineurs prévenus" in form.text
    saved = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={
            "csrf_token": csrf,
            "etag": etag_of(form.text),
            "title": "Colis suspect levé porte de la Chapelle",
            "body": "Fausse alerte,\r\npérimètre levé.",
        },
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/entrees/{entry_id}#historique"
    entry, versions = await stored(app, entry_id)
    assert entry.body == "Fausse alerte,\npérimètre levé."
    assert entry.title == "Colis suspect levé porte de la Chapelle"
    assert [v.version for v in versions][-1] == entry.version == 2

    page = await web.get(f"/entrees/{entry_id}")
    closed = await web.post(
        f"/entrees/{entry_id}/statut",
        data={"csrf_token": csrf, "etag": etag_of(page.text), "status": "closed"},
    )
    assert closed.status_code == 303, closed.text
    entry, versions = await stored(app, entry_id)
    assert entry.status == "closed" and entry.version == 3 and len(versions) == 3
    assert versions[-1].changes["status"] == {"from": "open", "to": "closed"}
    history = (await web.get(f"/entrees/{entry_id}")).text
    assert "<ins>levé</ins>" in history  # the correction's words, in the history
    assert "<del>Ouverte</del> → <ins>Clôturée</ins>" in history


async def test_others_see_no_controls_and_are_refused(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    other = await new_client()
    csrf = await browse_as(other, "bob")  # another organisation, not a watch officer
    page = await other.get(f"/entrees/{entry_id}")
    assert page.status_code == 200
    assert 'id="corriger"' not in page.text and 'id="changer-statut"' not in page.text
    assert (await other.get(f"/entrees/{entry_id}/corriger")).status_code == 403
    etag = f'"{entry_id}.1"'
    refused = await other.post(
        f"/entrees/{entry_id}/corriger",
        data={"csrf_token": csrf, "etag": etag, "title": "Piraté", "body": "x"},
    )
    assert refused.status_code == 403
    status = await other.post(
        f"/entrees/{entry_id}/statut", data={"csrf_token": csrf, "etag": etag, "status": "closed"}
    )
    assert status.status_code == 403
    entry, _ = await stored(app, entry_id)
    assert entry.version == 1 and entry.title == ENTRY["title"] and entry.status == "open"

    chef = await new_client()
    await browse_as(chef, "chef")  # a watch officer corrects any entry he sees, as in the API
    assert 'id="corriger"' in (await chef.get(f"/entrees/{entry_id}")).text


async def test_a_concurrent_change_is_not_overwritten_and_the_text_is_kept(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    web = await new_client()
    csrf = await browse_as(web, "paul")
    form = await web.get(f"/entrees/{entry_id}/corriger")
    shown_etag = etag_of(form.text)
    headers = await sign_in(client, "alice")  # meanwhile, the author corrects it by the API
    patched = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"body": "Démineurs sur place."},
        headers={**headers, "If-Match": shown_etag},
    )
    assert patched.status_code == 200, patched.text
    typed = "Mon texte tapé longuement, à ne pas perdre."
    conflict = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={"csrf_token": csrf, "etag": shown_etag, "title": "Titre tapé", "body": typed},
    )
    assert conflict.status_code == 412
    assert "text/html" in conflict.headers["content-type"]
    assert "Quelqu'un a modifié cette entrée" in unescape(conflict.text)
    assert typed in unescape(conflict.text) and 'value="Titre tapé"' in unescape(conflict.text)
    assert "Démineurs sur place." in conflict.text  # the current version, to compare
    entry, _ = await stored(app, entry_id)
    assert entry.body == "Démineurs sur place." and entry.version == 2
    # the form now carries the current version: saving again is deliberate and goes through
    again = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={
            "csrf_token": csrf, "etag": etag_of(conflict.text), "title": "Titre tapé",
            "body": typed,
        },
    )  # fmt: skip
    assert again.status_code == 303
    entry, _ = await stored(app, entry_id)
    assert entry.body == typed and entry.version == 3

    stale_status = await web.post(
        f"/entrees/{entry_id}/statut",
        data={"csrf_token": csrf, "etag": shown_etag, "status": "in_progress"},
    )
    assert stale_status.status_code == 412
    assert "modifié cette entrée" in unescape(stale_status.text)
    entry, _ = await stored(app, entry_id)
    assert entry.status == "open"


async def test_bad_input_is_said_in_french_and_the_text_kept(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    web = await new_client()
    csrf = await browse_as(web, "paul")
    etag = etag_of((await web.get(f"/entrees/{entry_id}/corriger")).text)
    long_text = "mot " * 6000  # 24,000 characters: over the 20,000 allowed
    too_long = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={"csrf_token": csrf, "etag": etag, "title": "Titre", "body": long_text},
    )
    assert too_long.status_code == 422
    assert "au plus 20 000 caractères" in unescape(too_long.text)
    assert long_text.strip() in too_long.text
    no_title = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={"csrf_token": csrf, "etag": etag, "title": "  ", "body": "Texte gardé"},
    )
    assert no_title.status_code == 422 and "Texte gardé" in no_title.text
    no_etag = await web.post(
        f"/entrees/{entry_id}/corriger",
        data={"csrf_token": csrf, "title": "Titre", "body": "Sans version"},
    )
    assert no_etag.status_code == 428 and "Sans version" in no_etag.text
    unknown = await web.post(
        f"/entrees/{entry_id}/statut", data={"csrf_token": csrf, "etag": etag, "status": "done"}
    )
    assert unknown.status_code == 422
    assert "Choisissez un statut dans la liste." in unescape(unknown.text)
    entry, versions = await stored(app, entry_id)
    assert entry.version == 1 and len(versions) == 1
