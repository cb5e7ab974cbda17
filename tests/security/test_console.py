"""The security console's API and live audit topic (issue 21, docs/adr/0039): security officers
only; who saw a record; a person's activity; revoking sessions closes live streams; titles only
under the policy."""

from __future__ import annotations

import asyncio
import time
import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.alerts.service import alert_label
from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord, AuditResource
from hypervision.core.errors import Forbidden
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.live import gates
from hypervision.live.audit_feed import AuditFilter
from hypervision.live.hub import Filters
from hypervision.policy.roles import Role, Scope
from tests.factories import ENTRY, officer, sequenced, tx
from tests.live.server import Event, Stream, open_stream, serve

PUBLIC = {"level": "NP", "audience": []}
SECRET = {"level": "DR", "audience": []}


async def _id(app: FastAPI, username: str) -> str:
    async with tx(app) as session:
        return str(await session.scalar(select(User.id).where(User.username == username)))


async def test_console_routes_are_for_security_officers_only(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP")
    admin = await officer(app, client, "adm", "PP", roles=(Role.ADMINISTRATOR,))
    alice_id = await _id(app, "alice")
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    routes = [
        ("GET", "/api/v1/audit/console"),
        ("GET", f"/api/v1/audit/resources/entry/{entry['id']}/readers"),
        ("GET", f"/api/v1/audit/people/{alice_id}/activity"),
        ("GET", f"/api/v1/audit/people/{alice_id}/credentials"),
        ("POST", f"/api/v1/audit/people/{alice_id}/revoke"),
        ("GET", "/api/v1/stream/audit"),
    ]
    for headers in (alice, admin):
        for method, path in routes:
            answer = await client.request(method, path, headers=headers, json={})
            assert answer.status_code == 403, (method, path, answer.text)
    for method, path in routes:
        assert (await client.request(method, path, json={})).status_code == 401
    # and the person is still signed in: nothing was revoked by the refused call
    assert (await client.get("/api/v1/auth/me", headers=alice)).status_code == 200


def _person(roles: set[str], scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        username="someone",
        organisation_id=None,
        organisation_ancestry=(),
        clearance="DR",
        roles=frozenset(roles),
        groups=frozenset(),
        scopes=scopes,
    )


async def test_one_gate_for_the_audit_stream_and_the_alerts(app: FastAPI) -> None:
    """Who may receive the audit topic is who may receive security alerts: the hub's gate
    decides both, and the hub refuses an audit stream to anyone else (not only its route)."""
    hub = app.state.hub
    assert alert_label(("NP", "DR"))["gate"] == dict(gates.SECURITY)
    people = {
        "security officer": _person({Role.SECURITY_OFFICER.value}),
        "security officer's audit token": _person(
            {Role.SECURITY_OFFICER.value}, frozenset({Scope.AUDIT})
        ),
        "security officer's read-only token": _person(
            {Role.SECURITY_OFFICER.value}, frozenset({Scope.READ})
        ),
        "administrator": _person({Role.ADMINISTRATOR.value}),
        "watch officer": _person({Role.WATCH_OFFICER.value}),
    }
    admitted = set()
    for name, person in people.items():
        try:
            sub = hub.subscribe(person, Filters(topics=frozenset(), audit=AuditFilter()))
        except Forbidden:
            continue
        admitted.add(name)
        assert sub in hub.audit.subscribers()
        hub.unsubscribe(sub)
    expected = {"security officer", "security officer's audit token"}
    assert admitted == expected
    assert {n for n, p in people.items() if gates.passes(p, alert_label(("NP",))["gate"])} == (
        expected
    )


async def test_who_saw_this_lists_reads_lists_and_deliveries(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP")
    bob = await officer(app, client, "bob", "SAMU")
    auditor = await officer(
        app, client, "sophie.audit", "SECU", clearance="NP", roles=(Role.SECURITY_OFFICER,)
    )
    entry = (
        await client.post("/api/v1/entries", json={**ENTRY, "label": SECRET}, headers=alice)
    ).json()
    other = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    for _ in range(3):
        assert (await client.get(f"/api/v1/entries/{entry['id']}", headers=bob)).status_code == 200
    assert (await client.get("/api/v1/entries", headers=bob)).status_code == 200
    await client.get(f"/api/v1/entries/{other['id']}", headers=bob)
    await sequenced(app)

    path = f"/api/v1/audit/resources/entry/{entry['id']}/readers"
    first = await client.get(path, params={"limit": 2}, headers=auditor)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["title"] == "—"  # the NP security officer may not read a DR entry's title
    assert str(ENTRY["title"]) not in first.text
    rest = await client.get(
        path, params={"before": body["next_before"], "limit": 50}, headers=auditor
    )
    items = body["items"] + rest.json()["items"]
    assert rest.json()["next_before"] is None
    seqs = [r["seq"] for r in items]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    seen = [(r["actor_name"], r["action"]) for r in items]
    assert seen.count(("bob", "entry.read")) == 3
    assert ("bob", "entry.list") in seen and ("alice", "entry.create") in seen
    assert all(entry["id"] in r["resource_ids"] and r["labels"] for r in items)
    assert all(r["decision"] == "allowed" for r in items)
    # the other entry's read is not among them; the index matches the trail exactly
    async with tx(app) as session:
        named = await session.scalar(
            select(func.count()).where(AuditResource.resource_id == entry["id"])
        )
    assert named == len(items)
    unknown = await client.get(
        "/api/v1/audit/resources/entry/00000000-0000-4000-8000-000000000000/readers",
        headers=auditor,
    )
    assert unknown.status_code == 200 and unknown.json()["items"] == []
    bad = await client.get(f"/api/v1/audit/resources/user/{entry['id']}/readers", headers=auditor)
    assert bad.status_code == 422


async def test_titles_only_under_the_policy(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    public = (
        await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
    ).json()
    secret = (
        await client.post(
            "/api/v1/entries", json={**ENTRY, "title": "Secret", "label": SECRET}, headers=alice
        )
    ).json()
    reading = await officer(
        app,
        client,
        "reading.auditor",
        "SECU",
        clearance="NP",
        roles=(Role.SECURITY_OFFICER, Role.OFFICER),
    )
    pure = await officer(
        app, client, "pure.auditor", "SECU", clearance="DR", roles=(Role.SECURITY_OFFICER,)
    )

    async def title(headers: dict[str, str], entry_id: str) -> str:
        answer = await client.get(
            f"/api/v1/audit/resources/entry/{entry_id}/readers", headers=headers
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["title"])

    assert await title(reading, public["id"]) == ENTRY["title"]  # cleared and a reader
    assert await title(reading, secret["id"]) == "—"  # NP: not the DR entry's
    assert await title(pure, public["id"]) == "—"  # no reading role: ids and labels only
    assert await title(pure, secret["id"]) == "—"
    await sequenced(app)
    async with tx(app) as session:  # the title shown is a read on the trail
        shown = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "entry.title"))
        )
    assert [(r.actor_name, r.resource_ids) for r in shown] == [("reading.auditor", [public["id"]])]


