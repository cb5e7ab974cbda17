"""Which database failures answer 503 (docs/adr/0015): decided on the PostgreSQL SQLSTATE, on
SQLite's "try again" errors, and on the pool's time-out; everything else stays a fault."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import create_async_engine

from hypervision.core.errors import is_database_down, sqlstate_of
from hypervision.db import create_engine
from tests import dbutil
from tests.conftest import OWNER_URLS, engine_name, make_settings
from tests.factories import make_org, make_user

DOWN = [
    "08000",  # connection_exception
    "08001",  # sqlclient_unable_to_establish_sqlconnection
    "08003",  # connection_does_not_exist
    "08006",  # connection_failure
    "08P01",  # protocol_violation
    "57P01",  # admin_shutdown: pg_terminate_backend, fast shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up, or smart shutdown refusing new connections
    "53300",  # too_many_connections
    "57014",  # query_canceled: our statement_timeout
    "55P03",  # lock_not_available: our lock_timeout
]
NOT_DOWN = ["42P01", "22P02", "40001", "42501", "XX000"]


async def asyncpg_error(sqlstate: str) -> DBAPIError:
    """The exception the application really receives: asyncpg's error for ``sqlstate``, raised
    by the driver and adapted and wrapped by SQLAlchemy's asyncpg dialect."""
    cls = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)
    assert cls.sqlstate == sqlstate

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise cls("refused")

    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none", async_creator=refuse)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no error raised")


@pytest.mark.parametrize("sqlstate", DOWN)
async def test_unavailable_sqlstates_are_database_down(sqlstate: str) -> None:
    exc = await asyncpg_error(sqlstate)
    assert sqlstate_of(exc) == sqlstate
    assert is_database_down(exc)


@pytest.mark.parametrize("sqlstate", NOT_DOWN)
async def test_other_sqlstates_are_faults(sqlstate: str) -> None:
    exc = await asyncpg_error(sqlstate)
    assert sqlstate_of(exc) == sqlstate
    assert not is_database_down(exc)


async def test_cannot_connect_now_message_has_no_keyword_but_is_down() -> None:
    # PostgreSQL's own wording, which the former keyword match missed (a 500).
    cls = asyncpg.CannotConnectNowError

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise cls("the database system is shutting down")

    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none", async_creator=refuse)
    with pytest.raises(DBAPIError) as caught:
        async with engine.connect():
            pass
    await engine.dispose()
    assert is_database_down(caught.value)


@pytest.mark.parametrize(
    ("message", "down"),
    [
        ("database is locked", True),
        ("database table is locked", True),
        ("disk I/O error", True),
        ("unable to open database file", True),
        ("no such table: entries", False),
        ('near "SELEC": syntax error', False),
    ],
)
def test_sqlite_errors(message: str, down: bool) -> None:
    exc = OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))
    assert sqlstate_of(exc) is None
    assert is_database_down(exc) is down


def test_pool_time_out_and_refused_connections_are_down() -> None:
    assert is_database_down(PoolTimeoutError("QueuePool limit reached"))
    assert is_database_down(ConnectionRefusedError(111, "Connection refused"))
    assert is_database_down(TimeoutError())


# --- against the real PostgreSQL ---------------------------------------------------------


@pytest.fixture
def pg_only(database_url: str) -> str:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL SQLSTATEs")
    return database_url


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text


async def test_terminated_backend_answers_503(
    pg_only: str, app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """pg_terminate_backend on the connection a request is using (as a fast shutdown or a
    fail-over does): 57P01 "terminating connection due to administrator command" → 503."""
    await make_org(app, "PP")
    await make_user(app, "waiting.officer", "PP")
    role = dbutil.app_role_name(OWNER_URLS[pg_only])
    owner = await asyncpg.connect(dbutil._dsn(OWNER_URLS[pg_only]))
    admin = await asyncpg.connect(dbutil._dsn(dbutil.PG_ADMIN_URL))
    caplog.set_level(logging.WARNING)
    try:
        lock = owner.transaction()
        await lock.start()
        await owner.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        request = asyncio.create_task(
            client.post(
                "/api/v1/auth/token", data={"username": "waiting.officer", "password": "x" * 12}
            )
        )
        waiting: list[int] = []
        for _ in range(200):  # the request's backend waits on the lock
            waiting = [
                r["pid"]
                for r in await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND wait_event_type"
                    " = 'Lock'",
                    role,
                )
            ]
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the request never waited on the lock"
        for pid in waiting:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        response = await asyncio.wait_for(request, 10)
        await lock.rollback()
    finally:
        await owner.close()
        await admin.close()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    no_traceback(caplog)


