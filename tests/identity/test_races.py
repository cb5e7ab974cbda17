"""Concurrency and hostile input on the sign-in path (found by review, kept as tests)."""

from __future__ import annotations

import asyncio

import pyotp
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.audit.models import AuditRecord
from tests.factories import PASSWORD, admin_headers, make_org, make_user, sign_in, tx

TOKEN_URL = "/api/v1/auth/token"


async def _with_mfa(app: FastAPI, client: AsyncClient) -> tuple[pyotp.TOTP, list[str]]:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    headers = await sign_in(client, "alice")
    totp = pyotp.TOTP(
        (await client.post("/api/v1/auth/mfa/enrol", headers=headers)).json()["secret"]
    )
    step = totp.timecode(__import__("datetime").datetime.now())
    confirm = await client.post(
        "/api/v1/auth/mfa/confirm", json={"otp": totp.generate_otp(step - 1)}, headers=headers
    )
    assert confirm.status_code == 200
    return totp, confirm.json()["recovery_codes"]


async def test_parallel_requests_cannot_replay_a_totp_code(
    app: FastAPI, client: AsyncClient
) -> None:
    totp, _ = await _with_mfa(app, client)
    form = {"username": "alice", "password": PASSWORD, "otp": totp.now()}
    answers = await asyncio.gather(*(client.post(TOKEN_URL, data=form) for _ in range(4)))
    assert sorted(a.status_code for a in answers).count(200) == 1


async def test_parallel_requests_cannot_reuse_a_recovery_code(
    app: FastAPI, client: AsyncClient
) -> None:
    _, codes = await _with_mfa(app, client)
    form = {"username": "alice", "password": PASSWORD, "otp": codes[0]}
    answers = await asyncio.gather(*(client.post(TOKEN_URL, data=form) for _ in range(4)))
    assert [a.status_code for a in answers].count(200) == 1


async def test_parallel_guesses_stay_within_the_limit(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    limit = app.state.settings.login_max_failures
    form = {"username": "alice", "password": "wrong-guess"}
    answers = await asyncio.gather(*(client.post(TOKEN_URL, data=form) for _ in range(limit * 3)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == limit
    assert statuses.count(429) == limit * 2


async def test_hostile_otp_and_username_are_refused_cleanly(
    app: FastAPI, client: AsyncClient
) -> None:
    await _with_mfa(app, client)
    superscript = await client.post(
        TOKEN_URL, data={"username": "alice", "password": PASSWORD, "otp": "¹²³⁴⁵⁶"}
    )
    assert superscript.status_code == 401
    assert superscript.json()["error"]["code"] == "invalid_otp"
    nul = await client.post(TOKEN_URL, data={"username": "ali\x00ce", "password": PASSWORD})
    assert nul.status_code == 401


async def test_nul_in_admin_input_is_not_a_server_error(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    response = await client.post(
        "/api/v1/organisations", json={"code": "X1", "name": "bad\x00name"}, headers=admin
    )
    assert response.status_code in (201, 422)  # SQLite stores it; PostgreSQL refuses it
    listing = await client.get("/api/v1/users?after=a%00b", headers=admin)
    assert listing.status_code in (200, 422)


async def test_refusals_are_audited(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "bob", "MININT")
    headers = await sign_in(client, "bob")
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
    async with tx(app) as session:
        row = await session.scalar(
            select(AuditRecord).where(
                AuditRecord.decision == "denied", AuditRecord.actor_name == "bob"
            )
        )
    assert row is not None
    assert row.action == "refused:forbidden"
    assert row.detail["route"] == "/api/v1/users"


async def test_admin_reads_are_audited(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    users = (await client.get("/api/v1/users", headers=admin)).json()["items"]
    await client.get(f"/api/v1/users/{users[0]['id']}", headers=admin)
    await client.get("/api/v1/api-tokens", headers=admin)
    async with tx(app) as session:
        actions = set(await session.scalars(select(AuditRecord.action)))
    assert {"user.list", "user.read", "api_token.list"} <= actions


async def test_cross_site_login_is_refused(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    form = {"username": "alice", "password": PASSWORD}
    cross = await client.post(
        "/api/v1/auth/login", data=form, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    other_origin = await client.post(
        "/api/v1/auth/login", data=form, headers={"Origin": "https://evil.example"}
    )
    assert other_origin.status_code == 403
    same = await client.post(
        "/api/v1/auth/login", data=form, headers={"Origin": "https://testserver"}
    )
    assert same.status_code == 200
    async with tx(app) as session:
        refused = await session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.decision == "denied")
        )
    assert refused == 0  # refused before any account was looked at: nothing to attribute


async def test_logout_with_an_api_token_says_how_to_revoke(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    created = await client.post(
        "/api/v1/api-tokens",
        json={"name": "n", "username": "root.admin", "scopes": ["read"]},
        headers=admin,
    )
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    response = await client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 422
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
