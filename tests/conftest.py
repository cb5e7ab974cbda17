"""Fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hypervision.app import create_app
from hypervision.audit.models import GENESIS_HASH, AuditHead
from hypervision.config import Settings
from hypervision.db import Base
from tests import dbutil

TEST_SECRET = "test-secret-key-with-enough-length-0123456789"

_pg_skip_reason: str | None = None
OWNER_URLS: dict[str, str] = {}  # application role's URL -> the owner's (PostgreSQL)


def pytest_configure(config: pytest.Config) -> None:
    global _pg_skip_reason
    _pg_skip_reason = dbutil.postgres_unreachable_reason()
    if _pg_skip_reason and dbutil.postgres_required():
        raise pytest.UsageError(f"PostgreSQL tests are required (CI) but {_pg_skip_reason}")


def pytest_report_header(config: pytest.Config) -> str:
    if _pg_skip_reason:
        return f"PostgreSQL tests SKIPPED: {_pg_skip_reason}"
    return f"PostgreSQL tests enabled ({dbutil.PG_ADMIN_URL})"


def make_settings(tmp: Path, database_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp,
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database, created once per engine for the whole run."""
    if request.param == "sqlite":
        url = dbutil.sqlite_url(tmp_path_factory.mktemp("sqlite") / "test.db")
        dbutil.migrate(url)
        yield url
        return
    if _pg_skip_reason:
        pytest.skip(_pg_skip_reason)
    owner = dbutil.create_postgres_database()
    try:
        app_url = dbutil.create_app_role(owner)
        dbutil.migrate(owner, app_role=dbutil.app_role_name(owner))
        OWNER_URLS[app_url] = owner
        yield app_url  # the application connects as the restricted role, under RLS
    finally:
        dbutil.drop_postgres_database(owner)
        dbutil.drop_app_role(owner)


@pytest.fixture
def owner_database_url(database_url: str) -> str:
    """The owner's connection (migrations, test set-up and tampering): on PostgreSQL the
    application connects as a restricted role that cannot alter the audit trail."""
    return OWNER_URLS.get(database_url, database_url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url)


async def reset_database(app: FastAPI) -> None:
    """Empty every table and restart the audit chain, so each test starts clean (as the
    owner: the application's role may not truncate, nor delete the audit trail)."""
    owner = OWNER_URLS.get(app.state.settings.database_url)
    engine = create_async_engine(owner) if owner else app.state.engine
    try:
        await _empty(engine)
    finally:
        if owner:
            await engine.dispose()


async def _empty(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "audit_head"]
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in tables:
                await conn.execute(delete(table))
            await conn.execute(text("DELETE FROM search_fts"))
        await conn.execute(delete(AuditHead))
        await conn.execute(insert(AuditHead).values(id=1, seq=0, last_hash=GENESIS_HASH))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    await reset_database(application)
    yield application
    await application.state.hub.stop()
    await application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


def once_across_engines(database_url: str) -> None:
    """For engine-independent paths that are slow to drive (a subprocess per command, the web
    form): run on PostgreSQL, the deployment's engine, and on SQLite only without it."""
    if engine_name(database_url) == "sqlite" and _pg_skip_reason is None:
        pytest.skip("engine-independent path: run once, on PostgreSQL")


def engine_name(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


os.environ.setdefault("HYPERVISION_SECRET_KEY", TEST_SECRET)
