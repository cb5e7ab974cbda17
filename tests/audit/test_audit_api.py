"""Audit queries over the API: security officers only, ids and labels, never content."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, officer


async def test_security_officer_queries_the_trail(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    assert (await client.get(f"/api/v1/entries/{entry['id']}", headers=alice)).status_code == 200
    auditor = await officer(
        app, client, "sophie.audit", "SECU", clearance="NP", roles=(Role.SECURITY_OFFICER,)
    )

    named = await client.get(
        "/api/v1/audit/records", params={"resource_id": entry["id"]}, headers=auditor
    )
    assert named.status_code == 200, named.text
    actions = [r["action"] for r in named.json()["items"]]
    assert actions == ["entry.create", "entry.read"]
    assert all(r["actor_name"] == "alice" and r["labels"] for r in named.json()["items"])
    assert str(ENTRY["title"]) not in named.text and "Périmètre" not in named.text

    first = (await client.get("/api/v1/audit/records?limit=2", headers=auditor)).json()
    assert len(first["items"]) == 2 and first["next_after"] == first["items"][-1]["seq"]
    rest = await client.get(
        "/api/v1/audit/records", params={"after": first["next_after"]}, headers=auditor
    )
    seqs = [r["seq"] for r in first["items"] + rest.json()["items"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    denied = await client.get(
        "/api/v1/audit/records", params={"decision": "denied"}, headers=auditor
    )
    assert denied.status_code == 200
    # The auditor's own queries are on the trail too.
    mine = await client.get(
        "/api/v1/audit/records",
        params={"action": "audit.read", "actor_name": "sophie.audit"},
        headers=auditor,
    )
    assert len(mine.json()["items"]) == 4


async def test_everyone_else_is_refused(app: FastAPI, client: AsyncClient) -> None:
    for name, roles in (
        ("alice", (Role.OFFICER,)),
        ("claire", (Role.WATCH_OFFICER,)),
        ("admin", (Role.ADMINISTRATOR,)),
    ):
        headers = await officer(app, client, name, "PP", roles=roles)
        answer = await client.get("/api/v1/audit/records", headers=headers)
        assert answer.status_code == 403, (name, answer.text)
    assert (await client.get("/api/v1/audit/records")).status_code == 401


async def test_bad_queries_are_refused_clearly(app: FastAPI, client: AsyncClient) -> None:
    auditor = await officer(app, client, "sophie.audit", "SECU", roles=(Role.SECURITY_OFFICER,))
    for params in (
        {"since": "2026-11-28T10:00:00"},  # no time zone
        {"limit": "0"},
        {"after": "-1"},
        {"resource_id": "not-a-uuid"},
        {"decision": "maybe"},
    ):
        answer = await client.get("/api/v1/audit/records", params=params, headers=auditor)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["code"] == "validation_error"