async def test_activity_timeline(app: FastAPI, client: AsyncClient) -> None:
    bob = await officer(app, client, "bob", "SAMU")
    bob_id = await _id(app, "bob")
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=bob)).json()
    await client.get(f"/api/v1/entries/{entry['id']}", headers=bob)
    missing = "00000000-0000-4000-8000-000000000001"
    assert (await client.get(f"/api/v1/entries/{missing}", headers=bob)).status_code == 404
    await client.post("/api/v1/auth/token", data={"username": "bob", "password": "wrong"})
    answer = await client.get(f"/api/v1/audit/people/{bob_id}/activity", headers=auditor)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    kinds = {(r["action"], r["kind"]) for r in items}
    assert ("entry.create", "write") in kinds and ("entry.read", "read") in kinds
    assert any(
        k == "refusal" and r["decision"] == "not_found" for r, k in ((r, r["kind"]) for r in items)
    )
    assert any(r["kind"] == "sign_in" for r in items), kinds
    assert all(r["actor_id"] == bob_id or bob_id in r["resource_ids"] for r in items)
    assert all("client_address" in r for r in items)
    seqs = [r["seq"] for r in items]
    assert seqs == sorted(seqs, reverse=True)
    creds = await client.get(f"/api/v1/audit/people/{bob_id}/credentials", headers=auditor)
    assert creds.status_code == 200 and len(creds.json()["sessions"]) == 1
    assert "token_hash" not in creds.text
    nobody = "00000000-0000-4000-8000-000000000002"
    assert (
        await client.get(f"/api/v1/audit/people/{nobody}/activity", headers=auditor)
    ).status_code == 404


