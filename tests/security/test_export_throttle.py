"""Bulk exports are throttled per user (SECURITY.md item 13), both engines: the map's GeoJSON
export and a synthesis's PDF share one budget per user (``export_max_per_window`` in
``export_window_seconds``); over it, 429 with ``Retry-After`` and the app's error shape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from pydantic import ValidationError
from sqlalchemy import select, update

from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.models import LoginThrottle
from hypervision.policy.roles import Role
from tests.conftest import make_settings
from tests.factories import ENTRY, make_org, make_user, sign_in, tx
from tests.web.pages import browse_as

LIMIT = 3
WINDOW = 600


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, database_url, export_max_per_window=LIMIT, export_window_seconds=WINDOW
    )


@pytest.fixture
async def people(app: FastAPI, client: AsyncClient) -> dict[str, dict[str, str]]:
    await make_org(app, "PREF")
    roles = (Role.WATCH_OFFICER,)
    await make_user(app, "alice", "PREF", roles=roles, clearance="DR")
    await make_user(app, "bob", "PREF", roles=roles, clearance="DR")
    alice, bob = await sign_in(client, "alice"), await sign_in(client, "bob")
    created = await client.post("/api/v1/entries", json=ENTRY, headers=alice)
    assert created.status_code == 201, created.text
    return {"alice": alice, "bob": bob}


async def synthesis_of(client: AsyncClient, headers: dict[str, str]) -> str:
    body = {"title": "Point de situation", "scope": {"hours": 24}}
    created = await client.post("/api/v1/syntheses", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def assert_throttled(response: Response, english: bool = False) -> int:
    assert response.status_code == 429, response.text
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= WINDOW + 1
    error = response.json()["error"]
    assert error["code"] == "export_throttled"
    assert error["retry_after"] == wait
    if english:
        assert error["message"].startswith("Too many exports: at most 3 in 10 min.")
    else:
        assert error["message"].startswith("Trop d'exports : au plus 3 en 10 min.")
    assert response.headers["cache-control"] == "no-store"
    return wait


async def test_geojson_export_is_throttled_per_user(
    app: FastAPI, client: AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    alice, bob = people["alice"], people["bob"]
    for _ in range(LIMIT):
        ok = await client.get("/api/v1/map/export", headers=alice)
        assert ok.status_code == 200, ok.text
        assert ok.json()["type"] == "FeatureCollection"
    assert_throttled(await client.get("/api/v1/map/export", headers=alice))
    english = await client.get("/api/v1/map/export", headers={**alice, "Accept-Language": "en"})
    assert_throttled(english, english=True)
    # Another user has a budget of their own; other (non-export) reads are not throttled.
    assert (await client.get("/api/v1/map/export", headers=bob)).status_code == 200
    assert (await client.get("/api/v1/entries", headers=alice)).status_code == 200


async def test_pdf_and_geojson_share_one_budget_and_the_window_ends(
    app: FastAPI, client: AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    alice = people["alice"]
    synthesis_id = await synthesis_of(client, alice)
    pdf = f"/api/v1/syntheses/{synthesis_id}/pdf"
    first = await client.get(pdf, headers=alice)
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    for _ in range(LIMIT - 1):
        assert (await client.get("/api/v1/map/export", headers=alice)).status_code == 200
    assert_throttled(await client.get(pdf, headers=alice))
    assert_throttled(await client.get("/api/v1/map/export", headers=alice))
    # The window ends: the budget is whole again.
    async with tx(app) as session:
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key.startswith("export:"))
            .values(window_started_at=utcnow() - timedelta(seconds=WINDOW + 1))
        )
    for _ in range(LIMIT):
        assert (await client.get(pdf, headers=alice)).status_code == 200
    assert_throttled(await client.get(pdf, headers=alice))


async def test_failed_exports_do_not_count_and_the_browser_shares_the_budget(
    app: FastAPI, client: AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    alice = people["alice"]
    for _ in range(LIMIT + 2):  # unknown synthesis: 404, rolled back with its count
        missing = await client.get(
            "/api/v1/syntheses/00000000-0000-4000-8000-000000000000/pdf", headers=alice
        )
        assert missing.status_code == 404
    for _ in range(LIMIT - 1):
        assert (await client.get("/api/v1/map/export", headers=alice)).status_code == 200
    await browse_as(client, "alice")  # the map page's export link: the session cookie
    assert (await client.get("/api/v1/map/export")).status_code == 200
    assert_throttled(await client.get("/api/v1/map/export"))
    async with tx(app) as session:
        keys = set(await session.scalars(select(LoginThrottle.key)))
    assert [key for key in keys if key.startswith("export:")] == [
        next(key for key in keys if key.startswith("export:"))
    ]  # one counter for the user, whatever the credentials


def test_the_limits_are_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite+aiosqlite:///x.db")
    assert settings.export_max_per_window == 30 and settings.export_window_seconds == 900
    with pytest.raises(ValidationError):
        make_settings(tmp_path, "sqlite+aiosqlite:///x.db", export_max_per_window=0)
