"""The web app over HTTP (both engines): sign-in, CSRF, feed, new entry, entry page, triage,
follows, views, marking. Browser behaviour (live insertion, maps, tour) is in tests/browser."""

from __future__ import annotations

import io
import re
import uuid
from html import unescape

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from PIL import Image
from sqlalchemy import func, select

from hypervision.audit.models import AuditRecord
from hypervision.identity.models import Organisation
from hypervision.logbook.models import Attachment, Entry
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, sign_in, tx
from tests.web.conftest import Browser
from tests.web.pages import browse_as


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_org(app, "SAMU")
    async with tx(app) as session:
        org = await session.scalar(select(Organisation).where(Organisation.code == "SAMU"))
        assert org is not None
        org.default_category = "health"
    await make_user(app, "alice", "PREF", clearance="DR")
    await make_user(app, "bob", "SAMU", clearance="NP")
    await make_user(app, "chef", "PREF", roles=[Role.WATCH_OFFICER], clearance="DR")


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


async def count(app: FastAPI, model: type[Entry] | type[Attachment]) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def api_entry(client: AsyncClient, username: str, **fields: object) -> dict[str, object]:
    headers = await sign_in(client, username)
    response = await client.post("/api/v1/entries", json={**ENTRY, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_pages_redirect_to_sign_in_and_back(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    response = await client.get("/main-courante?category=health")
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?suite=/main-courante%3Fcategory%3Dhealth"
    page = await client.get(response.headers["location"])
    assert (
        page.status_code == 200
        and 'name="suite" value="/main-courante?category=health"' in page.text
    )

    wrong = await client.post("/connexion", data={"username": "alice", "password": "nope-nope"})
    assert wrong.status_code == 401
    assert "Identifiant ou mot de passe incorrect" in wrong.text
    assert 'value="alice"' in wrong.text  # the username is kept, the password is not

    ok = await client.post(
        "/connexion",
        data={
            "username": "alice",
            "password": "correct horse battery staple",
            "suite": "//evil.example",
        },
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/main-courante"  # no open redirect
    assert "HttpOnly" in ok.headers["set-cookie"] and "SameSite=strict" in ok.headers["set-cookie"]
    feed = await client.get("/main-courante")
    assert feed.status_code == 200
    assert feed.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in feed.headers["content-security-policy"]


async def test_expired_session_redirects_htmx_too(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    client.cookies.set("hv_session", "not-a-session")
    plain = await client.get("/situations")
    assert plain.status_code == 303
    assert plain.headers["location"] == "/connexion?suite=/situations&expiree=1"
    htmx = await client.get(
        "/main-courante/suite",
        headers={"HX-Request": "true", "HX-Current-URL": "https://testserver/situations"},
    )
    assert htmx.status_code == 200
    assert htmx.headers["hx-redirect"].startswith("/connexion?suite=/situations")
    page = await client.get("/connexion?suite=/situations&expiree=1")
    assert "Votre session a pris fin" in page.text or "session has ended" in page.text


async def test_forms_refuse_a_missing_csrf_token(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    await browse_as(client, "alice")
    response = await client.post(
        "/main-courante/nouvelle", data={"title": "Sans jeton", "category": "security"}
    )
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert await count(app, Entry) == 0


async def test_new_entry_errors_are_shown_by_the_fields_and_nothing_is_stored(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    csrf = await browse_as(client, "alice")
    response = await client.post(
        "/main-courante/nouvelle",
        data={
            "csrf_token": csrf,
            "title": "",
            "category": "security",
            "body": "Texte à ne pas perdre",
            "lat": "91",
            "lon": "2.3",
        },
    )
    assert response.status_code == 422
    assert 'id="err-location"' in response.text
    assert "Texte à ne pas perdre" in response.text
    again = await client.post(
        "/main-courante/nouvelle",
        data={"csrf_token": csrf, "title": "", "category": "security", "body": "x"},
    )
    assert again.status_code == 422 and 'id="err-title"' in again.text
    refused = await client.post(
        "/main-courante/nouvelle",
        data={"csrf_token": csrf, "title": "Avec un exécutable", "category": "security"},
        files={"files": ("outil.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream")},
    )
    assert refused.status_code == 422 and 'id="err-files"' in refused.text
    assert 'value="Avec un exécutable"' in refused.text
    assert await count(app, Entry) == 0 and await count(app, Attachment) == 0


async def test_new_entry_with_a_photo_at_a_venue_once(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    csrf = await browse_as(client, "bob")
    form = await client.get("/main-courante/nouvelle")
    assert re.search(r'<option value="health" selected>', form.text)  # the organisation's default
    key = uuid.uuid4().hex
    data = {
        "csrf_token": csrf,
        "idempotency_key": key,
        "title": "Malaise en tribune",
        "category": "health",
        "severity": "major",
        "place": "Stade de France",
        "body": "Victime prise en charge.",
    }
    files = {"files": ("photo.png", png(), "image/png")}
    first = await client.post("/main-courante/nouvelle", data=data, files=files)
    assert first.status_code == 303, first.text
    entry_id = first.headers["location"].split("entree=")[1].split("&")[0]
    second = await client.post("/main-courante/nouvelle", data=data, files=files)
    assert second.status_code == 303
    assert entry_id in second.headers["location"]  # same form sent twice: one entry
    assert await count(app, Entry) == 1 and await count(app, Attachment) == 1
    async with tx(app) as session:
        entry = await session.get(Entry, uuid.UUID(entry_id))
        samu = await session.scalar(select(Organisation.id).where(Organisation.code == "SAMU"))
        assert entry is not None and entry.location == {
            "type": "Point",
            "coordinates": [2.3601, 48.9245],
        }
        assert entry.severity == "major" and entry.label_level == "NP"
        assert entry.audience == [str(samu)]  # safe default: the author's organisation only
    landing = await client.get(first.headers["location"])
    assert landing.status_code == 200
    assert f'id="e-{entry_id}"' in landing.text and "data-clear-draft" in landing.text
    assert "/api/v1/attachments/" in landing.text and 'id="entree"' in landing.text


async def test_live_cards_follow_the_policy_and_the_filters(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    dr = await api_entry(client, "alice", label={"level": "DR", "need_to_know": [], "audience": []})
    cleared, uncleared = await new_client(), await new_client()
    await browse_as(cleared, "chef")
    await browse_as(uncleared, "bob")
    card = await cleared.get(f"/main-courante/carte/{dr['id']}")
    assert card.status_code == 200 and 'data-marking="DIFFUSION RESTREINTE"' in card.text
    assert (
        await cleared.get(f"/main-courante/carte/{dr['id']}?category=health")
    ).status_code == 204
    hidden = await uncleared.get(f"/main-courante/carte/{dr['id']}")
    missing = await uncleared.get(f"/main-courante/carte/{uuid.uuid4()}")
    assert hidden.status_code == missing.status_code == 404
    page = await uncleared.get(f"/entrees/{dr['id']}")
    assert page.status_code == 404 and str(ENTRY["title"]) not in page.text
    assert "DIFFUSION RESTREINTE" not in (await uncleared.get("/main-courante")).text
    feed = await cleared.get("/main-courante")
    assert str(ENTRY["title"]) in feed.text
    assert re.search(r'id="marquage-haut" class="hv-marking" role', feed.text)  # shown
    async with tx(app) as session:
        reads = await session.scalars(select(AuditRecord).where(AuditRecord.action == "entry.read"))
        assert any(dr["id"] in (r.resource_ids or []) for r in reads)


async def test_feed_filters_views_and_unknown_values(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    await api_entry(client, "alice", title="Incident santé", category="health")
    await api_entry(client, "alice", title="Incident transport", category="transport")
    csrf = await browse_as(client, "alice")
    only = await client.get("/main-courante?category=health&severity=bogus")
    assert "Incident santé" in only.text and "Incident transport" not in only.text
    assert "bogus" in only.text  # reported as ignored, not a 500
    saved = await client.post(
        "/vues", data={"csrf_token": csrf, "name": "Santé", "query": "category=health&x=1"}
    )
    assert (
        saved.status_code == 303 and saved.headers["location"] == "/main-courante?category=health"
    )
    listed = await client.get("/main-courante")
    assert 'href="/main-courante?category=health">Santé</a>' in listed.text
    view_id = re.search(r'action="/vues/([0-9a-f-]+)/supprimer"', listed.text)
    assert view_id
    gone = await client.post(f"/vues/{view_id.group(1)}/supprimer", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert "Santé</a>" not in (await client.get("/main-courante")).text
    text = await client.get("/main-courante?q=transport")
    assert "Incident transport" in text.text and "Incident santé" not in text.text


async def test_entry_page_history_comments_and_triage(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry = await api_entry(client, "alice", body="Deux blessés légers sur place.")
    headers = await sign_in(client, "alice")
    current = await client.get(f"/api/v1/entries/{entry['id']}", headers=headers)
    patched = await client.patch(
        f"/api/v1/entries/{entry['id']}",
        json={"body": "Trois blessés légers sur place."},
        headers={**headers, "If-Match": current.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    officer = await new_client()
    csrf = await browse_as(officer, "alice")
    page = await officer.get(f"/entrees/{entry['id']}")
    assert "<del>Deux</del> <ins>Trois</ins>" in page.text
    assert 'id="valider"' not in page.text  # officers do not triage
    refused = await officer.post(
        f"/entrees/{entry['id']}/triage", data={"csrf_token": csrf, "action": "validate"}
    )
    assert refused.status_code == 403
    said = await officer.post(
        f"/entrees/{entry['id']}/commentaires", data={"csrf_token": csrf, "body": "Bien reçu"}
    )
    assert said.status_code == 303
    assert "Bien reçu" in (await officer.get(f"/entrees/{entry['id']}/commentaires")).text
    empty = await officer.post(
        f"/entrees/{entry['id']}/commentaires", data={"csrf_token": csrf, "body": "  "}
    )
    assert empty.status_code == 422

    chef = await new_client()
    chef_csrf = await browse_as(chef, "chef")
    chef_page = await chef.get(f"/entrees/{entry['id']}")
    etag = re.search(r'name="etag" value="([^"]+)"', chef_page.text)
    assert etag and 'id="valider"' in chef_page.text
    done = await chef.post(
        f"/entrees/{entry['id']}/triage",
        data={"csrf_token": chef_csrf, "action": "validate", "etag": unescape(etag.group(1))},
    )
    assert done.status_code == 303
    stale = await chef.post(
        f"/entrees/{entry['id']}/triage",
        data={
            "csrf_token": chef_csrf,
            "action": "severity",
            "severity": "critical",
            "etag": unescape(etag.group(1)),
        },
    )
    assert stale.status_code == 412  # changed meanwhile: not overwritten, said on the page
    assert "text/html" in stale.headers["content-type"]
    fresh = await chef.get(f"/entrees/{entry['id']}")
    assert "Validé" in fresh.text or "Validated" in fresh.text


async def test_following_counts_new_entries_then_marks_them_seen(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    reader = await new_client()
    csrf = await browse_as(reader, "chef")
    followed = await reader.post(
        "/suivis", data={"csrf_token": csrf, "kind": "category", "target": "health"}
    )
    assert followed.status_code == 303
    await api_entry(
        client,
        "alice",
        category="health",
        label={"level": "NP", "need_to_know": [], "audience": []},
    )
    await api_entry(client, "alice", category="transport")
    page = await reader.get("/aide")
    assert re.search(
        r'id="badge" class="hv-badge" aria-live="polite">'
        r'<span class="fr-sr-only">[^<]*</span>1</span>',
        page.text,
    )
    listing = await reader.get("/suivis")
    assert str(ENTRY["title"]) in listing.text
    assert 'id="badge" class="hv-badge" hidden' in (await reader.get("/aide")).text
    bad = await reader.post(
        "/suivis", data={"csrf_token": csrf, "kind": "category", "target": "nope"}
    )
    assert bad.status_code == 422
    stop = await reader.post(
        "/suivis", data={"csrf_token": csrf, "kind": "category", "target": "health", "stop": "1"}
    )
    assert stop.status_code == 303
    assert 'name="target" value="health"' not in (await reader.get("/suivis")).text


async def test_situations_search_and_help_pages(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    headers = await sign_in(client, "chef")
    situation = await client.post(
        "/api/v1/situations", json={"title": "Chaleur sur le Champ-de-Mars"}, headers=headers
    )
    assert situation.status_code == 201, situation.text
    sid = situation.json()["id"]
    await api_entry(client, "chef", title="Malaise vagal", situation_id=sid)
    await browse_as(client, "chef")
    listing = await client.get("/situations")
    assert "Chaleur sur le Champ-de-Mars" in listing.text
    page = await client.get(f"/situations/{sid}")
    assert page.status_code == 200 and "Malaise vagal" in page.text
    assert (await client.get(f"/situations/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/situations/not-a-uuid")).status_code == 404
    found = await client.get("/recherche?q=malaise")
    assert "<mark>Malaise</mark>" in found.text
    assert (await client.get("/aide")).status_code == 200


async def test_language_is_french_by_default_and_english_on_request(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    page = await client.get("/connexion")
    assert '<html lang="fr"' in page.text and page.headers["content-language"] == "fr"
    switched = await client.get("/langue/en?suite=/connexion")
    assert switched.status_code == 303
    english = await client.get("/connexion")
    assert '<html lang="en"' in english.text and "Sign in" in english.text
    csrf = await browse_as(client, "alice")
    saved = await client.post(
        "/langue", data={"csrf_token": csrf, "locale": "fr", "suite": "/aide"}
    )
    assert saved.status_code == 303
    client.cookies.delete("hv_lang")
    assert '<html lang="fr"' in (await client.get("/aide")).text  # kept in the preferences


async def test_sign_in_over_plain_http_says_the_cookie_did_not_come_back(
    app: FastAPI, people: None
) -> None:
    """Over http on an address other than loopback, the browser keeps the ``Secure`` session
    cookie to itself: the feed sends the officer back to the sign-in page, which now says why
    (it used to show the empty form again, silently)."""
    transport = ASGITransport(app=app, client=("192.0.2.10", 50002))
    async with AsyncClient(transport=transport, base_url="http://192.0.2.1:8000") as http:
        signed = await http.post(
            "/connexion", data={"username": "alice", "password": "correct horse battery staple"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/main-courante"
        assert "secure" in signed.headers["set-cookie"].lower()
        feed = await http.get("/main-courante")
        assert feed.status_code == 303 and feed.headers["location"].startswith("/connexion")
        page = await http.get(feed.headers["location"])
        assert page.status_code == 200
        text = unescape(page.text)
        assert 'id="cookie-lost"' in page.text
        assert "n'a pas renvoyé le cookie de session" in text
        assert "HTTPS" in text and "HYPERVISION_COOKIE_SECURE" in text
        await http.get("/langue/en?suite=/connexion")
        english = unescape((await http.get("/connexion")).text)
        assert "did not send the session cookie back" in english
    # over https the cookie comes back: no such message, and none after signing out
    async with AsyncClient(transport=transport, base_url="https://testserver") as https:
        csrf = await browse_as(https, "alice", "correct horse battery staple")
        assert 'id="cookie-lost"' not in (await https.get("/connexion")).text
        out = await https.post("/deconnexion", headers={"x-csrf-token": csrf})
        assert out.status_code == 303
        assert 'id="cookie-lost"' not in (await https.get("/connexion")).text
