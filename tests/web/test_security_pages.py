"""The security console's pages (docs/adr/0039): security officers only; the trail with its
filters, who saw a record, a person's activity, revoking from the page."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.identity.models import AuthSession, User
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, sequenced, sign_in, tx
from tests.web.conftest import Browser
from tests.web.pages import browse_as, csrf_of


async def _cast(app: FastAPI) -> str:
    await make_org(app, "PP")
    await make_org(app, "SECU")
    bob = await make_user(app, "bob", "PP", clearance="DR")
    await make_user(app, "sophie", "SECU", roles=[Role.SECURITY_OFFICER], clearance="NP")
    return str(bob.id)


async def test_pages_refused_to_everyone_else(
    app: FastAPI, client: AsyncClient, new_client: Browser
) -> None:
    bob_id = await _cast(app)
    web = await new_client()
    await browse_as(web, "bob")
    for path in (
        "/securite",
        f"/securite/qui-a-vu?type=entry&id={bob_id}",
        f"/securite/personnes/{bob_id}",
    ):
        page = await web.get(path)
        assert page.status_code == 403, path
        assert "officiers de sécurité" in page.text
    home = await web.get("/main-courante")
    assert 'href="/securite"' not in home.text  # no console link for them
    anonymous = await new_client()
    assert (await anonymous.get("/securite")).status_code == 303


async def test_console_who_saw_and_activity(
    app: FastAPI, client: AsyncClient, new_client: Browser
) -> None:
    bob_id = await _cast(app)
    bob = await sign_in(client, "bob")
    secret = {**ENTRY, "title": "Très secret", "label": {"level": "DR", "audience": []}}
    entry = (await client.post("/api/v1/entries", json=secret, headers=bob)).json()
    await client.get(f"/api/v1/entries/{entry['id']}", headers=bob)
    await sequenced(app)
    web = await new_client()
    await browse_as(web, "sophie")

    console = await web.get("/securite")
    assert console.status_code == 200
    assert 'id="journal-direct"' in console.text and "/api/v1/stream/audit?" in console.text
    assert "Console de sécurité" in console.text and 'href="/securite"' in console.text
    assert "entry.read" in console.text and "Très secret" not in console.text
    filtered = await web.get("/securite", params={"personne": "bob", "decision": "allowed"})
    assert f"person={bob_id}" in filtered.text and "entry.create" in filtered.text
    unknown = await web.get("/securite", params={"personne": "nobody"})
    assert unknown.status_code == 200 and "Personne inconnue." in unknown.text
    bad = await web.get("/securite", params={"ressource": "not-an-id"})
    assert bad.status_code == 422

    readers = await web.get(f"/securite/qui-a-vu?type=entry&id={entry['id']}")
    assert readers.status_code == 200
    assert "entry.read" in readers.text and "bob" in readers.text
    assert "Très secret" not in readers.text  # NP and no reading role: the id only
    assert '<span id="titre-enregistrement">—</span>' in readers.text
    assert (await web.get("/securite/qui-a-vu?type=user&id=x")).status_code == 422

    person = await web.get(f"/securite/personnes/{bob_id}")
    assert person.status_code == 200
    assert 'data-kind="sign_in"' in person.text and 'data-kind="write"' in person.text
    assert "203.0.113" in person.text or "127.0.0.1" in person.text or "testclient" in person.text
    missing = await web.get("/securite/personnes/00000000-0000-4000-8000-000000000009")
    assert missing.status_code == 404

    revoked = await web.post(
        f"/securite/personnes/{bob_id}/revoquer", data={"csrf_token": csrf_of(person)}
    )
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/auth/me", headers=bob)).status_code == 401
    async with tx(app) as session:
        open_ = await session.scalar(
            select(AuthSession.id).where(
                AuthSession.user_id
                == (select(User.id).where(User.username == "bob").scalar_subquery()),
                AuthSession.revoked_at.is_(None),
            )
        )
    assert open_ is None
    after = await web.get(revoked.headers["location"])
    assert "Révoqué : 1 session(s)" in after.text
