"""The restore drill on PostgreSQL (issue 20; CloudNativePG's own backups are documented in
docs/adr): the owner dumps the database with ``pg_dump``, an operator restores the dump into a
new database, and the copy serves as the original did — every record is there, its row-level
security still shows the application's role nothing without a signed context, the sessions
still sign people in, and ``hypervision audit verify`` finds the chain intact."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hypervision.app import create_app
from tests import dbutil
from tests.conftest import engine_name, make_settings
from tests.factories import ENTRY, officer, sequenced
from tests.test_cli import _cli

SECRET = {"level": "DR", "need_to_know": [], "audience": []}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError(f"{name} is required in CI (Debian's postgresql-client)")
        pytest.skip(f"{name} not installed (Debian's postgresql-client)")
    return found


async def test_a_dump_restored_into_a_new_database_serves_as_the_original(
    app: FastAPI, client: AsyncClient, database_url: str, owner_database_url: str, tmp_path: Path
) -> None:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: the embedded store's drill is tests/test_backup.py")
    pg_dump, pg_restore = _tool("pg_dump"), _tool("pg_restore")
    author = await officer(app, client, "author", "PP")
    written = []
    for i, label in enumerate([None, SECRET, None]):
        body = {**ENTRY, "title": f"avant sauvegarde {i}", **({"label": label} if label else {})}
        response = await client.post("/api/v1/entries", json=body, headers=author)
        assert response.status_code == 201, response.text
        written.append(response.json()["id"])
    await sequenced(app)

    dump = tmp_path / "hypervision.dump"
    owner_dsn = owner_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    await asyncio.to_thread(
        subprocess.run,
        [pg_dump, "--format=custom", "--file", str(dump), owner_dsn],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    # The README's procedure: an empty database, pg_restore as the owner (--no-owner), then
    # `hypervision migrate` (grants the application's role again) and `audit verify`.
    restored = urlsplit(owner_database_url).path.lstrip("/") + "_restored"
    owner_name = urlsplit(owner_database_url).username
    dbutil.as_admin(f'CREATE DATABASE "{restored}" OWNER "{owner_name}"')
    try:
        owner_url = dbutil.with_database(owner_database_url, restored)
        done = await asyncio.to_thread(
            subprocess.run,
            [pg_restore, "--exit-on-error", "--no-owner", "--dbname",
             owner_url.replace("postgresql+asyncpg://", "postgresql://", 1), str(dump)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        app_url = dbutil.with_database(database_url, restored)
        migrated = _cli(app_url, tmp_path, "migrate", owner_url=owner_url)
        assert migrated.returncode == 0, migrated.stderr

        verified = _cli(app_url, tmp_path, "audit", "verify")
        assert verified.returncode == 0, verified.stderr
        assert "audit trail intact" in verified.stdout

        app_dsn = app_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(app_dsn, timeout=5)
        try:  # no signed context: row-level security shows nothing, as on the original
            assert await conn.fetchval("SELECT count(*) FROM entries") == 0
        finally:
            await conn.close()

        copy = create_app(make_settings(tmp_path / "copy", app_url))
        async with AsyncClient(transport=ASGITransport(app=copy), base_url="http://t") as other:
            feed = await other.get("/api/v1/entries", headers=author)  # the same session
            assert feed.status_code == 200, feed.text
            assert sorted(e["id"] for e in feed.json()["items"]) == sorted(written)
        await copy.state.engine.dispose()
    finally:
        dbutil.drop_postgres_database(dbutil.with_database(dbutil.PG_ADMIN_URL, restored))
