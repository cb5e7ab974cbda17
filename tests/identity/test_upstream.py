"""Filtered upstream (issue 21, docs/adr/0038): an organisation's allowed networks and its
client-certificate requirement, on every sign-in path and on every authenticated request,
behind trusted proxies only; both engines."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.events.models import OutboxEvent
from hypervision.policy.roles import Role
from tests.conftest import make_settings
from tests.factories import PASSWORD, admin_headers, make_org, make_user, sequenced, sign_in, tx
from tests.identity.test_mfa import _enrol
from tests.identity.test_sign_in_code_step import CHALLENGE
from tests.web.pages import browse_as

TOKEN_URL = "/api/v1/auth/token"
REFUSED_FR = "Connexion refusée depuis cette adresse réseau."
CERT_HEADER = "X-SSL-Client-Verify"
INSIDE = "198.51.100.20"
OUTSIDE = "203.0.113.7"  # the test client's own address (tests.conftest)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url, client_cert_header=CERT_HEADER)


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    """A client whose socket peer is ``address``."""
    transport = ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def set_networks(
    client: AsyncClient, admin: dict[str, str], code: str, **changes: Any
) -> dict[str, Any]:
    answer = await client.patch(f"/api/v1/organisations/{code}", json=changes, headers=admin)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def records(app: FastAPI, action: str) -> list[AuditRecord]:
    await sequenced(app)
    async with tx(app) as session:
        found = await session.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
        )
        return list(found)


async def test_networks_are_checked_named_and_normalised(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    for wrong in (["10.0.0.1/8"], ["nonsense"], ["10.0.0.0/33"], ["2001:db8::/129"]):
        answer = await client.patch(
            "/api/v1/organisations/MININT",
            json={"allowed_networks": wrong},
            headers=admin | {"accept-language": "en"},
        )
        assert answer.status_code == 422, wrong
        error = answer.json()["error"]
        assert error["code"] == "validation_error"
        assert "allowed_networks" in error["fields"][0]["field"], error
        assert "CIDR" in error["fields"][0]["message"]
    body = await set_networks(
        client, admin, "MININT", allowed_networks=["2001:db8::/32", " 10.0.0.0/8", "192.0.2.7"]
    )
    assert body["allowed_networks"] == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    assert body["client_cert_required"] is False
    [update] = await records(app, "organisation.update")
    assert update.detail["allowed_networks"] == body["allowed_networks"]
    # Administrators and security officers read the rules; an officer's tree leaves them out.
    read = await client.get("/api/v1/organisations/MININT", headers=admin)
    assert read.status_code == 200 and read.json()["allowed_networks"] == body["allowed_networks"]
    unknown = await client.get("/api/v1/organisations/NOPE", headers=admin)
    assert unknown.status_code == 404
    async with client_at(app, "10.1.2.3") as inside:
        officer = await sign_in(inside, "alice")
        for code in ("MININT", "NOPE"):
            answer = await inside.get(f"/api/v1/organisations/{code}", headers=officer)
            assert answer.status_code == 403
        tree = (await inside.get("/api/v1/organisations", headers=officer)).json()
        assert all("allowed_networks" not in org for org in tree)
    await make_user(app, "sec", "ADMINS", roles=[Role.SECURITY_OFFICER])
    security = await sign_in(client, "sec")
    assert (await client.get("/api/v1/organisations/MININT", headers=security)).status_code == 200
    # Emptied: anywhere again.
    assert (await set_networks(client, admin, "MININT", allowed_networks=[]))[
        "allowed_networks"
    ] == []


async def test_token_sign_in_is_refused_outside_before_the_password(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    alice = await make_user(app, "alice", "MININT")
    await set_networks(
        client, admin, "MININT", allowed_networks=["198.51.100.0/24", "2001:db8::/32"]
    )
    # From outside: refused whatever the password, with the same clear answer.
    for password in (PASSWORD, "not the password"):
        refused = await client.post(TOKEN_URL, data={"username": "alice", "password": password})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == {"code": "network_refused", "message": REFUSED_FR}
    english = await client.post(
        TOKEN_URL,
        data={"username": "alice", "password": PASSWORD},
        headers={"accept-language": "en"},
    )
    assert english.json()["error"]["message"] == "Connection refused from this network address."
    audited = await records(app, "auth.network_refused")
    assert len(audited) == 3
    assert {r.decision for r in audited} == {"denied"}
    assert {r.client_address for r in audited} == {OUTSIDE}
    assert audited[0].actor_name == "alice" and audited[0].resource_ids == [str(alice.id)]
    assert audited[0].detail == {"reason": "network_refused", "certificate": False}
    assert await records(app, "auth.sign_in") != []  # the administrator's only
    assert all(r.actor_name == "root.admin" for r in await records(app, "auth.sign_in"))
    # Inside, IPv4 and IPv6 (and IPv4-mapped IPv6): let in; another IPv6 network: refused.
    for address, status in (
        (INSIDE, 200),
        ("2001:db8::5", 200),
        ("::ffff:198.51.100.9", 200),
        ("2001:db9::1", 403),
        ("198.51.101.1", 403),
    ):
        async with client_at(app, address) as http:
            answer = await http.post(TOKEN_URL, data={"username": "alice", "password": PASSWORD})
            assert answer.status_code == status, (address, answer.text)
    # An account of an organisation without ranges signs in from anywhere.
    await make_org(app, "MINARM")
    await make_user(app, "bob", "MINARM")
    assert (await sign_in(client, "bob"))["Authorization"].startswith("Bearer hvs_")


async def test_the_web_form_refuses_outside_and_lets_in_inside(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    await set_networks(client, admin, "MININT", allowed_networks=["198.51.100.0/24"])
    page = await client.post("/connexion", data={"username": "alice", "password": PASSWORD})
    assert page.status_code == 403
    assert REFUSED_FR in page.text
    assert "hv_session" not in client.cookies
    english = await client.post(
        "/connexion",
        data={"username": "alice", "password": PASSWORD},
        headers={"cookie": "hv_lang=en"},
    )
    assert "Connection refused from this network address." in english.text
    [first, _] = await records(app, "auth.network_refused")
    assert first.client_address == OUTSIDE and first.decision == "denied"
    async with client_at(app, INSIDE) as inside:
        await browse_as(inside, "alice")


async def test_existing_sessions_and_tokens_are_refused_once_the_ranges_change(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    await make_user(app, "robot", "MININT", machine=True, password=None)
    bearer = await sign_in(client, "alice")
    machine = await client.post(
        "/api/v1/api-tokens",
        json={"name": "flux", "username": "robot", "scopes": ["read"], "expires_in_days": 30},
        headers=admin,
    )
    assert machine.status_code == 201, machine.text
    robot = {"Authorization": f"Bearer {machine.json()['token']}"}
    async with client_at(app, OUTSIDE) as browser:
        await browse_as(browser, "alice")
        assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200
        assert (await client.get("/api/v1/entries", headers=robot)).status_code == 200
        await set_networks(client, admin, "MININT", allowed_networks=["198.51.100.0/24"])
        for headers in (bearer, robot):
            refused = await client.get("/api/v1/auth/me", headers=headers)
            assert refused.status_code == 403
            assert refused.json()["error"] == {"code": "network_refused", "message": REFUSED_FR}
        page = await browser.get("/aide")
        assert page.status_code == 403 and REFUSED_FR in page.text
    audited = await records(app, "refused:network_refused")
    assert [r.actor_name for r in audited] == ["alice", "robot", "alice"]
    async with tx(app) as session:  # their live streams were told to close (and reopen)
        closed = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "identity.revoke")
        )
        assert sorted(e.payload["reason"] for e in closed) == ["networks", "networks"]
    assert {r.client_address for r in audited} == {OUTSIDE}
    assert {r.decision for r in audited} == {"denied"}
    # The same credentials from inside the ranges: still valid (refused, not revoked).
    async with client_at(app, INSIDE) as inside:
        assert (await inside.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    # The administrator's own organisation has no ranges: unaffected.
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200


async def test_trusted_proxies_only_say_who_the_client_is(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    await set_networks(client, admin, "MININT", allowed_networks=["198.51.100.0/24"])
    form = {"username": "alice", "password": PASSWORD}
    # The loopback proxy (forwarded_allow_ips' default) relays a client inside: let in, and the
    # trail names the client, not the proxy.
    async with client_at(app, "127.0.0.1") as proxy:
        relayed = await proxy.post(TOKEN_URL, data=form, headers={"x-forwarded-for": INSIDE})
        assert relayed.status_code == 200, relayed.text
        token = {"Authorization": f"Bearer {relayed.json()['access_token']}"}
        outside = {"x-forwarded-for": "192.0.2.1"}
        refused = await proxy.post(TOKEN_URL, data=form, headers=outside)
        assert refused.status_code == 403
        # The token, relayed for the client inside, works; relayed for one outside, does not.
        inside = {"x-forwarded-for": INSIDE} | token
        assert (await proxy.get("/api/v1/auth/me", headers=inside)).status_code == 200
        assert (await proxy.get("/api/v1/auth/me", headers=outside | token)).status_code == 403
    [allowed] = [r for r in await records(app, "auth.sign_in") if r.actor_name == "alice"]
    assert allowed.client_address == INSIDE
    # Anybody else's X-Forwarded-For is nobody's word.
    forged = await client.post(TOKEN_URL, data=form, headers={"x-forwarded-for": INSIDE})
    assert forged.status_code == 403
    assert (await records(app, "auth.network_refused"))[-1].client_address == OUTSIDE


async def test_a_client_certificate_verified_by_the_ingress(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    body = await set_networks(client, admin, "MININT", client_cert_required=True)
    assert body["client_cert_required"] is True and body["allowed_networks"] == []
    form = {"username": "alice", "password": PASSWORD}
    relayed = {"x-forwarded-for": INSIDE}
    async with client_at(app, "127.0.0.1") as proxy:
        for headers in ({}, {CERT_HEADER: "NONE"}, {CERT_HEADER: "FAILED:expired"}):
            refused = await proxy.post(TOKEN_URL, data=form, headers=relayed | headers)
            assert refused.status_code == 403, headers
            error = refused.json()["error"]
            assert error["code"] == "client_certificate_required"
            assert "certificat client" in error["message"]
        verified = relayed | {CERT_HEADER: "SUCCESS"}
        assert (await proxy.post(TOKEN_URL, data=form, headers=verified)).status_code == 200
    # The same header from a peer that is no trusted proxy: ignored.
    forged = await client.post(TOKEN_URL, data=form, headers={CERT_HEADER: "SUCCESS"})
    assert forged.status_code == 403
    audited = await records(app, "auth.network_refused")
    assert len(audited) == 4
    assert {r.detail["reason"] for r in audited} == {"client_certificate_required"}
    assert audited[-1].client_address == OUTSIDE
    # Another organisation does not ask for one.
    await make_org(app, "MINARM")
    await make_user(app, "bob", "MINARM")
    await sign_in(client, "bob")


async def test_the_code_step_is_filtered_too(app: FastAPI, client: AsyncClient) -> None:
    """The password from inside, the code from outside (the challenge carried elsewhere):
    the code step checks the address again."""
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    async with client_at(app, INSIDE) as inside:
        totp, _, _ = await _enrol(inside, await sign_in(inside, "alice"))
        inside.cookies.clear()
        await set_networks(client, admin, "MININT", allowed_networks=["198.51.100.0/24"])
        page = await inside.post("/connexion", data={"username": "alice", "password": PASSWORD})
        assert page.status_code == 200 and 'id="otp"' in page.text
        found = CHALLENGE.search(page.text)
        assert found
    otp = totp.at(int(time.time()) + 30)
    refused = await client.post("/connexion/code", data={"challenge": found.group(1), "otp": otp})
    assert refused.status_code == 403 and REFUSED_FR in refused.text
    assert "hv_session" not in client.cookies
    [record] = await records(app, "auth.network_refused")
    assert record.client_address == OUTSIDE and record.actor_name == "alice"
