"""The security console keeps up with the trail (issue 21, docs/adr/0039, 0046): lag from an
audit record's creation to its delivery on a console's live stream, at ``--rate`` records/s.

    python bench/security_console.py --engine postgresql --rate 500 --seconds 30

What runs (all on 127.0.0.1): the app (``python -m hypervision serve``, one worker, its
sequencer and live hub as deployed) on a throw-away database; a security officer's console
stream (``GET /api/v1/stream/audit``, bearer token) read in this process; writers (this
process, ``--writers`` tasks) appending audit records through ``audit.service.record`` — the
request path's own call — ``--per-commit`` per transaction, paced to ``--rate`` records/s for
``--seconds``. **Lag** = receipt time (``time.time()`` when the frame is parsed) minus the
record's ``at`` (set when it is appended, just before its transaction commits): it includes
the commit, the wait for the sequencer's next pass (every ``HYPERVISION_AUDIT_SEQUENCE_SECONDS``,
0.25 s by default: the floor, printed as the baseline), the chaining, the feed's read, the
delivery's own audit record and the network. Missing records (written, never delivered) and
duplicates are counted. Same machine, same clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402 - after the path
from benchlib import fmt, percentile, show  # noqa: E402

from live import start_server  # noqa: E402

HOST = "127.0.0.1"
ACTION = "bench.console"


INSERT = """
INSERT INTO audit_records (id, at, actor_name, action, surface, decision, resource_type,
    resource_ids, labels, detail)
VALUES ($1, $2, $3, $4, 'api', 'allowed', 'entry', $5::json, '["NP"]'::json, $6::json)
"""


async def write(db: benchlib.BenchDb, args: Any, written: dict[str, float]) -> float:
    """Append ``rate`` records/s for ``seconds`` into the audit queue, ``per_commit`` per
    transaction, from ``writers`` connections: the same rows ``audit.service.record`` inserts
    (plain SQL, so that the bench's own Python keeps up on a shared machine); returns the
    rate achieved."""
    import asyncpg

    commits = max(1, args.rate // args.per_commit)  # transactions per second
    interval = args.writers / commits  # each writer's period
    total = args.rate * args.seconds
    per_writer = total // args.per_commit // args.writers
    conns = [await asyncpg.connect(db.dsn) for _ in range(args.writers)]
    started = time.perf_counter()

    async def writer(w: int) -> None:
        due = started + w * interval / args.writers
        conn = conns[w]
        for n in range(per_writer):
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            due += interval
            rows = []
            for k in range(args.per_commit):
                rid = str(uuid.uuid4())
                rows.append(
                    (
                        uuid.uuid4(),
                        datetime.now(UTC),
                        f"writer.{w}",
                        ACTION,
                        json.dumps([rid]),
                        json.dumps({"n": n, "k": k}),
                    )
                )
                written[rid] = time.time()
            async with conn.transaction():
                await conn.executemany(INSERT, rows)

    try:
        await asyncio.gather(*(writer(w) for w in range(args.writers)))
    finally:
        for conn in conns:
            await conn.close()
    return len(written) / (time.perf_counter() - started)


async def console(
    base: str,
    headers: dict[str, str],
    lags: list[float],
    seen: dict[str, int],
    ready: asyncio.Event,
) -> None:
    """A console's stream: every ``bench.console`` record's lag."""
    import httpx

    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("GET", "/api/v1/stream/audit", headers=headers) as answer,
    ):
        answer.raise_for_status()
        ready.set()
        event = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "audit":
                record = json.loads(line[6:])
                if record.get("action") != ACTION:
                    continue
                received = time.time()
                at = datetime.fromisoformat(record["at"]).timestamp()
                lags.append((received - at) * 1000)
                for rid in record.get("resource_ids") or ():
                    seen[rid] = seen.get(rid, 0) + 1


async def bench(args: Any, db: benchlib.BenchDb) -> None:
    import httpx

    from hypervision.db import create_engine, session_factory
    from hypervision.identity.passwords import Passwords

    await benchlib.header("security_console", db, args.rate * args.seconds)
    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    await benchlib.make_org(sessions, "SECU")
    await benchlib.make_user(
        sessions, settings, Passwords(settings), "secu.bench", "SECU", roles=("security_officer",)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env.update(
        {
            "HYPERVISION_DATABASE_URL": db.url,
            "HYPERVISION_DATA_DIR": str(db.data_dir),
            "HYPERVISION_SECRET_KEY": benchlib.BENCH_SECRET,
            "HYPERVISION_ARGON2_TIME_COST": "1",
            "HYPERVISION_ARGON2_MEMORY_KIB": "8",
            "HYPERVISION_ARGON2_PARALLELISM": "1",
            "HYPERVISION_LIVE_QUEUE_SIZE": "100000",
        }
    )
    server = start_server(
        "hypervision",
        [sys.executable, "-m", "hypervision", "serve", "--host", HOST, "--port", "{port}"],
        env,
        db.data_dir / "server.log",
    )
    lags: list[float] = []
    seen: dict[str, int] = {}
    written: dict[str, float] = {}
    try:
        await server.wait_ready("/healthz")
        async with httpx.AsyncClient(base_url=server.base) as http:
            token = await http.post(
                "/api/v1/auth/token",
                data={"username": "secu.bench", "password": benchlib.PASSWORD},
            )
            token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        ready = asyncio.Event()
        reader = asyncio.create_task(console(server.base, headers, lags, seen, ready))
        await asyncio.wait_for(ready.wait(), 30)
        rate = await write(db, args, written)
        deadline = time.monotonic() + 15
        while len(seen) < len(written) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        reader.cancel()
        load = os.getloadavg()
    finally:
        server.stop()
        await engine.dispose()
    missing = len(set(written) - set(seen))
    duplicates = sum(1 for count in seen.values() if count > 1)
    floor = settings.audit_sequence_seconds * 1000
    show(
        f"Security console — {db.engine}, {len(written):,} records at {rate:,.0f}/s "
        f"({args.writers} writers, {args.per_commit} per commit), load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        ["figure", "value", "target"],
        [
            ["records written", f"{len(written):,}", ""],
            ["delivered to the console", f"{len(seen):,}", "all"],
            ["missing / duplicated", f"{missing} / {duplicates}", "0 / 0"],
            ["lag p50 (ms)", fmt(percentile(lags, 50)), ""],
            ["lag p95 (ms)", fmt(percentile(lags, 95)), "< 1000"],
            ["lag p99 (ms)", fmt(percentile(lags, 99)), "< 1000"],
            ["lag max (ms)", fmt(max(lags) if lags else 0.0), ""],
            ["baseline: the sequencer's pass interval (ms)", fmt(floor), ""],
            ["p95 / baseline", f"{percentile(lags, 95) / floor:.2f}" if lags else "-", ""],
        ],
    )


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=0)
    p.add_argument("--rate", type=int, default=500, help="audit records per second")
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--writers", type=int, default=10, help="concurrent writing tasks")
    p.add_argument("--per-commit", type=int, default=1, help="records per transaction")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(bench(args, db))


if __name__ == "__main__":
    main()
