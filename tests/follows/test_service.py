"""Following one entry (both engines): the badge counts the followed entries someone else
corrected, moved on or commented since the officer last looked, through the policy: a comment
they may not read does not count, nor an entry raised out of their reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.db import transaction
from hypervision.follows import service as follows
from hypervision.follows.schemas import FollowKind
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from tests.factories import ENTRY, make_org, make_user, sign_in, tx

NP_ALL = {"level": "NP", "need_to_know": [], "audience": []}


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_org(app, "SAMU")
    await make_user(app, "alice", "PREF", clearance="DR")
    await make_user(app, "bob", "SAMU", clearance="NP")


async def principal(app: FastAPI, username: str) -> Principal:
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return await build_principal(
            session=session, user=user, scopes=None, client=Client(address=None, request_id=None)
        )


@asynccontextmanager
async def as_person(app: FastAPI, person: Principal) -> AsyncIterator[AsyncSession]:
    """A transaction under ``person``'s identity (row-level security on PostgreSQL)."""
    async with transaction(app.state.sessions) as session:
        await rls.bind(session, app.state.settings, person)
        yield session


async def badge(app: FastAPI, person: Principal) -> int:
    assert person.user_id is not None
    async with as_person(app, person) as session:
        return await follows.unseen_count(
            session=session,
            settings=app.state.settings,
            actor=person,
            preference=await follows.preference(session, person.user_id),
            rows=await follows.follows(session, person.user_id),
        )


async def test_a_followed_entry_counts_what_others_do_to_it_that_the_reader_may_see(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    alice = await sign_in(client, "alice")
    made = await client.post("/api/v1/entries", json={**ENTRY, "label": NP_ALL}, headers=alice)
    assert made.status_code == 201, made.text
    entry_id = made.json()["id"]
    bob = await principal(app, "bob")
    async with as_person(app, bob) as session:
        await follows.follow(session=session, actor=bob, kind=FollowKind.ENTRY, target=entry_id)
    assert await badge(app, bob) == 0

    bob_headers = await sign_in(client, "bob")
    said = f"/api/v1/entries/{entry_id}/comments"
    own = await client.post(said, json={"body": "Vu."}, headers=bob_headers)
    assert own.status_code == 201, own.text
    assert await badge(app, bob) == 0  # his own comment
    secret = {"body": "Détail DR.", "label": {"level": "DR", "need_to_know": [], "audience": []}}
    assert (await client.post(said, json=secret, headers=alice)).status_code == 201
    assert await badge(app, bob) == 0  # a comment he may not read
    assert (await client.post(said, json={"body": "Levée."}, headers=alice)).status_code == 201
    assert await badge(app, bob) == 1

    async with as_person(app, bob) as session:
        seen, _, moments = await follows.notifications(
            session=session, settings=app.state.settings, actor=bob
        )
    assert [str(e.id) for e in seen] == [entry_id]
    assert moments[seen[0].id] > seen[0].recorded_at  # the news is the comment, not the entry
    assert await badge(app, bob) == 0  # looked at

    current = await client.get(f"/api/v1/entries/{entry_id}", headers=alice)
    moved = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"status": "in_progress"},
        headers={**alice, "If-Match": current.headers["etag"]},
    )
    assert moved.status_code == 200, moved.text
    assert await badge(app, bob) == 1  # a new version by someone else

    current = await client.get(f"/api/v1/entries/{entry_id}", headers=alice)
    raised = await client.post(
        f"/api/v1/entries/{entry_id}/label",
        json={"label": {"level": "DR", "need_to_know": [], "audience": []}},
        headers={**alice, "If-Match": current.headers["etag"]},
    )
    assert raised.status_code == 200, raised.text
    assert await badge(app, bob) == 0  # out of his reach: no trace
    async with as_person(app, bob) as session:
        rows = await follows.follows(session, bob.user_id)  # type: ignore[arg-type]
        named = await follows.followed_entries(
            session=session, settings=app.state.settings, actor=bob, rows=rows
        )
    assert [f.target for f in rows] == [entry_id] and named == []
