"""Audit verification throughput: N hash-chained audit records written fast (chain computed
in Python with ``audit.chain.chain_hash``, bulk-inserted, ``audit_head`` set to the end of
the chain), then ``audit.verify`` timed; it must report ok.

    python bench/audit_verify.py --engine sqlite|postgresql --rows 1000000

The record mix resembles a busy trail: 40 % ``entry.list`` naming 50 entry ids (a feed page),
30 % ``entry.read`` (1 id), 20 % ``entry.create`` (1 id, version detail), 10 % ``auth.login``.
Breakdowns tell where verification spends its time: the walk with hashes checked in process
(``workers=1``), the raw reads it uses and the raw hashing alone (one core), then the ORM reads
and ORM hashing that verify used before (``iter_records``, ``chain.canonical``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import fmt, note, show

from hypervision.audit.models import AuditRecord

# The table's own column order (what COPY and executemany write).
COLUMNS = tuple(c.name for c in AuditRecord.__table__.columns if c.name != "qid")
JSON_COLUMNS = ("resource_ids", "labels", "detail")


def records(n: int, ids_per_list: int) -> Any:
    """Yield ``n`` chained records as plain namespaces (``canonical`` only uses getattr)."""
    from hypervision.audit.chain import chain_hash
    from hypervision.audit.models import GENESIS_HASH

    actors = [(uuid.uuid4(), f"officer.{k:02d}", uuid.uuid4()) for k in range(40)]
    pool = [str(uuid.uuid4()) for _ in range(10_000)]  # entries read again and again
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(n, 1)
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        actor_id, name, org = actors[seq % len(actors)]
        kind = seq % 10
        if kind < 4:
            first = (seq * 7) % (len(pool) - ids_per_list)
            action, ids, detail = "entry.list", pool[first : first + ids_per_list], {}
            labels = ["DR", "NP"] if seq % 3 == 0 else ["NP"]
        elif kind < 7:
            action, ids, detail, labels = "entry.read", [pool[seq % len(pool)]], {}, ["NP"]
        elif kind < 9:
            action, ids, labels = "entry.create", [pool[seq % len(pool)]], ["NP"]
            detail = {"version": 1, "changed": []}
        else:
            action, ids, labels = "auth.login", [], []
            detail = {"method": "password", "mfa": False}
        row = SimpleNamespace(
            seq=seq,
            id=uuid.uuid4(),
            at=start + step * seq,
            actor_id=actor_id,
            actor_name=name,
            actor_organisation_id=org,
            actor_clearance="DR" if seq % 2 else "NP",
            action=action,
            surface="api",
            decision="allowed",
            resource_type="entry" if ids else None,
            resource_ids=ids,
            labels=labels,
            detail=detail,
            request_id=f"req-{seq:012d}",
            client_address="203.0.113.7",
            prev_hash=prev,
        )
        row.row_hash = chain_hash(prev, row)
        prev = row.row_hash
        yield row


async def write_postgres(db: benchlib.BenchDb, n: int, ids_per_list: int) -> tuple[str, int]:
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    last, count, batch = "", 0, 50_000
    watch = benchlib.Stopwatch()
    try:
        buffer: list[tuple[Any, ...]] = []

        async def flush() -> None:
            await conn.copy_records_to_table("audit_records", records=buffer, columns=COLUMNS)
            buffer.clear()

        for row in records(n, ids_per_list):
            buffer.append(
                tuple(
                    json.dumps(getattr(row, c), ensure_ascii=False)
                    if c in JSON_COLUMNS
                    else getattr(row, c)
                    for c in COLUMNS
                )
            )
            last, count = row.row_hash, row.seq
            if len(buffer) >= batch:
                await flush()
                note(f"wrote {count:,}/{n:,} audit records ({count / watch.seconds:,.0f}/s)")
        if buffer:
            await flush()
        await conn.execute("UPDATE audit_head SET seq = $1, last_hash = $2 WHERE id = 1", n, last)
        await conn.execute("VACUUM ANALYZE audit_records")
    finally:
        await conn.close()
    return last, count


def write_sqlite(db: benchlib.BenchDb, n: int, ids_per_list: int) -> tuple[str, int]:
    from sqlalchemy import create_engine, insert, text, update

    from hypervision.audit.models import AuditHead, AuditRecord

    engine = create_engine(f"sqlite:///{db.dsn}")
    last, count, batch = "", 0, 50_000
    watch = benchlib.Stopwatch()
    with engine.begin() as conn:
        conn.execute(text("PRAGMA synchronous=OFF"))
        buffer: list[dict[str, Any]] = []
        for row in records(n, ids_per_list):
            buffer.append({c: getattr(row, c) for c in COLUMNS})
            last, count = row.row_hash, row.seq
            if len(buffer) >= batch:
                conn.execute(insert(AuditRecord.__table__), buffer)
                buffer.clear()
                note(f"wrote {count:,}/{n:,} audit records ({count / watch.seconds:,.0f}/s)")
        if buffer:
            conn.execute(insert(AuditRecord.__table__), buffer)
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=n, last_hash=last))
    engine.dispose()
    return last, count


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (verify's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from sqlalchemy import func, select, text

    from hypervision.audit import service as audit
    from hypervision.audit.chain import chain_hash, iter_records
    from hypervision.audit.models import GENESIS_HASH, AuditRecord
    from hypervision.db import create_engine, session_factory

    await benchlib.header("audit_verify", db, args.rows, f", verify batch {args.batch}")
    watch = benchlib.Stopwatch()
    if db.engine == "postgresql":
        await write_postgres(db, args.rows, args.ids_per_list)
    else:
        await asyncio.to_thread(write_sqlite, db, args.rows, args.ids_per_list)
    write_seconds = watch.seconds

    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    async with sessions() as session:
        if db.engine == "postgresql":
            size = await session.scalar(text("SELECT pg_total_relation_size('audit_records')"))
        else:
            size = (db.data_dir / "bench.db").stat().st_size
        stored = await session.scalar(select(func.count()).select_from(AuditRecord))

    rows: list[list[str]] = []
    verdicts = []
    rates: list[float] = []
    cpu_rates: list[float] = []  # records per CPU-second (this process + its workers)
    for attempt in range(args.repeat):
        async with sessions() as session:
            cpu_before, started = _cpu(), time.perf_counter()
            verdict = await audit.verify(session=session, batch=args.batch)
            seconds = time.perf_counter() - started
            cpu = _cpu() - cpu_before
        verdicts.append(verdict)
        rates.append(verdict.checked / seconds)
        rows.append(
            [
                f"audit.verify (run {attempt + 1})",
                f"{verdict.checked:,}",
                fmt(seconds),
                f"{verdict.checked / seconds:,.0f}",
                "ok" if verdict.ok else f"FAILED: {verdict.problem}",
            ]
        )
        cpu_rates.append(verdict.checked / cpu)
        note(
            f"verify run {attempt + 1}: {verdict.checked / seconds:,.0f} records/s, "
            f"{cpu:.1f} CPU-s in this process and its workers"
        )

    # The same walk with the hashes checked in this process only (no pool): the parallel gain.
    async with sessions() as session:
        started = time.perf_counter()
        single = await audit.verify(session=session, batch=args.batch, workers=1)
        seconds = time.perf_counter() - started
    rows.append(
        [
            "  audit.verify, workers=1 (hashes checked in process)",
            f"{single.checked:,}",
            fmt(seconds),
            f"{single.checked / seconds:,.0f}",
            "ok" if single.ok else f"FAILED: {single.problem}",
        ]
    )
    # The raw reads verify uses (driver rows, plain columns), without hashing ...
    from hypervision.audit import hashing
    from hypervision.audit.parallel import RawReader

    async with sessions() as session:
        reader = RawReader(session)
        await reader.open()
        started, fetched, last, sample_lines = time.perf_counter(), 0, 0, []
        while True:
            seqs, lines = await reader.read(last, args.batch)
            if not seqs:
                break
            if len(sample_lines) < 50_000:
                sample_lines.extend(lines)
            fetched, last = fetched + len(seqs), seqs[-1]
        seconds = time.perf_counter() - started
        assert reader.query is not None
        layout = reader.query.layout
    rows.append(
        [
            "  raw reads only (driver rows, plain columns)",
            f"{fetched:,}",
            fmt(seconds),
            f"{fetched / seconds:,.0f}",
            "",
        ]
    )
    started = time.perf_counter()
    checked = hashing.check_batch(layout, sample_lines)
    seconds = time.perf_counter() - started
    rows.append(
        [
            "  raw hashing only (audit.hashing, one core, in memory)",
            f"{len(sample_lines):,}",
            fmt(seconds),
            f"{len(sample_lines) / seconds:,.0f}",
            "ok" if checked[3:] == (None, []) else "FAILED",
        ]
    )
    # The ORM reads verify used before (SQLAlchemy rows, types processed), without hashing ...
    async with sessions() as session:
        started = time.perf_counter()
        fetched = 0
        async for _row in iter_records(session, args.batch):
            fetched += 1
        seconds = time.perf_counter() - started
    rows.append(
        [
            "  ORM reads only (iter_records, as verify did before)",
            f"{fetched:,}",
            fmt(seconds),
            f"{fetched / seconds:,.0f}",
            "",
        ]
    )
    # ... and the hashing alone, on records already in memory (a sample of them).
    sample_n = min(args.rows, 50_000)
    async with sessions() as session:
        sample = list(
            await session.scalars(select(AuditRecord).order_by(AuditRecord.seq).limit(sample_n))
        )
    started = time.perf_counter()
    prev = GENESIS_HASH
    for row in sample:
        assert chain_hash(prev, row) == row.row_hash
        prev = row.row_hash
    seconds = time.perf_counter() - started
    rows.append(
        [
            "  ORM hashing only (chain.canonical + SHA-256, in memory)",
            f"{len(sample):,}",
            fmt(seconds),
            f"{len(sample) / seconds:,.0f}",
            "",
        ]
    )
    await engine.dispose()

    show(
        f"Audit verify — {db.engine}, {stored:,} records "
        f"({size / 1e6:,.0f} MB on disk, written in {write_seconds:.1f} s)",
        ["what", "records", "seconds", "records/s", "result"],
        rows,
    )
    best = max(rates)
    show(
        "Target",
        ["figure", "value", "target"],
        [
            ["audit.verify throughput (best run)", f"{best:,.0f} records/s", "≥ 100,000 records/s"],
            [
                "  records per CPU-second (process + workers, not the database server)",
                f"{max(cpu_rates):,.0f}",
                "",
            ],
        ],
    )
    if not all(v.ok for v in verdicts):
        sys.exit("audit.verify did not report ok")


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=200_000)
    p.add_argument("--batch", type=int, default=5000, help="verify batch size (default 5000)")
    p.add_argument("--repeat", type=int, default=2, help="verify runs (default 2)")
    p.add_argument(
        "--ids-per-list", type=int, default=50, help="entry ids per entry.list record (default 50)"
    )
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
