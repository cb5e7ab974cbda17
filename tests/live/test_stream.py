"""The live stream: cleared subscribers only, resume without gap or duplicate, revocation,
slow clients, heartbeats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.live.hub import Filters, Frame, Subscriber
from hypervision.logbook import entries
from hypervision.logbook.schemas import EntryCreate
from hypervision.policy.roles import Role
from hypervision.policy.rules import Subject
from tests.factories import ENTRY, admin_headers, officer, tx
from tests.live.server import Stream, open_stream, serve

PUBLIC = {"level": "NP", "audience": []}
SECRET = {"level": "DR", "audience": []}


def got(stream: Stream) -> set[str]:
    return {e.data["resource_id"] for e in stream.events if e.id}


async def test_delivery_to_cleared_subscribers_only(app: FastAPI, client: AsyncClient) -> None:
    author = await officer(app, client, "author", "PP", roles=(Role.WATCH_OFFICER,))
    dr = await officer(app, client, "dr.reader", "SAMU")
    np_ = await officer(app, client, "np.reader", "SAMU", clearance="NP")
    other = await officer(app, client, "other.org", "BSPP")
    async with (
        serve(app) as base,
        open_stream(base, dr) as s_dr,
        open_stream(base, np_) as s_np,
        open_stream(base, other) as s_other,
    ):
        public = (
            await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=author)
        ).json()
        secret = (
            await client.post("/api/v1/entries", json={**ENTRY, "label": SECRET}, headers=author)
        ).json()
        own = (await client.post("/api/v1/entries", json=ENTRY, headers=author)).json()  # PP only
        await client.post(
            f"/api/v1/entries/{secret['id']}/comments", json={"body": "x"}, headers=author
        )
        await s_dr.wait_for(lambda s: len(s.of("comment.create")) == 1)
        await s_np.wait_for(lambda s: len(s.of("entry.create")) == 1)
        await asyncio.sleep(0.3)
        # Frames went straight to the connections (docs/adr/0053), not through a woken task.
        writers = [s.direct for s in app.state.hub.subscribers]
        assert len(writers) == 3 and all(w is not None and w.written for w in writers)
    assert got(s_dr) == {
        public["id"],
        secret["id"],
        s_dr.of("comment.create")[0].data["resource_id"],
    }
    assert got(s_np) == {public["id"]}, [(e.event, e.data) for e in s_np.events]
    assert got(s_other) == got(s_dr)  # DR too, another organisation: not the PP-only entry
    assert own["id"] not in got(s_dr) | got(s_np) | got(s_other)
    assert all("title" not in e.data and "body" not in e.data for e in s_dr.events)


async def test_resume_without_gap_or_duplicate(app: FastAPI, client: AsyncClient) -> None:
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base:
        async with open_stream(base, reader) as first:
            for i in range(3):
                await client.post(
                    "/api/v1/entries",
                    json={**ENTRY, "title": f"a{i}", "label": PUBLIC},
                    headers=author,
                )
            await first.wait_for(lambda s: len(s.ids()) == 3)
        last = first.ids()[-1]
        hidden = {**ENTRY, "label": SECRET}
        for i in range(4):  # while disconnected: 4 visible, 2 hidden (NP reader below)
            await client.post(
                "/api/v1/entries", json={**ENTRY, "title": f"b{i}", "label": PUBLIC}, headers=author
            )
            if i % 2:
                await client.post("/api/v1/entries", json=hidden, headers=author)
        async with open_stream(base, reader, extra={"Last-Event-ID": str(last)}) as second:
            await client.post(
                "/api/v1/entries", json={**ENTRY, "title": "c", "label": PUBLIC}, headers=author
            )
            await second.wait_for(lambda s: len(s.ids()) == 7)  # 4 missed visible (+2 DR) + 1 new
            await asyncio.sleep(0.3)
    ids = second.ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert min(ids) > last
    assert len(ids) == 7  # the DR reader sees the 2 hidden ones too; nothing twice


async def test_np_reader_resumes_without_hidden_events(app: FastAPI, client: AsyncClient) -> None:
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU", clearance="NP")
    async with serve(app) as base:
        for label in (PUBLIC, SECRET, PUBLIC, SECRET):
            await client.post("/api/v1/entries", json={**ENTRY, "label": label}, headers=author)
        async with open_stream(base, reader, query="?since=0") as stream:
            await stream.wait_for(lambda s: len(s.ids()) == 2)
            await asyncio.sleep(0.3)
    assert len(stream.ids()) == 2


async def test_revocation_closes_open_streams(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    reader = await officer(app, client, "reader", "SAMU")
    users = (await client.get("/api/v1/users", headers=admin)).json()["items"]
    reader_id = next(u["id"] for u in users if u["username"] == "reader")
    async with serve(app) as base, open_stream(base, reader) as stream:
        lowered = await client.put(
            f"/api/v1/users/{reader_id}/clearance", json={"clearance": "NP"}, headers=admin
        )
        assert lowered.status_code == 200
        await stream.wait_for(lambda s: bool(s.of("revoked")), timeout=5)
        await asyncio.wait_for(stream.ended.wait(), 5)


async def test_sign_out_closes_that_sessions_stream(app: FastAPI, client: AsyncClient) -> None:
    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base, open_stream(base, reader) as stream:
        assert (await client.post("/api/v1/auth/logout", headers=reader)).status_code == 204
        await stream.wait_for(lambda s: bool(s.of("revoked")), timeout=5)


async def test_a_slow_client_gets_resync_and_is_closed(app: FastAPI, client: AsyncClient) -> None:
    # The rule itself: a full queue closes the subscriber instead of growing.
    principal = Principal(
        user_id=None,
        username="x",
        organisation_id=None,
        organisation_ancestry=(),
        clearance="DR",
        roles=frozenset(),
        groups=frozenset(),
    )
    sub = Subscriber(principal, Subject.of(app.state.settings, principal), Filters(), limit=2)
    for i in range(1, 4):
        sub.push(Frame((0, i), f"id: {i}\n\n".encode()))
    assert sub.closed == "resync" and not sub.frames
    # Through the server: a client that stops reading. Its connection's transport asks to
    # pause (as uvicorn's flow control does when the socket's buffers are full); frames then
    # queue, and a full queue ends the stream with ``resync`` once the client reads again.
    app.state.settings = app.state.settings.model_copy(update={"live_queue_size": 2})
    app.state.hub.settings = app.state.settings
    await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base, open_stream(base, reader) as stream:
        (server_side,) = app.state.hub.subscribers
        for _ in range(100):
            if server_side.direct is not None:
                break
            await asyncio.sleep(0.02)
        writer = server_side.direct
        assert writer is not None
        writer.flow.pause_writing()
        async with tx(app) as session:  # five entries, one commit: one burst
            user = await session.scalar(select(User).where(User.username == "author"))
            assert user is not None
            actor = await build_principal(
                session=session,
                user=user,
                scopes=None,
                client=Client(address=None, request_id=None),
            )
            for _ in range(5):
                await entries.create_entry(
                    session=session,
                    settings=app.state.settings,
                    actor=actor,
                    data=EntryCreate.model_validate({**ENTRY, "label": PUBLIC}),
                )
        for _ in range(250):
            if server_side.closed:
                break
            await asyncio.sleep(0.02)
        assert server_side.closed == "resync" and not writer.written
        writer.flow.resume_writing()
        await stream.wait_for(lambda s: bool(s.of("resync")), timeout=5)
        await asyncio.wait_for(stream.ended.wait(), 5)
    # What was sent before the resync is where the client resumes from: in order, no gap.
    sent = stream.ids()
    assert len(sent) < 5 and sent == sorted(sent), sent


async def test_heartbeats_keep_the_stream_open(app: FastAPI, client: AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"live_heartbeat_seconds": 0.1})
    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base, open_stream(base, reader) as stream:
        await stream.wait_for(lambda s: s.pings >= 2, timeout=5)


async def test_a_space_page_opens_its_stream(app: FastAPI, client: AsyncClient) -> None:
    """A space's page (app.js) asks for five topics: entry, comment, product, situation and
    space. The stream once took at most four and answered 422, so spaces never refreshed."""
    reader = await officer(app, client, "reader", "SAMU")
    query = "?topic=entry&topic=comment&topic=product&topic=situation&topic=space"
    async with serve(app) as base, open_stream(base, reader, query) as stream:
        assert stream.of("status")
    too_many = "?" + "&".join(["topic=entry"] * 17)
    response = await client.get(f"/api/v1/stream{too_many}", headers=reader)
    assert response.status_code == 422


async def test_bad_stream_requests(app: FastAPI, client: AsyncClient) -> None:
    reader = await officer(app, client, "reader", "SAMU")
    for query, headers in (
        ("?topic=gossip", {}),
        ("", {"Last-Event-ID": "abc"}),
        ("?since=-1", {}),
        ("?bbox=1,2", {}),
    ):
        response = await client.get(f"/api/v1/stream{query}", headers={**reader, **headers})
        assert response.status_code == 422, query
    assert (await client.get("/api/v1/stream")).status_code == 401


async def test_expired_sessions_lose_their_streams(app: FastAPI, client: AsyncClient) -> None:
    from datetime import timedelta

    from hypervision.identity.models import AuthSession

    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base, open_stream(base, reader) as stream:
        await app.state.hub.revalidate()
        assert not stream.of("revoked")  # still valid: kept
        async with tx(app) as session:
            row = await session.scalar(select(AuthSession))
            assert row is not None
            row.expires_at -= timedelta(days=1)  # the absolute time-out passed
        await app.state.hub.revalidate()
        await stream.wait_for(lambda s: bool(s.of("revoked")), timeout=5)


async def test_resume_during_a_delivery_misses_nothing(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that resumes while the hub is between planning a batch and sending it must get
    that batch from the outbox (found by review: it was lost)."""
    from hypervision.live import hub as hub_module

    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    real = hub_module.audit_delivery
    gate, entered, armed = asyncio.Event(), asyncio.Event(), [False]

    async def held(*args: Any, **kwargs: Any) -> None:
        if armed[0] and kwargs.get("principal") is None and len(args) < 5:
            armed[0] = False
            entered.set()
            await gate.wait()
        await real(*args, **kwargs)

    monkeypatch.setattr(hub_module, "audit_delivery", held)
    public = {**ENTRY, "label": PUBLIC}
    async with serve(app) as base, open_stream(base, reader) as first:
        await client.post("/api/v1/entries", json=public, headers=author)
        await first.wait_for(lambda s: len(s.ids()) == 1)
        last = first.ids()[-1]
        armed[0] = True
        await client.post("/api/v1/entries", json=public, headers=author)
        await asyncio.wait_for(entered.wait(), 5)  # the hub is mid-delivery
        async with open_stream(base, reader, extra={"Last-Event-ID": str(last)}) as second:
            gate.set()
            await first.wait_for(lambda s: len(s.ids()) == 2)
            await second.wait_for(lambda s: len(s.ids()) == 1)
            await asyncio.sleep(0.3)
    assert second.ids() == first.ids()[1:]
