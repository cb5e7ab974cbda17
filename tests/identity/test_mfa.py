"""TOTP enrolment and sign-in, recovery codes, enforcement per organisation (item 11)."""

from __future__ import annotations

import pyotp
from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import PASSWORD, make_org, make_user, sign_in

TOKEN_URL = "/api/v1/auth/token"


async def _enrol(client: AsyncClient, headers: dict[str, str]) -> tuple[pyotp.TOTP, list[str], str]:
    """Enrols; returns the authenticator, the recovery codes and the code used to confirm."""
    start = await client.post("/api/v1/auth/mfa/enrol", headers=headers)
    assert start.status_code == 200
    body = start.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Hypervision:")
    assert body["qr_svg"].startswith("<svg")
    totp = pyotp.TOTP(body["secret"])
    wrong = await client.post("/api/v1/auth/mfa/confirm", json={"otp": "000000"}, headers=headers)
    if totp.now() != "000000":
        assert wrong.status_code == 422
        assert wrong.json()["error"]["code"] == "invalid_otp"
    used = totp.now()
    confirm = await client.post("/api/v1/auth/mfa/confirm", json={"otp": used}, headers=headers)
    assert confirm.status_code == 200, confirm.text
    codes: list[str] = confirm.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes, used


async def test_enrol_then_sign_in_with_totp(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    totp, _, used = await _enrol(client, await sign_in(client, "alice"))
    missing = await client.post(TOKEN_URL, data={"username": "alice", "password": PASSWORD})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "mfa_required"
    # the code used to confirm the enrolment cannot be replayed
    replay = await client.post(
        TOKEN_URL, data={"username": "alice", "password": PASSWORD, "otp": used}
    )
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_otp"
    next_step = totp.at(int(__import__("time").time()) + 30)
    ok = await client.post(
        TOKEN_URL, data={"username": "alice", "password": PASSWORD, "otp": next_step}
    )
    assert ok.status_code == 200, ok.text


async def test_wrong_password_with_mfa_says_nothing_about_mfa(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    await _enrol(client, await sign_in(client, "alice"))
    response = await client.post(TOKEN_URL, data={"username": "alice", "password": "wrong-one"})
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_recovery_code_works_once(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    _, codes, _ = await _enrol(client, await sign_in(client, "alice"))
    form = {"username": "alice", "password": PASSWORD, "otp": codes[3].upper()}
    assert (await client.post(TOKEN_URL, data=form)).status_code == 200
    again = await client.post(TOKEN_URL, data=form)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_otp"


async def test_enrolment_twice_is_refused(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    headers = await sign_in(client, "alice")
    await _enrol(client, headers)
    assert (await client.post("/api/v1/auth/mfa/enrol", headers=headers)).status_code == 409


async def test_organisation_enforces_mfa(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT", mfa=True)
    await make_org(app, "MININT-CNCS", "MININT")  # inherits the parent's rule
    await make_user(app, "bob", "MININT-CNCS")
    response = await client.post(TOKEN_URL, data={"username": "bob", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["mfa_enrolment_required"] is True
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    blocked = await client.get("/api/v1/organisations", headers=headers)
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "mfa_enrolment_required"
    await _enrol(client, headers)
    assert (await client.get("/api/v1/organisations", headers=headers)).status_code == 200


async def test_mfa_for_every_dr_account(app: FastAPI, client: AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"mfa_required_for_dr": True})
    await make_org(app, "MININT")
    await make_user(app, "dr.user", "MININT", clearance="DR")
    await make_user(app, "np.user", "MININT", clearance="NP")
    dr = await client.post(TOKEN_URL, data={"username": "dr.user", "password": PASSWORD})
    np_ = await client.post(TOKEN_URL, data={"username": "np.user", "password": PASSWORD})
    assert dr.json()["mfa_enrolment_required"] is True
    assert np_.json()["mfa_enrolment_required"] is False


async def test_machine_tokens_cannot_enrol(app: FastAPI, client: AsyncClient) -> None:
    from tests.factories import admin_headers

    admin = await admin_headers(app, client)
    await make_org(app, "BSPP")
    await make_user(app, "connector", "BSPP", password=None, machine=True)
    created = await client.post(
        "/api/v1/api-tokens",
        json={"name": "feed", "username": "connector", "scopes": ["read"]},
        headers=admin,
    )
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await client.post("/api/v1/auth/mfa/enrol", headers=headers)).status_code == 403
