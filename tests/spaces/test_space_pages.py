"""Spaces' pages: the list creates a space from a template, the page lays out its modules,
each module's fragment shows the reader's data (and its level for the page's marking), a
form module adds an entry with its preset fields, and bad files and titles are refused in
words without storing anything."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import ENTRY, make_org, make_user, sign_in
from tests.web.pages import browse_as, csrf_of

HX = {"HX-Request": "true"}


async def test_create_from_a_template_and_read_its_modules(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "PREF")
    await make_user(app, "chef", "PREF", clearance="DR")
    api = await sign_in(client, "chef")
    body = {**ENTRY, "category": "transport", "label": {"level": "DR", "audience": []}}
    assert (await client.post("/api/v1/entries", json=body, headers=api)).status_code == 201
    await browse_as(client, "chef")
    listing = await client.get("/espaces")
    assert listing.status_code == 200 and "Suivi transport" in listing.text
    made = await client.post(
        "/espaces",
        data={"title": "Transports", "template": "suivi-transport", "csrf_token": csrf_of(listing)},
    )
    assert made.status_code == 303
    url = made.headers["location"].split("?")[0].removesuffix("/modifier")
    page = await client.get(url)
    assert page.status_code == 200
    assert re.findall(r'data-module="([\w-]+)"', page.text) == [
        "perturbations", "courbe", "fil", "carte"
    ]  # fmt: skip
    feed = await client.get(f"{url}/modules/fil", headers=HX)
    assert feed.status_code == 200 and str(ENTRY["title"]) in feed.text
    assert 'data-rank="1"' in feed.text and "data-marking=" in feed.text
    figure = await client.get(f"{url}/modules/perturbations", headers=HX)
    assert 'class="hv-kpi__value">1<' in figure.text.replace(" ", "")
    assert (await client.get(f"{url}/modules/inconnu", headers=HX)).status_code == 404


async def test_a_form_module_adds_an_entry_and_bad_input_is_refused(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF")
    api = await sign_in(client, "agent")
    form = {"id": "signaler", "type": "form", "config": {"preset": {"category": "transport"}}}
    made = await client.post("/api/v1/spaces", json={"title": "PC", "modules": [form]}, headers=api)
    sid = made.json()["id"]
    await browse_as(client, "agent")
    token = csrf_of(await client.get(f"/espaces/{sid}"))
    url = f"/espaces/{sid}/modules/signaler/ajouter"
    refused = await client.post(url, data={"csrf_token": token}, headers=HX)
    assert refused.status_code == 422 and "Remplissez" in refused.text
    added = await client.post(
        url, data={"csrf_token": token, "title": "Bus arrêté", "category": "security"}, headers=HX
    )
    assert added.status_code == 200 and "Enregistré" in added.text
    entries = (await client.get("/api/v1/entries", headers=api)).json()["items"]
    assert [(e["title"], e["category"]) for e in entries] == [("Bus arrêté", "transport")]

    listing = await client.get("/espaces")
    bad = await client.post(
        "/espaces/importer",
        data={"csrf_token": csrf_of(listing)},
        files={"fichier": ("x.json", b"{not json", "application/json")},
    )
    assert bad.status_code == 422 and "pas un espace" in bad.text
    untitled = await client.post("/espaces", data={"title": " ", "csrf_token": csrf_of(listing)})
    assert untitled.status_code == 422 and "titre" in untitled.text
    assert (await client.get("/api/v1/spaces", headers=api)).json()["total"] == 1
