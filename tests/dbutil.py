"""Test databases on both engines: a migrated SQLite file and a throw-away PostgreSQL database."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import sqlite3
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


def create_postgres_database(template: str | None = None) -> str:
    """A new database, empty or a copy of ``template``: the database migrated to head
    without an application role, made by the first process of the run that asks for it (the
    others wait on an advisory lock). A copy takes a fraction of a second where migrating
    takes 10-20 s. The run drops the template at its end (``drop_postgres_template``)."""
    name = f"hv_test_{secrets.token_hex(4)}"
    if template is None:
        as_admin(f'CREATE DATABASE "{name}"')
    else:
        # Under the template's lock: a copy needs its source without other sessions.
        _under_lock(template, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_database(PG_ADMIN_URL, name)


def _under_lock(template: str, statement: str | None) -> None:
    """Hold the template's advisory lock: make the template if it is missing, then run
    ``statement`` (on the administrative connection)."""

    async def run() -> None:
        conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=5)
        try:
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", template)
            try:
                query = "SELECT 1 FROM pg_database WHERE datname = $1"
                found = await conn.fetchval(query, template)
                if not found:
                    building = f"{template}_building"
                    await conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                    await conn.execute(f'CREATE DATABASE "{building}"')
                    await asyncio.to_thread(migrate, with_database(PG_ADMIN_URL, building))
                    await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
                if statement:
                    await conn.execute(statement)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", template)
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(run()))


def drop_postgres_template(name: str) -> None:
    """The template, and its half-made copy if a process was stopped while migrating it."""
    for database in (name, f"{name}_building"):
        as_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


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


def grant_app_role(owner_url: str) -> None:
    """What ``migrate`` does for the application role after the migrations (its rights, the
    context key), on a copy of a template migrated without one."""
    from hypervision.config import load_settings
    from hypervision.policy import rls

    async def run() -> None:
        conn = await asyncpg.connect(_dsn(owner_url), timeout=5)
        try:
            async with conn.transaction():
                await rls.secure(conn, load_settings(), app_role_name(owner_url))
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(run()))


def drop_app_role(owner_url: str) -> None:
    as_admin(f'DROP ROLE IF EXISTS "{app_role_name(owner_url)}"')


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sqlite_template(directory: Path) -> Path:
    """A SQLite database migrated to head in ``directory`` (shared by the run's processes):
    made by the first that asks for it, under a file lock; copied by ``copy_sqlite``."""
    template, ready = directory / "template.db", directory / "template.ready"
    with (directory / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            for leftover in directory.glob("template.db*"):
                leftover.unlink()
            migrate(sqlite_url(template))
            ready.touch()
    return template


def copy_sqlite(template: Path, path: Path) -> None:
    """A copy of ``template`` at ``path`` (SQLite's backup: consistent whatever its journal),
    private as ``migrate`` leaves a database (0600)."""
    source = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    path.chmod(0o600)
