"""Who can see a record: its label in words and how many people the policy lets read it; the
new-entry form proposes the sharing the officer's organisation sets (every organisation by
default), which administrators change through the API."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import admin_headers, make_group, make_org, make_user, sign_in
from tests.web.pages import browse_as

HX = {"HX-Request": "true"}


def checked(page: str, input_id: str) -> bool:
    tag = re.search(rf'<input[^>]*id="{input_id}"[^>]*>', page)
    assert tag, f"no #{input_id}"
    return " checked" in tag.group(0)


async def test_label_in_words_and_number_of_readers(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_org(app, "DGSI", "MININT")
    await make_org(app, "SAMU")
    await make_group(app, "RENS")
    await make_user(app, "agent", "DGSI", clearance="DR", groups=["RENS"])
    await make_user(
        app, "chef", "MININT", roles=[Role.WATCH_OFFICER], clearance="DR", groups=["RENS"]
    )
    await make_user(app, "other", "DGSI", clearance="DR")  # not in the group
    await make_user(app, "low", "DGSI", clearance="NP", groups=["RENS"])  # not cleared
    await make_user(app, "medic", "SAMU", clearance="DR", groups=["RENS"])  # not released to
    await make_user(
        app, "clerk", "DGSI", roles=[Role.ADMINISTRATOR], clearance="DR", groups=["RENS"]
    )
    label = {"level": "DR", "need_to_know": ["RENS"], "audience": ["MININT"]}
    body = {"title": "Renseignement", "category": "security", "severity": "info", "label": label}
    created = await client.post(
        "/api/v1/entries", json=body, headers=await sign_in(client, "agent")
    )
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]

    await browse_as(client, "agent")
    page = await client.get(f"/entrees/{entry_id}")
    assert f'hx-get="/entrees/{entry_id}/diffusion"' in page.text  # loaded with the page
    fragment = await client.get(f"/entrees/{entry_id}/diffusion", headers=HX)
    assert fragment.status_code == 200, fragment.text
    words = re.search(r'id="diffusion-libelle">(.*?)</p>', fragment.text, re.S)
    assert words is not None
    assert " ".join(words.group(1).split()) == (
        "Diffusion restreinte — groupe RENS — organismes : Organisation DGSI, Organisation MININT"
    )
    # agent and chef: cleared, in the group, under MININT, and in a role that reads
    assert "2 personnes peuvent la lire." in fragment.text

    public = {"level": "NP", "need_to_know": [], "audience": []}
    body = {**body, "title": "Pour tous", "label": public}
    created = await client.post(
        "/api/v1/entries", json=body, headers=await sign_in(client, "agent")
    )
    fragment = await client.get(f"/entrees/{created.json()['id']}/diffusion")  # no script: a page
    assert "Non protégé — tous les organismes" in " ".join(fragment.text.split())
    assert "5 personnes peuvent la lire." in fragment.text  # every account that reads
    assert "<footer" in fragment.text

    square = {
        "type": "Polygon",
        "coordinates": [[[2.3, 48.8], [2.31, 48.8], [2.31, 48.81], [2.3, 48.8]]],
    }
    zone = await client.post(
        "/api/v1/zones",
        json={"name": "Périmètre", "geometry": square, "label": label},
        headers=await sign_in(client, "chef"),  # zones are drawn by watch officers
    )
    assert zone.status_code == 201, zone.text
    fragment = await client.get(f"/carte/zones/{zone.json()['id']}/diffusion", headers=HX)
    assert "Diffusion restreinte — groupe RENS" in " ".join(fragment.text.split())
    assert "2 personnes peuvent la lire." in fragment.text

    client.cookies.clear()
    await browse_as(client, "medic")
    hidden = await client.get(f"/entrees/{entry_id}/diffusion", headers=HX)
    missing = await client.get(
        f"/entrees/{'0' * 8}-0000-4000-8000-{'0' * 12}/diffusion", headers=HX
    )
    assert hidden.status_code == missing.status_code == 404


async def test_new_entry_proposes_the_organisation_default_audience(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "PP")
    await make_org(app, "SAMU")
    await make_user(app, "hugo", "PP")
    admin = await admin_headers(app, client)
    await browse_as(client, "hugo")
    form = (await client.get("/main-courante/nouvelle")).text
    assert checked(form, "aud-all") and not checked(form, "aud-own")  # every organisation
    assert checked(form, "lvl-NP") and ">Non protégé<" in form
    assert 'type="checkbox" id="also-SAMU"' in form  # checkboxes, not a Ctrl+click list
    assert "<select" not in form.split('id="diffusion"')[1].split("</fieldset>")[0]

    officer = await sign_in(client, "hugo")
    refused = await client.patch(
        "/api/v1/organisations/PP", json={"default_audience": ["PP"]}, headers=officer
    )
    assert refused.status_code == 403
    unknown = await client.patch(
        "/api/v1/organisations/PP", json={"default_audience": ["NOPE"]}, headers=admin
    )
    assert unknown.status_code == 422 and "NOPE" in unknown.text
    changed = await client.patch(
        "/api/v1/organisations/PP", json={"default_audience": ["SAMU", "PP"]}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["default_audience"] == ["PP", "SAMU"]

    form = (await client.get("/main-courante/nouvelle")).text
    assert checked(form, "aud-own") and not checked(form, "aud-all")
    assert checked(form, "also-SAMU")
