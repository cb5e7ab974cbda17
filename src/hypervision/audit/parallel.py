"""Reading the audit trail as raw rows and checking their hashes on every core (``audit verify``).

One query per batch, through the session's own driver connection (so the same transaction
and snapshot as the rest of the walk), returns per record ``prev_hash``, ``row_hash`` and the
hashed columns as plain values (already in canonical form where the database can do it
exactly: UUIDs as text, times in UTC with microseconds on PostgreSQL), the JSON columns as
their stored text. Batches go to a process pool (``audit.hashing.check_batch``)
while the next ones are read; results come back in sequence order, a bounded number of
batches in flight. Only sequenced records are read (``seq > last`` never matches a NULL seq).

Measured (bench/audit_verify.py, bench/README.md): SQLAlchemy's row processing (UUID,
datetime and JSON types, Row objects) cost more than the hashing itself. Packing each record
into one JSON array on the server (``json_build_array``) cost PostgreSQL more than reading the
columns (it escapes every JSON column again as a string) and the client a ``json.loads`` per
record; plain columns halve both. ``COPY ... TO STDOUT`` was slower than ``fetch`` through
asyncpg (more client CPU per record).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.util
import os
import re
from collections import deque
from collections.abc import AsyncGenerator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, DateTime, Integer, String, Table, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import hashing
from hypervision.audit.chain import HASHED_FIELDS
from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.policy.rls import SETTING

RECORDS = cast(Table, AuditRecord.__table__)
log = logging.getLogger("hypervision.audit")
PARALLEL_FROM = 20_000  # records: below this a pool costs more than it saves
IN_FLIGHT_PER_WORKER = 2  # batches queued per worker: bounds memory, keeps workers busy


@dataclass
class CheckedBatch:
    """One batch in sequence order (``hashing.check_batch``): its records' ``seq``; their
    ``prev_hash`` and ``row_hash`` (when ``clean`` and not asked ``full``: only the first
    ``prev_hash`` and the last ``row_hash``; otherwise up to ``altered``); the index of the
    first record whose hash does not match; records before it to check the ORM way."""

    seqs: list[int]
    prev_hashes: list[Any]
    row_hashes: list[Any]
    clean: bool
    altered: int | None
    undecoded: list[int]


def _kind(name: str, dialect: str) -> str:
    column_type = RECORDS.c[name].type
    if isinstance(column_type, JSON):
        return "json"
    if isinstance(column_type, Uuid):
        return hashing.SQLITE_UUID if dialect == "sqlite" else hashing.UUID
    if isinstance(column_type, DateTime) or isinstance(
        getattr(column_type, "impl", None), DateTime
    ):
        return hashing.SQLITE_TIME if dialect == "sqlite" else "pg_time"
    if isinstance(column_type, String | Integer):
        return hashing.PLAIN
    # e.g. a Boolean: SQLite stores 0/1, the ORM reads True/False; say how to read it here.
    raise NotImplementedError(f"audit column {name} ({column_type!r}) has no raw reading")


def _expression(name: str, kind: str, quote: Any, dialect: str) -> str:
    column = str(quote(name))
    if kind == "json" and dialect == "postgresql":  # SQLAlchemy's asyncpg codec would parse it
        return f"{column}::text"
    if kind == "pg_time":  # timestamptz -> datetime.isoformat(timespec="microseconds") in UTC
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
    if kind == hashing.UUID:
        return f"{column}::text"
    return column


@dataclass(frozen=True)
class RawQuery:
    layout: hashing.Layout
    sql: str  # parameters: last seq (exclusive), limit; columns: see raw_query
    range_sql: str  # parameters: first seq (exclusive), last seq (inclusive)


def raw_query(dialect: str, quote: Any = lambda name: f'"{name}"') -> RawQuery:
    """The batch query for ``dialect`` ("postgresql" or "sqlite") and its row layout: per
    record ``prev_hash``, ``row_hash``, then the hashed fields in canonical (sorted) order as
    plain columns, read as text where the driver would build objects (UUIDs, times)."""
    kinds = {name: _kind(name, dialect) for name in HASHED_FIELDS}
    items = [quote("prev_hash"), quote("row_hash")]
    items += [_expression(name, kinds[name], quote, dialect) for name in sorted(kinds)]
    where, limit = ("$1", "$2") if dialect == "postgresql" else ("?", "?")
    seq = quote("seq")
    # Identifiers from the model, quoted by the dialect; values are bound parameters.
    select_from = f"SELECT {', '.join(items)} FROM {quote(RECORDS.name)} "  # noqa: S608
    sql = f"{select_from}WHERE {seq} > {where} ORDER BY {seq} LIMIT {limit}"
    range_sql = f"{select_from}WHERE {seq} > {where} AND {seq} <= {limit} ORDER BY {seq}"
    fields = [(name, hashing.PLAIN if kind == "pg_time" else kind) for name, kind in kinds.items()]
    return RawQuery(hashing.Layout.build(fields), sql, range_sql)


class RawReader:
    """Batches of raw rows in sequence order through the session's driver connection."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.query: RawQuery | None = None
        self.driver: Any = None
        self.dialect = ""

    async def open(self) -> None:
        connection = await self.session.connection()
        # Any statement through SQLAlchemy first: the driver's transaction is then open.
        await connection.execute(select(AuditHead.seq).limit(0))
        self.dialect = connection.dialect.name
        quote = connection.dialect.identifier_preparer.quote
        self.query = raw_query(self.dialect, quote)
        self.driver = (await connection.get_raw_connection()).driver_connection

    async def read(self, after: int, limit: int) -> tuple[list[int], list[hashing.Row]]:
        """The next ``limit`` records after ``after``: their seq, their rows (tuples)."""
        assert self.query is not None
        if self.dialect == "postgresql":
            rows = [tuple(row) for row in await self.driver.fetch(self.query.sql, after, limit)]
        else:
            cursor = await self.driver.execute(self.query.sql, (after, limit))
            try:
                rows = await cursor.fetchall()
            finally:
                await cursor.close()
        at = self.query.layout.seq + 2
        return [row[at] for row in rows], rows


