"""Four eyes on rights (SECURITY.md 30, ADR 0013): nobody widens their own rights, and widening
anyone's read access waits for a second administrator; narrowing applies at once."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.identity.models import User
from hypervision.policy.roles import Role
from tests.factories import (
    ENTRY,
    admin_headers,
    make_group,
    make_org,
    make_user,
    officer,
    second_admin_headers,
    sign_in,
    tx,
)

SECRET = {"level": "DR", "need_to_know": ["RENSEIGNEMENT"], "audience": []}


async def _secret_entry(app: FastAPI, client: AsyncClient) -> str:
    """A DR + RENSEIGNEMENT entry written by a cleared watch officer."""
    await make_group(app, "RENSEIGNEMENT")
    writer = await officer(
        app, client, "rita", "DRPP", groups=["RENSEIGNEMENT"], roles=(Role.WATCH_OFFICER,)
    )
    created = await client.post("/api/v1/entries", json={**ENTRY, "label": SECRET}, headers=writer)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _user_id(app: FastAPI, username: str) -> str:
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
    assert user is not None
    return str(user.id)


async def _actions(app: FastAPI) -> list[tuple[str, str, str]]:
    async with tx(app) as session:
        rows = await session.scalars(select(AuditRecord).order_by(AuditRecord.qid))
        return [(r.action, r.actor_name, r.decision) for r in rows]


async def _reads(client: AsyncClient, entry_id: str, headers: dict[str, str]) -> bool:
    response = await client.get(f"/api/v1/entries/{entry_id}", headers=headers)
    assert response.status_code in (200, 403, 404), response.text
    return response.status_code == 200


async def test_an_administrator_cannot_grant_himself_read_access(
    app: FastAPI, client: AsyncClient
) -> None:
    entry_id = await _secret_entry(app, client)
    admin = await admin_headers(app, client)
    own = await _user_id(app, "root.admin")
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", f"/api/v1/users/{own}", {"roles": ["administrator", "watch_officer"]}),
        ("PATCH", f"/api/v1/users/{own}", {"groups": ["RENSEIGNEMENT"]}),
        ("PUT", f"/api/v1/users/{own}/clearance", {"clearance": "NP"}),  # even narrowing
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=admin)
        assert response.status_code == 403, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "own_rights", error
        assert "vos propres droits" in error["message"]
    # Nothing changed, no request waits, the reads are still refused.
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()
    assert me["roles"] == ["administrator"] and me["groups"] == [] and me["clearance"] == "DR"
    queue = await client.get("/api/v1/rights-requests?status=pending", headers=admin)
    assert queue.status_code == 200 and queue.json() == []
    assert not await _reads(client, entry_id, admin)
    refusals = [a for a in await _actions(app) if a[0] == "refused:own_rights"]
    assert refusals == [("refused:own_rights", "root.admin", "denied")] * 3
    # A full name is not a right: an administrator may still correct his own.
    renamed = await client.patch(f"/api/v1/users/{own}", json={"full_name": "Root"}, headers=admin)
    assert renamed.status_code == 200, renamed.text


async def test_a_grant_applies_only_after_a_second_administrator_approves(
    app: FastAPI, client: AsyncClient
) -> None:
    entry_id = await _secret_entry(app, client)
    admin = await admin_headers(app, client)
    second = await second_admin_headers(app, client)
    await make_org(app, "PP")
    await make_user(app, "paul", "PP", roles=(), clearance="NP")
    paul_id = await _user_id(app, "paul")
    paul = await sign_in(client, "paul")
    asked = await client.patch(
        f"/api/v1/users/{paul_id}",
        json={"roles": ["watch_officer"], "groups": ["RENSEIGNEMENT"], "reason": "chef de salle"},
        headers=admin,
    )
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["requested_by"] == "root.admin"
    assert request["username"] == "paul" and request["reason"] == "chef de salle"
    assert request["added_roles"] == ["watch_officer"]
    assert request["added_groups"] == ["RENSEIGNEMENT"]
    raised = await client.put(
        f"/api/v1/users/{paul_id}/clearance", json={"clearance": "DR"}, headers=admin
    )
    assert raised.status_code == 202 and raised.json()["target"]["clearance"] == "DR"
    # Pending: nothing applied, the target still cannot read.
    fetched = (await client.get(f"/api/v1/users/{paul_id}", headers=admin)).json()
    assert fetched["roles"] == [] and fetched["groups"] == [] and fetched["clearance"] == "NP"
    assert not await _reads(client, entry_id, paul)
    queue = (await client.get("/api/v1/rights-requests?status=pending", headers=second)).json()
    assert [r["id"] for r in queue] == [request["id"], raised.json()["id"]]
    # The requester cannot approve his own request.
    own = await client.post(f"/api/v1/rights-requests/{request['id']}/approve", headers=admin)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    approved = await client.post(f"/api/v1/rights-requests/{request['id']}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == "admin.two"
    # The clearance request was made before the roles changed: it is stale now.
    stale = await client.post(
        f"/api/v1/rights-requests/{raised.json()['id']}/approve", headers=second
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_request"
    assert "ont changé" in stale.json()["error"]["message"]
    assert not await _reads(client, entry_id, paul)  # roles and group, but still NP
    again = await client.put(
        f"/api/v1/users/{paul_id}/clearance", json={"clearance": "DR"}, headers=admin
    )
    assert again.status_code == 202
    done = await client.post(
        f"/api/v1/rights-requests/{again.json()['id']}/approve", headers=second
    )
    assert done.status_code == 200, done.text
    assert await _reads(client, entry_id, paul)
    me = (await client.get("/api/v1/auth/me", headers=paul)).json()
    assert me["roles"] == ["watch_officer"] and me["groups"] == ["RENSEIGNEMENT"]
    assert me["clearance"] == "DR"
    # A decided request cannot be decided again.
    twice = await client.post(f"/api/v1/rights-requests/{request['id']}/approve", headers=second)
    assert twice.status_code == 404
    decided = (await client.get("/api/v1/rights-requests?status=approved", headers=admin)).json()
    assert {r["id"] for r in decided} == {request["id"], again.json()["id"]}
    actions = await _actions(app)
    assert ("user.rights_request", "root.admin", "allowed") in actions
    assert ("user.rights_approve", "admin.two", "allowed") in actions
    assert ("refused:four_eyes", "root.admin", "denied") in actions
    assert ("refused:stale_request", "admin.two", "denied") in actions
    assert ("rights_request.list", "admin.two", "allowed") in actions


async def test_the_target_cannot_approve_a_grant_to_himself(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    second = await second_admin_headers(app, client)
    target = await _user_id(app, "admin.two")
    asked = await client.patch(
        f"/api/v1/users/{target}",
        json={"roles": ["administrator", "authority"]},
        headers=admin,
    )
    assert asked.status_code == 202, asked.text
    url = f"/api/v1/rights-requests/{asked.json()['id']}/approve"
    refused = await client.post(url, headers=second)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    third = await second_admin_headers(app, client, "admin.three")
    assert (await client.post(url, headers=third)).status_code == 200
    me = (await client.get("/api/v1/auth/me", headers=second)).json()
    assert me["roles"] == ["administrator", "authority"]


async def test_a_rejected_request_changes_nothing(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    second = await second_admin_headers(app, client)
    await make_org(app, "PP")
    await make_user(app, "paul", "PP", clearance="NP")
    paul_id = await _user_id(app, "paul")
    asked = await client.put(
        f"/api/v1/users/{paul_id}/clearance", json={"clearance": "DR"}, headers=admin
    )
    assert asked.status_code == 202
    rejected = await client.post(
        f"/api/v1/rights-requests/{asked.json()['id']}/reject", headers=second
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    late = await client.post(
        f"/api/v1/rights-requests/{asked.json()['id']}/approve", headers=second
    )
    assert late.status_code == 404
    fetched = (await client.get(f"/api/v1/users/{paul_id}", headers=admin)).json()
    assert fetched["clearance"] == "NP"
    assert (await client.get("/api/v1/rights-requests", headers=second)).json() == []
    assert ("user.rights_reject", "admin.two", "allowed") in await _actions(app)


async def test_narrowing_applies_at_once(app: FastAPI, client: AsyncClient) -> None:
    entry_id = await _secret_entry(app, client)
    admin = await admin_headers(app, client)
    rita_id = await _user_id(app, "rita")
    rita = await sign_in(client, "rita")
    assert await _reads(client, entry_id, rita)
    narrowed = await client.patch(
        f"/api/v1/users/{rita_id}", json={"groups": [], "roles": ["officer"]}, headers=admin
    )
    assert narrowed.status_code == 202, narrowed.text  # the group goes now, the role waits
    assert narrowed.json()["added_roles"] == ["officer"] and narrowed.json()["added_groups"] == []
    assert not await _reads(client, entry_id, rita)
    fetched = (await client.get(f"/api/v1/users/{rita_id}", headers=admin)).json()
    assert fetched["roles"] == [] and fetched["groups"] == []
    lowered = await client.put(
        f"/api/v1/users/{rita_id}/clearance", json={"clearance": "NP"}, headers=admin
    )
    assert lowered.status_code == 200 and lowered.json()["clearance"] == "NP"


async def test_a_new_account_gets_its_read_rights_after_approval(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    second = await second_admin_headers(app, client)
    await make_group(app, "VIP")
    body = {
        "username": "alias.root",
        "full_name": "Un autre moi",
        "organisation_code": "ADMINS",
        "roles": ["watch_officer"],
        "clearance": "DR",
        "groups": ["VIP"],
        "password": "une phrase de passe assez longue",
    }
    created = await client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["roles"] == [] and user["clearance"] == "NP" and user["groups"] == []
    pending = user["rights_request"]
    assert pending["status"] == "pending"
    assert pending["target"] == {
        "roles": ["watch_officer"],
        "clearance": "DR",
        "groups": ["VIP"],
        "is_active": True,
    }
    approved = await client.post(f"/api/v1/rights-requests/{pending['id']}/approve", headers=second)
    assert approved.status_code == 200
    fetched = (await client.get(f"/api/v1/users/{user['id']}", headers=admin)).json()
    assert fetched["roles"] == ["watch_officer"] and fetched["clearance"] == "DR"
    # An account with nothing to widen is created as asked, with no request.
    plain = {**body, "username": "plain", "roles": [], "clearance": "NP", "groups": []}
    created = await client.post("/api/v1/users", json=plain, headers=admin)
    assert created.status_code == 201 and created.json()["rights_request"] is None


async def test_enabling_a_disabled_account_needs_a_second_administrator(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    second = await second_admin_headers(app, client)
    await make_org(app, "PP")
    await make_user(app, "paul", "PP")
    paul_id = await _user_id(app, "paul")
    assert (await client.post(f"/api/v1/users/{paul_id}/disable", headers=admin)).status_code == 200
    asked = await client.post(f"/api/v1/users/{paul_id}/enable", headers=admin)
    assert asked.status_code == 202 and asked.json()["target"]["is_active"] is True
    assert (await client.get(f"/api/v1/users/{paul_id}", headers=admin)).json()[
        "is_active"
    ] is False
    approved = await client.post(
        f"/api/v1/rights-requests/{asked.json()['id']}/approve", headers=second
    )
    assert approved.status_code == 200
    await sign_in(client, "paul")


async def test_the_queue_is_for_administrators_only(app: FastAPI, client: AsyncClient) -> None:
    headers = await officer(app, client, "paul", "PP", roles=(Role.WATCH_OFFICER,))
    assert (await client.get("/api/v1/rights-requests", headers=headers)).status_code == 403


async def test_no_token_for_another_person(app: FastAPI, client: AsyncClient) -> None:
    """A token acts as its account: an administrator holding one for a person's account would
    read as that person. Tokens are for machine accounts (and one's own)."""
    admin = await admin_headers(app, client)
    await officer(app, client, "rita", "DRPP", roles=(Role.WATCH_OFFICER,))
    refused = await client.post(
        "/api/v1/api-tokens",
        json={"name": "vol", "username": "rita", "scopes": ["read"]},
        headers=admin,
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "token_for_person"
    await make_user(app, "connector", "DRPP", password=None, machine=True)
    machine = await client.post(
        "/api/v1/api-tokens",
        json={"name": "flux", "username": "connector", "scopes": ["read"]},
        headers=admin,
    )
    assert machine.status_code == 201