async def test_too_many_connections_answers_503(
    pg_only: str, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """New connections refused by the server (53300, as 57P03 during a smart shutdown): 503."""
    role = dbutil.app_role_name(OWNER_URLS[pg_only])
    await app.state.engine.dispose()  # no pooled connection left: the next one is new
    caplog.set_level(logging.WARNING)
    dbutil.as_admin(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
    try:
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="https://testserver") as http:
            response = await http.post(
                "/api/v1/auth/token", data={"username": "a", "password": "b"}
            )
    finally:
        dbutil.as_admin(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    no_traceback(caplog)


# --- the pool's check of idle connections (docs/adr/0055) ----------------------------------


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the asyncpg dialect's pings (BEGIN, ``;``, ROLLBACK on the wire)."""
    counted: list[int] = []
    ping: Any = AsyncAdapt_asyncpg_connection.ping

    def counting(self: Any) -> None:
        counted.append(1)
        ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting)
    return counted


async def backend_pid(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_back_moments_ago_is_not_pinged(
    pg_only: str, tmp_path: Path, pings: list[int]
) -> None:
    engine = create_engine(make_settings(tmp_path, pg_only, db_ping_idle_seconds=60))
    try:
        first = await backend_pid(engine)
        for _ in range(5):
            assert await backend_pid(engine) == first  # the same pooled connection
    finally:
        await engine.dispose()
    assert pings == []


@pytest.fixture
def unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's close has not reached the driver (as after a network cut that delivers
    no close): the pool's check at checkout sees an open connection."""
    monkeypatch.setattr("hypervision.db._seen_closed", lambda _connection: False)


async def terminate(admin: asyncpg.Connection, *pids: int) -> None:
    for pid in pids:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    await asyncio.sleep(0.3)  # the backends exit; asyncpg reads the close


async def test_connections_the_server_closed_are_replaced_before_use(
    pg_only: str, tmp_path: Path, pings: list[int]
) -> None:
    """A fail-over or a restart: every pooled connection the server closed is replaced before
    use, even one used moments ago, and with no round trip (the driver saw the close)."""
    engine = create_engine(make_settings(tmp_path, pg_only, db_ping_idle_seconds=60))
    admin = await asyncpg.connect(dbutil._dsn(dbutil.PG_ADMIN_URL))
    try:
        async with engine.connect() as one, engine.connect() as two:  # two in the pool
            dead = {
                int(await one.scalar(text("SELECT pg_backend_pid()"))),
                int(await two.scalar(text("SELECT pg_backend_pid()"))),
            }
        await terminate(admin, *dead)
        async with engine.connect() as one, engine.connect() as two:
            alive = {
                int(await one.scalar(text("SELECT pg_backend_pid()"))),
                int(await two.scalar(text("SELECT pg_backend_pid()"))),
            }
        assert not alive & dead and pings == []
    finally:
        await admin.close()
        await engine.dispose()


async def test_an_idle_connection_is_pinged_and_replaced_when_dead(
    pg_only: str, tmp_path: Path, pings: list[int], unseen: None
) -> None:
    """A connection idle past the limit is pinged: dead, it is replaced, and the request
    gets the new one, not an error."""
    engine = create_engine(make_settings(tmp_path, pg_only, db_ping_idle_seconds=0.2))
    admin = await asyncpg.connect(dbutil._dsn(dbutil.PG_ADMIN_URL))
    try:
        dead = await backend_pid(engine)
        await terminate(admin, dead)
        assert await backend_pid(engine) != dead
        assert len(pings) == 1  # the dead one's; the new connection was not pinged
    finally:
        await admin.close()
        await engine.dispose()


async def test_an_unseen_close_within_the_idle_time_fails_one_request_only(
    pg_only: str, tmp_path: Path, unseen: None
) -> None:
    """Used moments ago and not pinged: the request on the dead connection fails as
    "database down" (503), the pool drops it, and the next request works."""
    engine = create_engine(make_settings(tmp_path, pg_only, db_ping_idle_seconds=60))
    admin = await asyncpg.connect(dbutil._dsn(dbutil.PG_ADMIN_URL))
    try:
        dead = await backend_pid(engine)
        await terminate(admin, dead)
        with pytest.raises(DBAPIError) as failed:
            await backend_pid(engine)
        assert is_database_down(failed.value)
        assert await backend_pid(engine) != dead
    finally:
        await admin.close()
        await engine.dispose()
