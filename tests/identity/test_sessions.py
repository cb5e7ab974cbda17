"""Browser sessions: cookie flags, CSRF, rotation, time-outs, revocation (SECURITY.md item 12)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.identity.models import AuthSession
from tests.factories import PASSWORD, make_org, make_user, tx

LOGIN = "/api/v1/auth/login"


async def _login(client: AsyncClient) -> str:
    response = await client.post(LOGIN, data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    csrf: str = response.json()["csrf_token"]
    return csrf


async def _setup(app: FastAPI) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")


async def test_cookie_session_and_csrf(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    csrf = await _login(client)
    assert (await client.get("/api/v1/auth/me")).json()["username"] == "alice"
    change = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    refused = await client.post("/api/v1/auth/password", json=change)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post("/api/v1/auth/password", json=change, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = await client.post("/api/v1/auth/password", json=change, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 204


async def test_cookie_is_not_a_bearer_token(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    await _login(client)
    cookie = client.cookies["hv_session"]
    client.cookies.clear()
    response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {cookie}"})
    assert response.status_code == 401


async def test_login_rotates_the_session(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    await _login(client)
    first = client.cookies["hv_session"]
    await _login(client)
    second = client.cookies["hv_session"]
    assert first != second
    client.cookies.clear()
    client.cookies.set("hv_session", first)
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    client.cookies.set("hv_session", second)
    assert (await client.get("/api/v1/auth/me")).status_code == 200


async def test_logout_revokes_on_the_server(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    csrf = await _login(client)
    cookie = client.cookies["hv_session"]
    out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    client.cookies.set("hv_session", cookie)  # a client that kept the cookie
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_bearer_logout(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    token = (
        await client.post("/api/v1/auth/token", data={"username": "alice", "password": PASSWORD})
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_idle_timeout(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    await _login(client)
    idle = app.state.settings.session_idle_minutes
    async with tx(app) as session:
        row = await session.scalar(select(AuthSession))
        assert row is not None
        row.last_seen_at -= timedelta(minutes=idle + 1)
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


async def test_activity_keeps_the_session_alive(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    await _login(client)
    idle = app.state.settings.session_idle_minutes
    async with tx(app) as session:
        row = await session.scalar(select(AuthSession))
        assert row is not None
        row.last_seen_at -= timedelta(minutes=idle - 1)
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    async with tx(app) as session:
        row = await session.scalar(select(AuthSession))
        assert row is not None
        row.last_seen_at -= timedelta(minutes=2)  # would have expired without the refresh
    assert (await client.get("/api/v1/auth/me")).status_code == 200


async def test_absolute_timeout(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    await _login(client)
    async with tx(app) as session:
        row = await session.scalar(select(AuthSession))
        assert row is not None
        row.expires_at -= timedelta(hours=app.state.settings.session_absolute_hours)
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_password_change_ends_other_sessions(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    other = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": PASSWORD}
    )
    other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}
    csrf = await _login(client)
    change = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    response = await client.post(
        "/api/v1/auth/password", json=change, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 204
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    client.cookies.clear()
    assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 401
    new = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": "another long passphrase"}
    )
    assert new.status_code == 200


async def test_password_change_rules(app: FastAPI, client: AsyncClient) -> None:
    await _setup(app)
    csrf = await _login(client)
    headers = {"X-CSRF-Token": csrf}
    for new, status in (("short", 422), ("password123", 422), ("alice-is-great!", 422)):
        body = {"current_password": PASSWORD, "new_password": new}
        response = await client.post("/api/v1/auth/password", json=body, headers=headers)
        assert response.status_code == status, new
        assert response.json()["error"]["fields"][0]["field"] == "new_password"
    wrong_current = {"current_password": "nope-nope", "new_password": "a good long passphrase"}
    assert (
        await client.post("/api/v1/auth/password", json=wrong_current, headers=headers)
    ).status_code == 403
