"""Helpers for the web app's tests: sign in through the form, read the CSRF token."""

from __future__ import annotations

import re

from httpx import AsyncClient, Response

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found and found.group(1), "no CSRF token on the page"
    return found.group(1)


async def browse_as(client: AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the sign-in form (the client keeps the cookie); returns the CSRF token."""
    response = await client.post(
        "/connexion", data={"username": username, "password": password, "suite": "/aide"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/aide"
    return csrf_of(await client.get("/aide"))
