"""Database engine, declarative base and transaction helpers (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, exc, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from hypervision.config import Settings
from hypervision.storage import private

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def create_engine(
    settings: Settings, url: str | None = None, *, serving: bool = False
) -> AsyncEngine:
    """The engine. ``serving``: the application's (requests, hub), whose statements and lock
    waits are time-boxed on PostgreSQL; commands (migrations, prune, verify) are not."""
    url = url or settings.effective_database_url
    if url.startswith("sqlite"):
        if ":memory:" not in url and not serving:
            # Made by migrate and the commands; a server never creates an empty database.
            _create_private_database(settings, url)
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_synchronous))
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    server_settings = {
        "synchronous_commit": "on",
        "application_name": "hypervision",
        # Short OLTP queries: JIT compilation costs more than it saves (~100 ms).
        "jit": "off",
    }
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_seconds,
        "server_settings": server_settings,
    }
    if serving:
        statement_ms = round(settings.db_statement_timeout_seconds * 1000)
        server_settings["statement_timeout"] = str(statement_ms)
        server_settings["lock_timeout"] = str(round(settings.db_lock_timeout_seconds * 1000))
        # A frozen server enforces nothing: the driver gives up a little after the server
        # would have cancelled (TimeoutError, answered 503).
        connect_args["command_timeout"] = settings.db_statement_timeout_seconds + 2
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args=connect_args,
    )
    _check_pooled_connections(engine, settings.db_ping_idle_seconds)
    return engine


CHECKED_IN = "hypervision.checked_in"


def _check_pooled_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before use (docs/adr/0055), as SQLAlchemy's ``pool_pre_ping``
    does, but without its round trips for a connection that served a request moments ago:
    - one the driver already saw closed (a fail-over, a restart) is never handed out, and
      the pool drops every connection older than it (no round trip: asyncpg knows);
    - one that sat idle ``idle_seconds`` or more is pinged (three round trips with asyncpg:
      BEGIN, ``;``, ROLLBACK); a disconnect drops the pool's older connections too, another
      error goes to the request, as with ``pool_pre_ping``;
    - one back in the pool moments ago is used as it is: if the server closed it unseen
      meanwhile, its request fails with 503 (ADR 0015) and the pool drops the older ones."""
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[CHECKED_IN] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(CHECKED_IN, None)
        if since is None:
            return  # a new connection
        if _seen_closed(dbapi_connection):
            raise exc.InvalidatePoolError("pooled connection closed by the server")
        if time.monotonic() - since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            raise exc.InvalidatePoolError(f"pooled connection failed its ping: {error}") from error

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def _seen_closed(dbapi_connection: Any) -> bool:
    """Whether asyncpg already saw the server close the connection (no round trip; a network
    cut that delivers no close stays unseen until the connection is next used)."""
    return bool(dbapi_connection.driver_connection.is_closed())


def _create_private_database(settings: Settings, url: str) -> None:
    """The data folder (0700) and an empty database file (0600) before SQLite opens it: SQLite
    would create the file 0644 under the usual umask, and gives its -wal/-shm the file's mode."""
    private.make_dirs(settings.data_dir)
    database = make_url(url).database
    if database:
        private.make_dirs(Path(database).parent)
        private.touch(Path(database))


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    if synchronous not in ("FULL", "NORMAL"):  # interpolated below: a closed set only
        raise ValueError(f"unknown SQLite synchronous level {synchronous!r}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()
        dbapi_connection.create_function(TIME_BUCKET_FUNCTION, 2, text_bucket, deterministic=True)
        # Let SQLAlchemy, not the driver, emit BEGIN (see _sqlite_begin_immediate).
        dbapi_connection.isolation_level = None

    return on_connect


# --- time buckets (hypervision.core.buckets; ADR 0043) -----------------------------------------
# Here, not in core, because each SQLite connection is given the function when it opens.

TIME_BUCKET_FUNCTION = "hv_time_bucket"
_PARIS = ZoneInfo("Europe/Paris")  # hypervision.core.timezone.PARIS (core builds on db)
_UNITS = ("hour", "day", "week", "month")


def bucket_of_date(day: date, unit: str) -> str:
    """The day, ISO week (from Monday) or month a date falls in, as an ISO date."""
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return day.isoformat()


def bucket_of_moment(moment: datetime, unit: str) -> str:
    """The hour, day, ISO week or month (Paris time) an aware moment falls in, as an ISO
    moment with its offset (``2024-07-26T00:00:00+02:00``)."""
    local = moment.astimezone(_PARIS)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    day = date.fromisoformat(bucket_of_date(local.date(), unit))
    return datetime(day.year, day.month, day.day, tzinfo=_PARIS).isoformat()


def text_bucket(value: str | None, unit: str) -> str | None:
    """SQLite's ``hv_time_bucket``: a stored date (``YYYY-MM-DD``) or UTC moment
    (``YYYY-MM-DD HH:MM:SS[.ffffff]``, no offset) to its bucket; None for what is neither."""
    if not isinstance(value, str) or unit not in _UNITS:
        return None
    try:
        if len(value) == 10:
            return None if unit == "hour" else bucket_of_date(date.fromisoformat(value), unit)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return bucket_of_moment(moment if moment.tzinfo else moment.replace(tzinfo=UTC), unit)


def _sqlite_begin_immediate(connection: Any) -> None:
    """Every request may write (reads leave audit records): take the write lock up front so
    two transactions never race to upgrade a read snapshot (SQLITE_BUSY_SNAPSHOT)."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on any error. Services never commit."""
    async with factory() as session, session.begin():
        yield session
