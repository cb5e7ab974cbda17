"""The inbox link refreshes itself (both engines): an authority's pages poll a small fragment
with the unread count, and that background poll does not keep an idle session alive."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.core.deps import SESSION_COOKIE
from hypervision.db import utcnow
from hypervision.identity.models import AuthSession, User
from tests.factories import tx
from tests.web.pages import browse_as
from tests.web.test_homes import cast, synthesis

POLL = 'hx-get="/boite/badge" hx-trigger="every 60s"'


async def last_seen(app: FastAPI, *, push_back: timedelta | None = None) -> object:
    async with tx(app) as session:
        row = await session.scalar(
            select(AuthSession)
            .join(User, User.id == AuthSession.user_id)
            .where(User.username == "helene", AuthSession.revoked_at.is_(None))
            .order_by(AuthSession.last_seen_at.desc())
        )
        assert row is not None
        if push_back is not None:
            row.last_seen_at = utcnow() - push_back
        return row.last_seen_at


async def test_the_inbox_count_is_polled_without_keeping_the_session_alive(
    app: FastAPI, client: AsyncClient
) -> None:
    await cast(app)
    await browse_as(client, "helene")
    page = await client.get("/main-courante")
    assert POLL in page.text and "badge-boite" not in page.text
    assert client.cookies.get(SESSION_COOKIE)

    await synthesis(client, steps=("submit", "validate", "send"))
    fragment = await client.get("/boite/badge", headers={"X-Hypervision-Background": "1"})
    assert fragment.status_code == 200
    assert re.fullmatch(
        r'Boîte de réception <span class="hv-badge" id="badge-boite">'
        r'<span class="fr-sr-only">[^<]+</span>1</span>\s*',
        fragment.text,
    ), fragment.text

    before = await last_seen(app, push_back=timedelta(minutes=5))
    await client.get("/boite/badge", headers={"X-Hypervision-Background": "1"})
    assert await last_seen(app) == before  # a background poll is no activity
    await client.get("/boite/badge")
    assert await last_seen(app) != before  # a person's request is


async def test_only_authorities_poll_their_inbox(app: FastAPI, client: AsyncClient) -> None:
    await cast(app)
    await browse_as(client, "olga")
    assert POLL not in (await client.get("/main-courante")).text