async def test_live_audit_topic_for_security_officers_only_and_exact_resume(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP")
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    await sequenced(app)
    alice_id = await _id(app, "alice")
    async with serve(app) as base:
        refused = await client.get("/api/v1/stream/audit", headers=alice)
        assert refused.status_code == 403
        query = f"/audit?person={alice_id}"
        async with open_stream(base, auditor, query=query) as first:
            for _ in range(2):
                await client.get(f"/api/v1/entries/{entry['id']}", headers=alice)
            await sequenced(app)
            await first.wait_for(lambda s: len(s.of("audit")) >= 3)  # 2 reads + 1 auth.me
        got = first.of("audit")
        assert all(e.data["actor_id"] == alice_id for e in got)
        assert [e.data["action"] for e in got].count("entry.read") == 2
        assert all(str(ENTRY["title"]) not in str(e.data) for e in got)
        last = first.ids()[-1]
        for _ in range(3):  # while away
            await client.get(f"/api/v1/entries/{entry['id']}", headers=alice)
        await sequenced(app)
        async with open_stream(
            base, auditor, query=query, extra={"Last-Event-ID": str(last)}
        ) as second:
            await client.get(f"/api/v1/entries/{entry['id']}", headers=alice)
            await sequenced(app)
            await second.wait_for(
                lambda s: [e.data["action"] for e in s.of("audit")].count("entry.read") == 4
            )
            await asyncio.sleep(0.3)
    ids = second.ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids)) and min(ids) > last
    async with tx(app) as session:  # exactly alice's records after ``last``, none missed
        expected = list(
            await session.scalars(
                select(AuditRecord.seq)
                .where(AuditRecord.actor_id == uuid.UUID(alice_id), AuditRecord.seq > last)
                .order_by(AuditRecord.seq)
            )
        )
    assert ids == [s for s in expected if s is not None and s <= max(ids)]
    # the deliveries are on the trail, one record per batch, not streamed themselves
    assert all(e.data["action"] != "live.audit" for e in second.of("audit"))
    async with tx(app) as session:
        delivered = await session.scalar(
            select(func.count()).where(AuditRecord.action == "live.audit")
        )
    assert (delivered or 0) >= 2


async def test_revoking_sessions_closes_live_streams(app: FastAPI, client: AsyncClient) -> None:
    bob = await officer(app, client, "bob", "SAMU")
    bob_id = await _id(app, "bob")
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    async with serve(app) as base, open_stream(base, bob) as stream:
        answer = await client.post(
            f"/api/v1/audit/people/{bob_id}/revoke", json={}, headers=auditor
        )
        assert answer.status_code == 200 and answer.json()["ended"] == 1
        await stream.wait_for(lambda s: bool(s.of("revoked")))
    assert (await client.get("/api/v1/auth/me", headers=bob)).status_code == 401
    both = await client.post(
        f"/api/v1/audit/people/{bob_id}/revoke",
        json={"session_id": bob_id, "token_id": bob_id},
        headers=auditor,
    )
    assert both.status_code == 422
    await sequenced(app)
    async with tx(app) as session:
        revoked = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "credentials.revoke_all")
            )
        )
    assert [(r.actor_name, r.resource_ids, r.detail["ended"]) for r in revoked] == [
        ("sophie.audit", [bob_id], 1)
    ]


async def test_who_saw_this_lists_live_deliveries_and_exports(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP")
    bob = await officer(app, client, "bob", "SAMU")
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    async with serve(app) as base, open_stream(base, bob) as stream:
        entry = (
            await client.post("/api/v1/entries", json={**ENTRY, "label": PUBLIC}, headers=alice)
        ).json()
        await stream.wait_for(lambda s: len(s.of("entry.create")) == 1)
    exported = await client.get("/api/v1/map/export", headers=bob)
    assert exported.status_code == 200 and entry["id"] in exported.text
    answer = await client.get(
        f"/api/v1/audit/resources/entry/{entry['id']}/readers", headers=auditor
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    delivered = [r for r in items if r["action"] == "live.deliver"]
    # one record per delivery batch (SECURITY.md 19): the stream surface, the subscribers count
    assert delivered and delivered[0]["surface"] == "stream"
    assert delivered[0]["detail"]["subscribers"] >= 1
    assert any(r["actor_name"] == "bob" and r["action"] == "entry.list" for r in items)


def burst(stream: Stream) -> list[Event]:
    return [e for e in stream.of("audit") if e.data["action"] == "bench.burst"]


async def test_a_burst_reaches_the_console_in_order_none_lost(
    app: FastAPI, client: AsyncClient
) -> None:
    """1,000 records chained at once (two sequencer batches): the console gets each one once, in
    order, within seconds; the delivery leaves one record per batch."""
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    async with serve(app) as base, open_stream(base, auditor, query="/audit?surface=cli") as s:
        async with tx(app) as session:
            for n in range(1000):
                await audit.record(
                    session=session,
                    actor=None,
                    action="bench.burst",
                    surface="cli",
                    detail={"n": n},
                )
        started = time.perf_counter()
        await sequenced(app)
        await s.wait_for(lambda s: len(burst(s)) == 1000, timeout=30)
        lag = time.perf_counter() - started
    ids = [e.id or 0 for e in burst(s)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert ids[-1] - ids[0] == 999  # consecutive: nothing lost between them
    assert lag < 10, lag  # generous on a shared machine: measured in bench/, not here
    async with tx(app) as session:
        deliveries = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "live.audit"))
        )
    assert sum(r.detail["records"] for r in deliveries) == len(s.of("audit"))
    assert len(deliveries) <= 4  # batches of 500, not one record per record
