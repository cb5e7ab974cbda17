"""Watch officers' triage, and label changes with four eyes to lower."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, officer

W = (Role.WATCH_OFFICER,)


async def test_triage_actions_are_versions(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    chief = await officer(app, client, "chief", "CNCS", roles=W)
    shared = {**ENTRY, "label": {"level": "NP", "audience": []}}
    first = (await client.post("/api/v1/entries", json=shared, headers=alice)).json()
    second = (await client.post("/api/v1/entries", json=shared, headers=alice)).json()
    # officers cannot triage
    assert (
        await client.post(f"/api/v1/entries/{first['id']}/validate", headers=alice)
    ).status_code == 403
    ok = await client.post(f"/api/v1/entries/{first['id']}/validate", headers=chief)
    assert ok.status_code == 200 and ok.json()["validated_by"] == "chief"
    assert (
        await client.post(f"/api/v1/entries/{first['id']}/validate", headers=chief)
    ).status_code == 409
    sev = await client.post(
        f"/api/v1/entries/{first['id']}/severity", json={"severity": "critical"}, headers=chief
    )
    assert sev.json()["severity"] == "critical"
    dup = await client.post(
        f"/api/v1/entries/{second['id']}/duplicate",
        json={"duplicate_of": first["id"]},
        headers=chief,
    )
    assert dup.json()["duplicate_of_id"] == first["id"]
    self_dup = await client.post(
        f"/api/v1/entries/{first['id']}/duplicate",
        json={"duplicate_of": first["id"]},
        headers=chief,
    )
    assert self_dup.status_code == 422
    situation = (
        await client.post("/api/v1/situations", json={"title": "JO — cérémonie"}, headers=chief)
    ).json()
    linked = await client.post(
        f"/api/v1/entries/{first['id']}/situation",
        json={"situation_id": situation["id"]},
        headers=chief,
    )
    assert linked.json()["situation_id"] == situation["id"]
    stale = await client.post(
        f"/api/v1/entries/{first['id']}/severity",
        json={"severity": "info"},
        headers={**chief, "If-Match": '"stale"'},
    )
    assert stale.status_code == 412
    versions = (await client.get(f"/api/v1/entries/{first['id']}/versions", headers=chief)).json()
    assert [v["action"] for v in versions] == ["create", "validate", "severity", "situation"]
    assert versions[2]["changes"]["severity"] == {"from": "major", "to": "critical"}


async def test_raising_applies_lowering_needs_a_second_person(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP", roles=W)
    bob = await officer(app, client, "bob", "PP", roles=W)
    reader = await officer(app, client, "reader", "SAMU", clearance="NP")
    entry = (
        await client.post(
            "/api/v1/entries",
            headers=alice,
            json={**ENTRY, "label": {"level": "NP", "audience": []}},
        )
    ).json()
    url = f"/api/v1/entries/{entry['id']}"
    assert (await client.get(url, headers=reader)).status_code == 200
    raised = await client.post(f"{url}/label", json={"label": {"level": "DR"}}, headers=alice)
    assert raised.status_code == 200 and raised.json()["applied"] is True
    assert (await client.get(url, headers=reader)).status_code == 404  # at once
    lower = await client.post(
        f"{url}/label", json={"label": {"level": "NP"}, "reason": "erreur"}, headers=alice
    )
    assert lower.status_code == 202 and lower.json()["applied"] is False
    request_id = lower.json()["request"]["id"]
    assert (await client.get(url, headers=reader)).status_code == 404  # still hidden
    own = await client.post(f"/api/v1/label-requests/{request_id}/approve", headers=alice)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    pending = (await client.get("/api/v1/label-requests", headers=bob)).json()
    assert [p["id"] for p in pending] == [request_id]
    approved = await client.post(f"/api/v1/label-requests/{request_id}/approve", headers=bob)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert (await client.get(url, headers=reader)).status_code == 200
    again = await client.post(f"/api/v1/label-requests/{request_id}/approve", headers=bob)
    assert again.status_code == 404
    versions = (await client.get(f"{url}/versions", headers=bob)).json()
    assert [v["action"] for v in versions] == ["create", "label", "label"]
    # the NP reader sees only the versions whose label was NP
    reader_versions = (await client.get(f"{url}/versions", headers=reader)).json()
    assert [v["version"] for v in reader_versions] == [1, 3]


async def test_label_above_ceiling_is_refused(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP", roles=W)
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    response = await client.post(
        f"/api/v1/entries/{entry['id']}/label", json={"label": {"level": "SECRET"}}, headers=alice
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "label_refused"
