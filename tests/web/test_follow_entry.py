"""Following one entry from its page (both engines): the button, the follows page naming it,
the badge counting another person's comment on it, stopping, and refusals (an unknown or
hidden entry answers like a missing one)."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import ENTRY, make_org, make_user, sign_in
from tests.web.conftest import Browser
from tests.web.pages import browse_as

BADGE_ONE = re.compile(
    r'id="badge" class="hv-badge" aria-live="polite"><span class="fr-sr-only">[^<]*</span>1</span>'
)


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_org(app, "SAMU")
    await make_user(app, "alice", "PREF", clearance="DR")
    await make_user(app, "bob", "SAMU", clearance="NP")


async def test_an_officer_follows_an_entry_from_its_page(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    alice = await sign_in(client, "alice")
    shared = {**ENTRY, "label": {"level": "NP", "need_to_know": [], "audience": []}}
    entry_id = (await client.post("/api/v1/entries", json=shared, headers=alice)).json()["id"]
    hidden = {**ENTRY, "label": {"level": "DR", "need_to_know": [], "audience": []}}
    secret_id = (await client.post("/api/v1/entries", json=hidden, headers=alice)).json()["id"]

    bob = await new_client()
    csrf = await browse_as(bob, "bob")
    page = await bob.get(f"/entrees/{entry_id}")
    assert re.search(r'id="suivre-entree" aria-pressed="false">Suivre cette entrée<', page.text)
    form = {"csrf_token": csrf, "kind": "entry", "target": entry_id}
    followed = await bob.post("/suivis", data=form, headers={"Referer": f"/entrees/{entry_id}"})
    assert followed.status_code == 303
    page = await bob.get(f"/entrees/{entry_id}")
    assert re.search(r'id="suivre-entree" aria-pressed="true">Ne plus suivre<', page.text)
    listing = await bob.get("/suivis")
    assert f'Entrée : <a href="/entrees/{entry_id}">{ENTRY["title"]}</a>' in listing.text

    said = await client.post(
        f"/api/v1/entries/{entry_id}/comments", json={"body": "Levée du doute."}, headers=alice
    )
    assert said.status_code == 201
    assert BADGE_ONE.search((await bob.get("/aide")).text)
    listing = await bob.get("/suivis")  # looking marks it seen
    assert re.search(rf'hv-card--fresh[^"]*" id="e-{entry_id}"', listing.text)  # the comment
    assert 'id="badge" class="hv-badge" hidden' in (await bob.get("/aide")).text

    for target in (secret_id, str(uuid.uuid4())):  # hidden or missing: the same answer
        refused = await bob.post("/suivis", data={**form, "target": target})
        assert refused.status_code == 404
    assert (await bob.post("/suivis", data={**form, "target": "x"})).status_code == 422
    stop = await bob.post("/suivis", data={**form, "stop": "1"})
    assert stop.status_code == 303
    assert f'href="/entrees/{entry_id}"' not in (await bob.get("/suivis")).text
