"""Administration through the API: organisations, groups, users, clearances, API tokens."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.identity.models import ApiToken, User
from hypervision.policy.roles import Role
from tests.factories import (
    PASSWORD,
    admin_headers,
    approve_rights,
    make_org,
    make_user,
    second_admin_headers,
    sign_in,
    tx,
)

USER_PASSWORD = "la Seine coule sous le pont"
USER: dict[str, object] = {
    "username": "jean.dupont",
    "full_name": "Jean Dupont",
    "organisation_code": "PP-DOPC",
    "roles": ["officer", "watch_officer"],
    "clearance": "DR",
    "groups": ["VIP"],
    "password": USER_PASSWORD,
}


async def _tree(client: AsyncClient, admin: dict[str, str]) -> None:
    for body in (
        {"code": "MININT", "name": "Ministère de l'Intérieur"},
        {"code": "MININT-PP", "name": "Préfecture de police", "parent_code": "MININT"},
        {"code": "PP-DOPC", "name": "DOPC", "parent_code": "MININT-PP"},
    ):
        response = await client.post("/api/v1/organisations", json=body, headers=admin)
        assert response.status_code == 201, response.text
    assert (
        await client.post("/api/v1/groups", json={"code": "VIP", "name": "VIP"}, headers=admin)
    ).status_code == 201


async def test_admin_builds_the_tree_and_a_user(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await _tree(client, admin)
    orgs = {o["code"]: o for o in (await client.get("/api/v1/organisations", headers=admin)).json()}
    assert orgs["PP-DOPC"]["parent_id"] == orgs["MININT-PP"]["id"]
    created = await client.post("/api/v1/users", json=USER, headers=admin)
    assert created.status_code == 201, created.text
    assert "password" not in created.json() and "password_hash" not in created.json()
    # The rights asked for apply once a second administrator approves them (ADR 0013).
    second = await second_admin_headers(app, client)
    await approve_rights(client, second, created.json()["rights_request"])
    body = (await client.get(f"/api/v1/users/{created.json()['id']}", headers=admin)).json()
    assert body["roles"] == ["officer", "watch_officer"]
    assert body["groups"] == ["VIP"]
    assert "password" not in body and "password_hash" not in body
    headers = await sign_in(client, "jean.dupont", USER_PASSWORD)
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    assert me["groups"] == ["VIP"] and me["clearance"] == "DR"


async def test_bad_user_input(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await _tree(client, admin)
    cases = [
        ({**USER, "clearance": "TS"}, 422, "clearance"),  # above the ceiling / unknown
        ({**USER, "organisation_code": "NOPE"}, 422, "organisation_code"),
        ({**USER, "groups": ["NOPE"]}, 422, "groups"),
        ({**USER, "roles": ["emperor"]}, 422, "roles.0"),
        ({**USER, "password": "password1"}, 422, "password"),
        ({**USER, "full_name": "x" * 201}, 422, "full_name"),
        ({**USER, "username": "Bad Name!"}, 422, "username"),
        ({**USER, "is_admin": True}, 422, "is_admin"),  # no mass assignment
    ]
    for body, status, field in cases:
        response = await client.post("/api/v1/users", json=body, headers=admin)
        assert response.status_code == status, (field, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field
    malformed = await client.post(
        "/api/v1/users", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1  # the admin only


async def test_duplicate_username_is_a_conflict(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await _tree(client, admin)
    assert (await client.post("/api/v1/users", json=USER, headers=admin)).status_code == 201
    again = await client.post("/api/v1/users", json=USER, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_only_administrators_administer(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_user(app, "watch", "MININT", roles=[Role.WATCH_OFFICER, Role.SECURITY_OFFICER])
    headers = await sign_in(client, "watch")
    for method, url, body in (
        ("POST", "/api/v1/users", USER),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/organisations", {"code": "X1", "name": "X"}),
        ("POST", "/api/v1/api-tokens", {"name": "n", "username": "watch", "scopes": ["read"]}),
    ):
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "forbidden"


async def test_lowered_clearance_applies_to_the_next_request(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    user = await make_user(app, "alice", "MININT", clearance="DR")
    headers = await sign_in(client, "alice")
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["clearance"] == "DR"
    lowered = await client.put(
        f"/api/v1/users/{user.id}/clearance", json={"clearance": "NP"}, headers=admin
    )
    assert lowered.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["clearance"] == "NP"
    above = await client.put(
        f"/api/v1/users/{user.id}/clearance", json={"clearance": "SD"}, headers=admin
    )
    assert above.status_code == 422


async def test_disabling_ends_sessions_and_tokens(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    user = await make_user(app, "alice", "MININT")
    headers = await sign_in(client, "alice")
    disabled = await client.post(f"/api/v1/users/{user.id}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    again = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": PASSWORD}
    )
    assert again.status_code == 401
    asked = await client.post(f"/api/v1/users/{user.id}/enable", headers=admin)
    assert asked.status_code == 202  # enabling gives rights back: four eyes (ADR 0013)
    await approve_rights(client, await second_admin_headers(app, client), asked.json())
    enabled = await client.get(f"/api/v1/users/{user.id}", headers=admin)
    assert enabled.json()["is_active"] is True
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401  # still ended
    await sign_in(client, "alice")


async def test_update_roles_and_groups(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await _tree(client, admin)
    second = await second_admin_headers(app, client)
    user = (await client.post("/api/v1/users", json=USER, headers=admin)).json()
    await approve_rights(client, second, user["rights_request"])
    patched = await client.patch(
        f"/api/v1/users/{user['id']}", json={"roles": ["authority"], "groups": []}, headers=admin
    )
    # The removals applied at once; the added role waits for the second administrator.
    assert patched.status_code == 202
    assert patched.json()["target"]["roles"] == ["authority"]
    assert patched.json()["target"]["groups"] == []
    await approve_rights(client, second, patched.json())
    fetched = await client.get(f"/api/v1/users/{user['id']}", headers=admin)
    assert fetched.json()["roles"] == ["authority"] and fetched.json()["groups"] == []


async def test_user_list_is_paginated(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    for i in range(5):
        await make_user(app, f"user{i}", "MININT")
    first = (await client.get("/api/v1/users?limit=4", headers=admin)).json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    second = (
        await client.get(f"/api/v1/users?limit=4&after={first['next_cursor']}", headers=admin)
    ).json()
    names = [u["username"] for u in first["items"] + second["items"]]
    assert names == sorted(names) and len(set(names)) == 6 and second["next_cursor"] is None


async def test_api_tokens_are_scoped_hashed_expiring_revocable(
    app: FastAPI, client: AsyncClient
) -> None:
    admin = await admin_headers(app, client)
    await make_org(app, "BSPP")
    await make_user(
        app, "connector", "BSPP", password=None, machine=True, roles=[Role.ADMINISTRATOR]
    )
    created = await client.post(
        "/api/v1/api-tokens",
        json={
            "name": "SI BSPP",
            "username": "connector",
            "scopes": ["read"],
            "expires_in_days": 30,
        },
        headers=admin,
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("hvt_")
    headers = {"Authorization": f"Bearer {token}"}
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    assert me["scopes"] == ["read"]
    # administrator role but no admin scope: refused
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
    async with tx(app) as session:
        row = await session.scalar(select(ApiToken))
        assert row is not None and token not in (row.token_hash, row.prefix)
        row.expires_at = row.created_at  # expire it
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    second = (
        await client.post(
            "/api/v1/api-tokens",
            json={"name": "2", "username": "connector", "scopes": ["read"]},
            headers=admin,
        )
    ).json()
    second_headers = {"Authorization": f"Bearer {second['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=second_headers)).status_code == 200
    revoked = await client.delete(f"/api/v1/api-tokens/{second['id']}", headers=admin)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=second_headers)).status_code == 401
    listed = (await client.get("/api/v1/api-tokens", headers=admin)).json()
    assert {t["name"] for t in listed} == {"SI BSPP", "2"} and all("token" not in t for t in listed)


async def test_machine_accounts_cannot_sign_in_with_password(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "BSPP")
    await make_user(app, "connector", "BSPP", machine=True)
    response = await client.post(
        "/api/v1/auth/token", data={"username": "connector", "password": PASSWORD}
    )
    assert response.status_code == 401


async def test_token_lifetime_is_bounded(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    body = {"name": "n", "username": "root.admin", "scopes": ["read"], "expires_in_days": 5000}
    assert (await client.post("/api/v1/api-tokens", json=body, headers=admin)).status_code == 422
    unknown = {**body, "expires_in_days": 10, "scopes": ["everything"]}
    assert (await client.post("/api/v1/api-tokens", json=unknown, headers=admin)).status_code == 422
