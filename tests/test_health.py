"""Probes, error shapes, headers, and behaviour when the database is down."""

from __future__ import annotations

import time
from pathlib import Path

from httpx import ASGITransport, AsyncClient

from hypervision.app import create_app
from tests.conftest import make_settings


async def test_healthz_and_readyz(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_openapi_is_published(client: AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    assert spec["info"]["title"] == "Hypervision"
    assert "/api/v1/auth/token" in spec["paths"]


async def test_unknown_route_has_the_error_shape(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Ressource introuvable."}}
    english = await client.get("/api/v1/nothing-here", headers={"Accept-Language": "en"})
    assert english.json()["error"]["message"] == "Resource not found."


async def test_security_headers_and_no_store(client: AsyncClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert len(response.headers["x-request-id"]) >= 8


async def test_request_id_is_kept_when_well_formed(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
    assert response.headers["x-request-id"] == "abc-12345678"
    forged = await client.get("/healthz", headers={"X-Request-ID": "bad\nid"})
    assert forged.headers["x-request-id"] != "bad\nid"


async def _down_client(tmp_path: Path, url: str) -> AsyncClient:
    app = create_app(make_settings(tmp_path, url))
    return AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver")


async def test_postgres_down_answers_503_fast(tmp_path: Path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    async with await _down_client(tmp_path, "postgresql+asyncpg://u@127.0.0.1:1/none") as http:
        started = time.monotonic()
        ready = await http.get("/readyz")
        token = await http.post("/api/v1/auth/token", data={"username": "a", "password": "b"})
        elapsed = time.monotonic() - started
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unavailable"
    assert token.status_code == 503
    assert token.json()["error"]["code"] == "database_unavailable"
    assert "Traceback" not in token.text
    assert elapsed < 5  # generous: the point is "no 60-second driver time-out"


async def test_sqlite_unusable_answers_503(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    url = f"sqlite+aiosqlite:///{missing_dir}"
    async with await _down_client(tmp_path, url) as http:
        ready = await http.get("/readyz")
        me = await http.get("/api/v1/auth/me", headers={"Authorization": "Bearer hvs_x"})
    assert ready.status_code == 503
    assert me.status_code == 503
    assert me.json()["error"]["code"] == "database_unavailable"