@dataclass(frozen=True)
class Snapshot:
    """What a worker process needs to read the trail itself exactly as the walk's transaction
    sees it (PostgreSQL): the server, the transaction's exported snapshot, the identity the
    transaction carries for row-level security, the range query and the row layout."""

    connect: dict[str, Any]  # asyncpg.connect keywords
    snapshot: str
    context: str | None
    query: RawQuery


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+-[0-9]+")
_OPEN: dict[str, tuple[asyncio.AbstractEventLoop, Any]] = {}  # in a worker: by snapshot id


async def export_snapshot(session: AsyncSession, query: RawQuery) -> Snapshot | None:
    """The walk's snapshot, for workers to read the trail in parallel (PostgreSQL only);
    ``query``: the walk's reader's (``RawReader.query``), which the workers run too.

    ``pg_export_snapshot`` (as ``pg_dump --jobs`` does): a worker's REPEATABLE READ
    transaction imports it and sees what the walk's transaction saw when exporting, except
    that transaction's own writes — the records ``drain`` has just chained in it, which the
    walk reads itself (``snapshot_head``)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return None
    url = connection.engine.url
    result = await connection.exec_driver_sql(
        f"SELECT pg_export_snapshot(), current_setting('{SETTING}', true)"
    )
    row = cast(tuple[str, str | None], tuple(result.one()))
    connect = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "server_settings": {"application_name": "hypervision-verify", "jit": "off"},
    }
    return Snapshot(connect, row[0], row[1] or None, query)


async def _open_snapshot(source: Snapshot) -> Any:
    import asyncpg

    if not _SNAPSHOT_ID.fullmatch(source.snapshot):  # interpolated below (no parameters)
        raise ValueError(f"unexpected snapshot id {source.snapshot!r}")
    conn = await asyncpg.connect(**source.connect)
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    await conn.execute(f"SET TRANSACTION SNAPSHOT '{source.snapshot}'")
    if source.context is not None:
        await conn.execute("SELECT set_config($1, $2, true)", SETTING, source.context)
    return conn


def _in_snapshot(source: Snapshot) -> tuple[asyncio.AbstractEventLoop, Any]:
    """This worker's connection in ``source``'s snapshot, opened on its first task and closed
    when the worker exits."""
    if source.snapshot not in _OPEN:
        loop = asyncio.new_event_loop()
        _OPEN[source.snapshot] = loop, loop.run_until_complete(_open_snapshot(source))
        multiprocessing.util.Finalize(None, release, (source.snapshot,), exitpriority=10)
    return _OPEN[source.snapshot]


def release(snapshot: str) -> None:
    """Close this process's connection in ``snapshot``, if it has one."""
    if (opened := _OPEN.pop(snapshot, None)) is not None:
        loop, conn = opened
        try:
            loop.run_until_complete(conn.close(timeout=5))
        finally:
            loop.close()


def snapshot_head(source: Snapshot) -> int:
    """In a worker: the last record chained as the snapshot sees it (committed before it)."""
    loop, conn = _in_snapshot(source)
    head = loop.run_until_complete(conn.fetchval("SELECT seq FROM audit_head WHERE id = 1"))
    return int(head or 0)


