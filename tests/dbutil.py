"""Test databases on both engines: a migrated SQLite file and a throw-away PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "HYPERVISION_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def postgres_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("HYPERVISION_TEST_POSTGRES") == "required"


def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work that calls ``asyncio.run`` away from the test event loop."""
    box: dict[str, T | BaseException] = {}

    def target() -> None:
        try:
            box["ok"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller
            box["err"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    return box["ok"]  # type: ignore[return-value]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_unreachable_reason() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=3)
        await conn.close()

    try:
        in_thread(lambda: asyncio.run(probe()))
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to skip
        return f"PostgreSQL unreachable at {PG_ADMIN_URL} ({type(exc).__name__}: {exc})"
    return None


def as_admin(statement: str) -> None:
    """Run one statement on the cluster's administrative connection (databases, roles)."""

    async def run() -> None:
        conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(run()))


def create_postgres_database() -> str:
    name = f"hv_test_{secrets.token_hex(4)}"
    as_admin(f'CREATE DATABASE "{name}"')
    return with_database(PG_ADMIN_URL, name)


def drop_postgres_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str, app_role: str | None = None) -> None:
    from hypervision.migrate import upgrade

    in_thread(lambda: upgrade(url, app_role=app_role))


def app_role_name(owner_url: str) -> str:
    return urlsplit(owner_url).path.lstrip("/") + "_app"


def create_app_role(owner_url: str) -> str:
    """The role the application connects as, as a deployment has it: it owns nothing, is not
    superuser, has no BYPASSRLS; ``migrate`` grants it its rights. Returns its URL."""
    role = app_role_name(owner_url)
    as_admin(
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION'
    )
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def drop_app_role(owner_url: str) -> None:
    as_admin(f'DROP ROLE IF EXISTS "{app_role_name(owner_url)}"')


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
