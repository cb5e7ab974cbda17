""" "Who saw this" at scale (issue 21, docs/adr/0039): p95 of ``security.console.readers``
for a record read ``--hot`` times among ``--rows`` audit records.

    python bench/who_saw.py --engine postgresql --rows 1000000 --hot 100000

The trail is written straight into the tables (COPY on PostgreSQL): ``--rows`` sequenced
records, of which ``--hot`` name the hot entry (``entry.read``, one id), the others a mix of
reads of 10,000 other entries and feed pages (``entry.list`` naming ``--ids-per-list`` ids,
``--list-share`` of the records), with the trail's index by record (``audit_resources``)
filled as the sequencer fills it. Then, timed: the first page of "who saw this" for the hot
entry (newest first, 50 rows), pages at random depths in its history, and a record read
once; each call drains the queue, reads through the index, and appends its own audit record
in its transaction, as the API does. Last, the sequencer's cost with and without the index:
``--sequence`` queued records chained by ``audit.sequencer.drain``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import fmt, note, percentile, show

from hypervision.audit.models import AuditRecord

COLUMNS = tuple(c.name for c in AuditRecord.__table__.columns if c.name != "qid")
JSON_COLUMNS = ("resource_ids", "labels", "detail")
HOT = str(uuid.UUID("00000000-0000-4000-8000-00000000beef"))
ONCE = str(uuid.UUID("00000000-0000-4000-8000-00000000000e"))


def records(args: Any) -> Any:
    """(record values, its record ids) in seq order."""
    rng = random.Random(21)  # noqa: S311 - reproducible test data, not secrets
    actors = [(uuid.uuid4(), f"officer.{k:03d}", uuid.uuid4()) for k in range(200)]
    pool = [str(uuid.uuid4()) for _ in range(10_000)]
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(args.rows, 1)
    every = max(1, args.rows // max(args.hot, 1))
    for seq in range(1, args.rows + 1):
        actor_id, name, org = actors[seq % len(actors)]
        if seq % every == 0 and seq // every <= args.hot:
            action, ids = "entry.read", [HOT]
        elif seq == args.rows // 2:
            action, ids = "entry.read", [ONCE]
        elif rng.random() < args.list_share:
            first = rng.randrange(len(pool) - args.ids_per_list)
            action, ids = "entry.list", pool[first : first + args.ids_per_list]
        else:
            action, ids = "entry.read", [pool[rng.randrange(len(pool))]]
        values = {
            "seq": seq,
            "id": uuid.uuid4(),
            "at": start + step * seq,
            "actor_id": actor_id,
            "actor_name": name,
            "actor_organisation_id": org,
            "actor_clearance": "DR",
            "action": action,
            "surface": "api",
            "decision": "allowed",
            "resource_type": "entry",
            "resource_ids": ids,
            "labels": ["NP"],
            "detail": {},
            "request_id": f"req-{seq:012d}",
            "client_address": "203.0.113.7",
            "prev_hash": "0" * 64,
            "row_hash": f"{seq:064x}",
        }
        yield values, ids


async def write_postgres(db: benchlib.BenchDb, args: Any) -> int:
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    named = 0
    watch = benchlib.Stopwatch()
    try:
        rows: list[tuple[Any, ...]] = []
        pairs: list[tuple[str, int]] = []

        async def flush() -> None:
            await conn.copy_records_to_table("audit_records", records=rows, columns=COLUMNS)
            await conn.copy_records_to_table(
                "audit_resources", records=pairs, columns=("resource_id", "seq")
            )
            rows.clear()
            pairs.clear()

        for values, ids in records(args):
            rows.append(
                tuple(json.dumps(values[c]) if c in JSON_COLUMNS else values[c] for c in COLUMNS)
            )
            pairs.extend((rid, values["seq"]) for rid in ids)
            named += len(ids)
            if len(rows) >= 50_000:
                await flush()
                done = values["seq"]
                note(f"wrote {done:,}/{args.rows:,} records ({done / watch.seconds:,.0f}/s)")
        if rows:
            await flush()
        await conn.execute("UPDATE audit_head SET seq = $1 WHERE id = 1", args.rows)
        await conn.execute("VACUUM ANALYZE audit_records")
        await conn.execute("VACUUM ANALYZE audit_resources")
    finally:
        await conn.close()
    return named


def write_sqlite(db: benchlib.BenchDb, args: Any) -> int:
    from sqlalchemy import create_engine, insert, text, update

    from hypervision.audit.models import AuditHead, AuditResource

    engine = create_engine(f"sqlite:///{db.dsn}")
    named = 0
    with engine.begin() as conn:
        conn.execute(text("PRAGMA synchronous=OFF"))
        rows: list[dict[str, Any]] = []
        pairs: list[dict[str, Any]] = []
        for values, ids in records(args):
            rows.append(values)
            pairs.extend({"resource_id": rid, "seq": values["seq"]} for rid in ids)
            named += len(ids)
            if len(rows) >= 50_000:
                conn.execute(insert(AuditRecord), rows)
                conn.execute(insert(AuditResource), pairs)
                rows.clear()
                pairs.clear()
                note(f"wrote {values['seq']:,}/{args.rows:,} records")
        if rows:
            conn.execute(insert(AuditRecord), rows)
            conn.execute(insert(AuditResource), pairs)
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=args.rows))
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return named


def auditor() -> Any:
    from hypervision.identity.principal import Principal

    return Principal(
        user_id=uuid.uuid4(),
        username="bench.auditor",
        organisation_id=uuid.uuid4(),
        organisation_ancestry=(),
        clearance="NP",
        roles=frozenset({"security_officer"}),
        groups=frozenset(),
    )


async def timed_reads(sessions: Any, resource: str, befores: list[int | None]) -> list[float]:
    from hypervision.db import transaction
    from hypervision.security import console

    actor = auditor()
    times: list[float] = []
    for before in befores:
        started = time.perf_counter()
        async with transaction(sessions) as session:
            page = await console.readers(
                session=session,
                actor=actor,
                resource_id=uuid.UUID(resource),
                before=before,
                limit=50,
            )
        times.append((time.perf_counter() - started) * 1000)
        assert page.items or resource != HOT
    return times


async def timed_queries(sessions: Any, resource: str, befores: list[int | None]) -> list[float]:
    """The same two reads as ``console.readers`` alone (the index range, then the records by
    ``seq``), in a read-only transaction: no drain, no audit record, no commit to wait for."""
    from sqlalchemy import select

    from hypervision.audit.models import AuditResource

    times: list[float] = []
    for before in befores:
        started = time.perf_counter()
        async with sessions() as session:
            named = select(AuditResource.seq).where(AuditResource.resource_id == resource)
            if before is not None:
                named = named.where(AuditResource.seq < before)
            seqs = list(await session.scalars(named.order_by(AuditResource.seq.desc()).limit(51)))
            rows = list(
                await session.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.seq.in_(seqs), AuditRecord.decision == "allowed")
                    .order_by(AuditRecord.seq.desc())
                )
            )
        times.append((time.perf_counter() - started) * 1000)
        assert rows or resource != HOT
    return times


async def sequencing(sessions: Any, n: int) -> float:
    """Queue ``n`` records (20 % feed pages), then chain them: records/s with the index."""
    from sqlalchemy import insert

    from hypervision.audit import sequencer
    from hypervision.db import transaction

    pool = [str(uuid.uuid4()) for _ in range(1000)]
    async with transaction(sessions) as session:
        rows: list[dict[str, Any]] = [
            {
                "id": uuid.uuid4(),
                "at": datetime.now(UTC),
                "actor_name": "bench",
                "action": "entry.list" if k % 5 == 0 else "entry.read",
                "surface": "api",
                "decision": "allowed",
                "resource_ids": pool[k % 900 : k % 900 + 20] if k % 5 == 0 else [pool[k % 1000]],
                "labels": ["NP"],
                "detail": {},
            }
            for k in range(n)
        ]
        await session.execute(insert(AuditRecord), rows)
    started = time.perf_counter()
    async with transaction(sessions) as session:
        done = await sequencer.drain(session)
    seconds = time.perf_counter() - started
    assert done >= n  # and the timed reads' own records
    return done / seconds


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from sqlalchemy import func, select, text

    from hypervision.audit.models import AuditResource
    from hypervision.db import create_engine, session_factory

    extra = f", hot record read {args.hot:,} times"
    await benchlib.header("who_saw", db, args.rows, extra)
    watch = benchlib.Stopwatch()
    if db.engine == "postgresql":
        named = await write_postgres(db, args)
    else:
        named = await asyncio.to_thread(write_sqlite, db, args)
    write_seconds = watch.seconds
    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    async with sessions() as session:
        index = await session.scalar(select(func.count()).select_from(AuditResource))
        if db.engine == "postgresql":
            size = await session.scalar(text("SELECT pg_total_relation_size('audit_resources')"))
        else:
            size = 0
    note(f"wrote {args.rows:,} records, {index:,} index rows in {write_seconds:.0f} s")
    rng = random.Random(7)  # noqa: S311 - reproducible depths, not secrets
    await timed_reads(sessions, HOT, [None] * 5)  # warm the caches and the plans
    first = await timed_reads(sessions, HOT, [None] * args.repeat)
    deep = await timed_reads(
        sessions, HOT, [rng.randrange(2, args.rows) for _ in range(args.repeat)]
    )
    once = await timed_reads(sessions, ONCE, [None] * args.repeat)
    depths = [rng.randrange(2, args.rows) for _ in range(args.repeat)]
    q_first = await timed_queries(sessions, HOT, [None] * args.repeat)
    q_deep = await timed_queries(sessions, HOT, depths)
    q_once = await timed_queries(sessions, ONCE, [None] * args.repeat)
    rate = await sequencing(sessions, args.sequence)
    await engine.dispose()
    rows = []
    for what, times in (
        ("hot record, first page (50 newest)", first),
        ("hot record, a page at a random depth", deep),
        ("record read once", once),
        ("  the reads alone: hot record, first page", q_first),
        ("  the reads alone: hot record, random depth", q_deep),
        ("  the reads alone: record read once", q_once),
    ):
        rows.append(
            [
                what,
                str(len(times)),
                fmt(percentile(times, 50)),
                fmt(percentile(times, 95)),
                fmt(max(times)),
            ]
        )
    show(
        f"Who saw this — {db.engine}, {args.rows:,} records, {index:,} index rows "
        f"({size / 1e6:,.0f} MB), hot record read {args.hot:,} times",
        ["query (security.console.readers)", "calls", "p50 ms", "p95 ms", "max ms"],
        rows,
    )
    p95 = max(percentile(first, 95), percentile(deep, 95))
    q95 = max(percentile(q_first, 95), percentile(q_deep, 95))
    show(
        "Target",
        ["figure", "value", "target"],
        [
            ["who saw this, p95 (worst of the pages)", f"{p95:,.1f} ms", "< 200 ms at 10M"],
            ["  its reads alone, p95", f"{q95:,.1f} ms", ""],
            ["sequencer with the index", f"{rate:,.0f} records/s", ""],
            ["index rows per record", f"{named / args.rows:.1f}", ""],
        ],
    )


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=1_000_000)
    p.add_argument("--hot", type=int, default=100_000, help="reads of the hot record")
    p.add_argument("--ids-per-list", type=int, default=20, help="ids per entry.list record")
    p.add_argument("--list-share", type=float, default=0.2, help="share of entry.list records")
    p.add_argument("--repeat", type=int, default=200, help="timed calls per query")
    p.add_argument("--sequence", type=int, default=20_000, help="records chained at the end")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
