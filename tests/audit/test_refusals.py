"""Refused reads leave a trace (SECURITY.md item 29): an id the reader may not see, or that
does not exist, answers like any unknown id and is recorded for the security officer."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_group, officer


async def test_probing_hidden_and_unknown_ids_is_audited(app: FastAPI, client: AsyncClient) -> None:
    await make_group(app, "RENS")
    writer = await officer(
        app, client, "writer", "DGSI", groups=["RENS"], roles=(Role.WATCH_OFFICER,)
    )
    prober = await officer(app, client, "prober", "SAMU", clearance="NP")
    auditor = await officer(app, client, "auditor", "CNCS", roles=(Role.SECURITY_OFFICER,))
    secret = {**ENTRY, "label": {"level": "DR", "need_to_know": ["RENS"]}}
    created = await client.post("/api/v1/entries", json=secret, headers=writer)
    assert created.status_code == 201, created.text
    hidden_id = created.json()["id"]
    situation = await client.post(
        "/api/v1/situations",
        json={"title": "Filature", "severity": "major", "label": secret["label"]},
        headers=writer,
    )
    assert situation.status_code == 201, situation.text
    unknown_id = str(uuid.uuid4())

    hidden = await client.get(f"/api/v1/entries/{hidden_id}", headers=prober)
    unknown = await client.get(f"/api/v1/entries/{unknown_id}", headers=prober)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()  # nothing in the answer tells them apart
    sit = await client.get(f"/api/v1/situations/{situation.json()['id']}", headers=prober)
    assert sit.status_code == 404
    page = await client.get(f"/api/v1/entries/{hidden_id}/versions", headers=prober)
    assert page.status_code == 404

    trail = await client.get(
        "/api/v1/audit/records", params={"actor_name": "prober", "limit": 500}, headers=auditor
    )
    assert trail.status_code == 200, trail.text
    refusals = [r for r in trail.json()["items"] if r["action"] == "refused:not_found"]
    seen = {(r["resource_type"], r["resource_ids"][0], r["decision"]) for r in refusals}
    assert ("entry", hidden_id, "denied") in seen
    assert ("entry", unknown_id, "not_found") in seen
    assert ("situation", situation.json()["id"], "denied") in seen
    assert sum(1 for r in refusals if r["resource_ids"] == [hidden_id]) == 2  # entry + versions
    assert all(r["actor_name"] == "prober" for r in refusals)

    by_id = await client.get(
        "/api/v1/audit/records",
        params={"resource_id": hidden_id, "decision": "denied"},
        headers=auditor,
    )
    assert by_id.status_code == 200
    assert {r["actor_name"] for r in by_id.json()["items"]} == {"prober"}
    missing = await client.get(
        "/api/v1/audit/records", params={"decision": "not_found"}, headers=auditor
    )
    assert [r["resource_ids"] for r in missing.json()["items"]] == [[unknown_id]]
