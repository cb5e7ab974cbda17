"""The web sign-in's second step (a code page after a right password): throttled like the
first, and a challenge is worth nothing without the right code."""

from __future__ import annotations

import re
import time

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.core.deps import SESSION_COOKIE
from tests.factories import PASSWORD, make_org, make_user, sign_in
from tests.identity.test_mfa import _enrol

CHALLENGE = re.compile(r'name="challenge" value="([^"]+)"')


async def _challenge(client: AsyncClient) -> str:
    page = await client.post("/connexion", data={"username": "alice", "password": PASSWORD})
    assert page.status_code == 200, page.text
    assert 'id="password"' not in page.text and 'id="otp"' in page.text
    found = CHALLENGE.search(page.text)
    assert found, page.text
    return found.group(1)


async def test_wrong_codes_are_throttled_then_even_the_right_one_waits(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    totp, _, _ = await _enrol(client, await sign_in(client, "alice"))
    client.cookies.clear()
    challenge = await _challenge(client)
    right = totp.at(int(time.time()) + 30)
    wrong = "000000" if right != "000000" else "111111"
    statuses = []
    for _ in range(app.state.settings.login_max_failures):
        answer = await client.post("/connexion/code", data={"challenge": challenge, "otp": wrong})
        statuses.append(answer.status_code)
        if answer.status_code == 401:
            assert "Code de vérification incorrect" in answer.text
    # The password step counts as an attempt too (given back only by a complete sign-in).
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    blocked = await client.post("/connexion/code", data={"challenge": challenge, "otp": right})
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers
    assert SESSION_COOKIE not in blocked.cookies


async def test_right_code_opens_the_session(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "alice", "MININT")
    totp, _, _ = await _enrol(client, await sign_in(client, "alice"))
    client.cookies.clear()
    challenge = await _challenge(client)
    answer = await client.post(
        "/connexion/code",
        data={"challenge": challenge, "otp": totp.at(int(time.time()) + 30), "suite": "/carte"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/carte"
    assert SESSION_COOKIE in answer.cookies