def read_and_check(
    source: Snapshot, after: int, until: int, full: bool
) -> tuple[list[int], hashing.Checked]:
    """In a worker: read records ``after < seq <= until`` in the snapshot and check them
    (``hashing.check_batch``): the rows never go through the parent process."""
    loop, conn = _in_snapshot(source)
    found = loop.run_until_complete(conn.fetch(source.query.range_sql, after, until))
    rows = [tuple(row) for row in found]
    at = source.query.layout.seq + 2
    return [row[at] for row in rows], hashing.check_batch(source.query.layout, rows, full)


def _workers(wanted: int | None) -> int:
    if wanted is not None:
        return max(wanted, 1)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes, started and warmed in a thread while the walk goes on in process.

    Forked where the platform can: a worker only runs ``hashing.check_batch`` (pure Python,
    hashlib, json; nothing of the parent's event loop, connections or locks), and a fork costs
    milliseconds. A fork server or spawn would import the ``__main__`` module in every worker
    (Python 3.11 does not preload it: 1.5 s for the CLI, measured), longer than verifying
    100,000 records. Revisit when moving to Python >= 3.12, which warns on fork with threads."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    try:
        for done in [pool.submit(hashing.warm) for _ in range(workers)]:
            done.result()
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    return pool


async def checked_batches(
    session: AsyncSession, *, batch: int, workers: int | None = None, full: bool = False
) -> AsyncGenerator[CheckedBatch, None]:
    """Every sequenced record, in batches in sequence order, hashes checked. ``workers``:
    processes checking hashes (None: one per core when the trail is long enough; 1: in this
    process only). ``full``: every record's hashes, even in a clean batch (checkpoints).

    On PostgreSQL, with workers, each worker also reads its batches itself, in the walk's
    exported snapshot (``read_and_check``): this process only orders the results, so reading
    spreads over the cores as hashing does. Records chained after the snapshot (by ``drain``
    in the walk's own transaction) are read here and checked as on SQLite."""
    reader = RawReader(session)
    await reader.open()
    assert reader.query is not None
    layout = reader.query.layout
    count = _workers(workers)
    starting: asyncio.Task[ProcessPoolExecutor] | None = None
    if count > 1:
        length = await session.scalar(select(AuditHead.seq).where(AuditHead.id == 1))
        if workers is not None or (length or 0) >= PARALLEL_FROM:
            starting = asyncio.create_task(asyncio.to_thread(_start_pool, count))
    pool: ProcessPoolExecutor | None = None
    source = await export_snapshot(session, reader.query) if starting is not None else None
    if starting is not None and (workers is not None or source is not None):
        pool = await starting  # asked for, or reading in workers: every batch goes to the pool
    # (seqs, checked), or (None, a future of both) for a batch a worker reads itself
    pending: deque[tuple[list[int] | None, Future[Any] | hashing.Checked]] = deque()
    shared = 0  # records 1..shared are read by the workers
    if pool is not None and source is not None:
        try:
            shared = await asyncio.wrap_future(pool.submit(snapshot_head, source))
        except Exception:  # noqa: BLE001 - e.g. the server refuses a second connection
            log.warning("audit verify: workers cannot read the trail; reading it here")
    last = 0

    async def take() -> CheckedBatch | None:
        seqs, outcome = pending.popleft()
        done: Any = await asyncio.wrap_future(outcome) if isinstance(outcome, Future) else outcome
        if seqs is None:
            seqs, done = done
        return CheckedBatch(seqs, *done) if seqs else None  # a range may be empty

    try:
        while last < shared:
            assert pool is not None and source is not None
            until = min(last + batch, shared)
            pending.append((None, pool.submit(read_and_check, source, last, until, full)))
            last = until
            while len(pending) > count * IN_FLIGHT_PER_WORKER:
                if part := await take():
                    yield part
        more = True
        while more or pending:
            if more:
                seqs, rows = await reader.read(last, batch)
                more = len(seqs) == batch
                if seqs:
                    last = seqs[-1]
                    if pool is None and starting is not None and starting.done():
                        pool = starting.result()
                    if pool is not None:
                        pending.append((seqs, pool.submit(hashing.check_batch, layout, rows, full)))
                    else:
                        pending.append((seqs, hashing.check_batch(layout, rows, full)))
            while pending and (not more or len(pending) > count * IN_FLIGHT_PER_WORKER):
                if part := await take():
                    yield part
    finally:
        for _seqs, outcome in pending:
            if isinstance(outcome, Future):
                outcome.cancel()
        if starting is not None:
            pool = await starting
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
