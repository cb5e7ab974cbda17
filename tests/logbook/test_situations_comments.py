"""Situations with their timeline; comments with their own labels."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_group, officer

W = (Role.WATCH_OFFICER,)


async def test_situation_lifecycle_and_timeline(app: FastAPI, client: AsyncClient) -> None:
    chief = await officer(app, client, "chief", "CNCS", roles=W)
    np_reader = await officer(app, client, "np.reader", "SAMU", clearance="NP")
    created = await client.post(
        "/api/v1/situations",
        headers=chief,
        json={
            "title": "Crue de la Seine",
            "severity": "major",
            "label": {"level": "NP", "audience": []},
        },
    )
    assert created.status_code == 201
    situation = created.json()
    assert (
        await client.post("/api/v1/situations", json={"title": "x"}, headers=np_reader)
    ).status_code == 403
    open_ = {"label": {"level": "NP", "audience": []}, "situation_id": situation["id"]}
    secret = {"label": {"level": "DR", "audience": []}, "situation_id": situation["id"]}
    await client.post(
        "/api/v1/entries", json={**ENTRY, **open_, "title": "Quai inondé"}, headers=chief
    )
    await client.post(
        "/api/v1/entries", json={**ENTRY, **secret, "title": "Évacuation VIP"}, headers=chief
    )
    updated = await client.patch(
        f"/api/v1/situations/{situation['id']}",
        json={"status": "in_progress"},
        headers={**chief, "If-Match": created.headers["etag"]},
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2
    chief_timeline = (
        await client.get(f"/api/v1/situations/{situation['id']}/timeline", headers=chief)
    ).json()
    assert {i["entry"]["title"] for i in chief_timeline if i["kind"] == "entry"} == {
        "Quai inondé",
        "Évacuation VIP",
    }
    assert sum(i["kind"] == "situation_version" for i in chief_timeline) == 2
    reader_timeline = (
        await client.get(f"/api/v1/situations/{situation['id']}/timeline", headers=np_reader)
    ).json()
    assert {i["entry"]["title"] for i in reader_timeline if i["kind"] == "entry"} == {"Quai inondé"}
    listed = (await client.get("/api/v1/situations?status=in_progress", headers=np_reader)).json()
    assert [s["id"] for s in listed] == [situation["id"]]
    feed = (
        await client.get(f"/api/v1/entries?situation_id={situation['id']}", headers=np_reader)
    ).json()
    assert [e["title"] for e in feed["items"]] == ["Quai inondé"]


async def test_comments_follow_both_labels(app: FastAPI, client: AsyncClient) -> None:
    await make_group(app, "VIP")
    alice = await officer(app, client, "alice", "PP", groups=["VIP"])
    bob = await officer(app, client, "bob", "SAMU")
    entry = (
        await client.post(
            "/api/v1/entries",
            headers=alice,
            json={**ENTRY, "label": {"level": "NP", "audience": []}},
        )
    ).json()
    url = f"/api/v1/entries/{entry['id']}/comments"
    public = await client.post(url, json={"body": "Renforts en route"}, headers=alice)
    assert public.status_code == 201
    assert public.json()["label"]["level"] == "NP"  # the entry's label by default
    vip = await client.post(
        url,
        headers=alice,
        json={"body": "Cortège dévié", "label": {"level": "DR", "need_to_know": ["VIP"]}},
    )
    assert vip.status_code == 201
    assert [c["body"] for c in (await client.get(url, headers=alice)).json()] == [
        "Renforts en route",
        "Cortège dévié",
    ]
    assert [c["body"] for c in (await client.get(url, headers=bob)).json()] == ["Renforts en route"]
    empty = await client.post(url, json={"body": "   "}, headers=bob)
    assert empty.status_code == 422


async def test_comment_on_hidden_entry_is_404(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    bob = await officer(app, client, "bob", "SAMU")
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()  # PP only
    url = f"/api/v1/entries/{entry['id']}/comments"
    assert (await client.post(url, json={"body": "x"}, headers=bob)).status_code == 404
    assert (await client.get(url, headers=bob)).status_code == 404
