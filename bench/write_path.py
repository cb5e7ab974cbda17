# ruff: noqa: T201 - benchmarks print their figures
"""Write path: entries per second through ``entries.create_entry`` (row + version + outbox +
audit record, each entry in its own transaction, as the API does), against a raw single-row
INSERT of a comparable row into a plain table, one per transaction, on the same engine in the
same run. The two paths alternate in rounds so that a noisy neighbour hits both alike.

    python bench/write_path.py --engine sqlite|postgresql --rows 2000 [--concurrency 4] [--api]
        [--in-process 8] [--scaling 8]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import Latency, fmt, note, show

TITLES = [
    "Colis suspect signalé porte de la Chapelle",
    "Affluence importante aux abords du stade",
    "Malaise d'un spectateur, secours engagés",
    "Fermeture temporaire de la station Concorde",
    "Manifestation non déclarée place de la République",
    "Départ de feu de poubelle rue de Rivoli",
    "Embouteillage sur le boulevard périphérique",
    "Orage annoncé en fin d'après-midi",
]
BODY = (
    "Point de situation : périmètre de **sécurité** établi, équipes de secours sur place. "
    "Renforts demandés auprès du centre opérationnel. Prochain point dans trente minutes."
)


class Counter:
    """SQL statements sent per path (BEGIN excluded; COMMIT is not a statement here)."""

    def __init__(self) -> None:
        self.current = "setup"
        self.counts: dict[str, int] = {}

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.counts[self.current] = self.counts.get(self.current, 0) + 1


def payload(i: int, categories: tuple[str, ...]) -> Any:
    from hypervision.logbook.schemas import EntryCreate
    from hypervision.records.schemas import LabelIn

    label = None
    if i % 2 == 1:  # half the entries with an explicit label (resolve_label queries groups/orgs)
        label = LabelIn(
            level="DR" if i % 4 == 1 else "NP",
            need_to_know=["BENCH-VIP"] if i % 8 == 3 else [],
            audience=["BENCH-PARENT"] if i % 8 == 5 else [],
        )
    return EntryCreate.model_validate(
        {
            "title": f"{TITLES[i % len(TITLES)]} ({i})",
            "body": BODY,
            "category": categories[i % len(categories)],
            "severity": ("info", "minor", "major", "critical")[i % 4],
            "location": {"type": "Point", "coordinates": [2.29 + (i % 100) / 1000, 48.86]},
            "tags": ["jo2024", f"secteur-{i % 12}"],
            "label": label.model_dump() if label else None,
        }
    )


async def in_process(
    write: Callable[[int], Awaitable[None]], writers: int, count: int, rounds: int
) -> None:
    """Entries per second through ``create_entry`` with 1 writer, then ``writers`` concurrent
    writers in this process (one engine, its pool: as one app worker's concurrent requests
    write), alternating over ``rounds``; each phase writes ``count`` entries."""
    rates: dict[int, list[float]] = {1: [], writers: []}
    first = 20_000_000

    async def phase(n: int) -> float:
        nonlocal first
        todo = iter(range(first, first + count))
        first += count

        async def worker() -> None:
            for i in todo:
                await write(i)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(n)))
        return count / (time.perf_counter() - started)

    for r in range(rounds):
        for n in (1, writers) if r % 2 == 0 else (writers, 1):
            rates[n].append(await phase(n))
        note(f"in-process round {r + 1}/{rounds}: 1 writer {rates[1][-1]:.0f}/s, "
             f"{writers} writers {rates[writers][-1]:.0f}/s")  # fmt: skip
    one = benchlib.percentile(sorted(rates[1]), 50)
    many = benchlib.percentile(sorted(rates[writers]), 50)
    ratios = sorted(m / o for o, m in zip(rates[1], rates[writers], strict=True))
    show(
        f"Concurrent writers in one process — {count} entries per phase, {rounds} rounds "
        "(median rate)",
        ["writers", "entries/s (median)", "per round", "ratio to 1 writer"],
        [
            ["1", fmt(one, 1), " / ".join(f"{x:.0f}" for x in rates[1]), "1.00"],
            [str(writers), fmt(many, 1), " / ".join(f"{x:.0f}" for x in rates[writers]),
             f"{many / one:.2f} (per round {ratios[0]:.2f}–{ratios[-1]:.2f})"],
        ],
    )  # fmt: skip


def scaling_worker(
    engine_name: str, url: str, data_dir: str, user_id: str, first: int, count: int, barrier: Any
) -> tuple[float, float]:
    """One writer process of ``--scaling``: ``count`` entries through ``create_entry``, each
    in its own transaction; returns (start, end) wall-clock times of the timed part."""
    import uuid

    async def work() -> tuple[float, float]:
        from hypervision.db import create_engine, session_factory, transaction
        from hypervision.logbook import entries

        db = benchlib.BenchDb(engine=engine_name, url=url, data_dir=Path(data_dir))
        settings = benchlib.bench_settings(db)
        engine = create_engine(settings)
        sessions = session_factory(engine)
        actor = await benchlib.principal_of(sessions, uuid.UUID(user_id))

        async def write(i: int) -> None:
            async with transaction(sessions) as session:
                await entries.create_entry(
                    session=session,
                    settings=settings,
                    actor=actor,
                    data=payload(i, settings.categories),
                )

        for i in range(5):  # warm-up: connection, compiled statements
            await write(first - 1 - i)
        await asyncio.to_thread(barrier.wait)  # every writer of the phase starts together
        started = time.time()
        for i in range(count):
            await write(first + i)
        ended = time.time()
        await engine.dispose()
        return started, ended

    return asyncio.run(work())


def scaling(db: benchlib.BenchDb, user_id: str, writers: int, count: int, rounds: int) -> None:
    """Entries per second with 1 writer process, then ``writers`` processes at once (as many
    app workers or replicas would write), alternating over ``rounds``; each process writes
    ``count`` entries. The rate of a phase: every entry written / (last end - first start)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    rates: dict[int, list[float]] = {1: [], writers: []}
    busy: dict[int, list[float]] = {1: [], writers: []}  # the machine's CPU, % of all cores
    first = 10_000_000
    with ctx.Manager() as manager, ProcessPoolExecutor(writers, mp_context=ctx) as pool:
        for r in range(rounds):
            for n in (1, writers) if r % 2 == 0 else (writers, 1):
                barrier = manager.Barrier(n)
                cpu_before = benchlib.system_cpu()
                futures = [
                    pool.submit(scaling_worker, db.engine, db.url, str(db.data_dir), user_id,
                                first + k * count, count, barrier)
                    for k in range(n)
                ]  # fmt: skip
                first += n * count + 100
                spans = [f.result() for f in futures]
                cpu_after = benchlib.system_cpu()
                seconds = max(e for _, e in spans) - min(s for s, _ in spans)
                rates[n].append(n * count / seconds)
                used, total = (a - b for a, b in zip(cpu_after, cpu_before, strict=True))
                busy[n].append(100 * used / total if total else 0.0)
                note(f"scaling round {r + 1}/{rounds}: {n} writer(s) {rates[n][-1]:.0f}/s")
    one = benchlib.percentile(sorted(rates[1]), 50)
    many = benchlib.percentile(sorted(rates[writers]), 50)
    show(
        f"Concurrent writers — {db.engine}, {count} entries per process, {rounds} rounds "
        "(median rate)",
        ["writers", "entries/s (median)", "per round", "machine CPU busy % (median)",
         "ratio to 1 writer", "target"],
        [
            ["1 process", fmt(one, 1), " / ".join(f"{x:.0f}" for x in rates[1]),
             fmt(benchlib.percentile(sorted(busy[1]), 50), 0), "1.00", ""],
            [f"{writers} processes", fmt(many, 1),
             " / ".join(f"{x:.0f}" for x in rates[writers]),
             fmt(benchlib.percentile(sorted(busy[writers]), 50), 0), f"{many / one:.2f}",
             "≥ 3 (PostgreSQL)"],
        ],
    )  # fmt: skip


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from httpx import ASGITransport, AsyncClient
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text, Uuid, event, func, insert
    from sqlalchemy import select as sa_select

    from hypervision.app import create_app
    from hypervision.audit import service as audit
    from hypervision.audit.models import AuditRecord
    from hypervision.db import (
        UTCDateTime,
        create_engine,
        new_id,
        session_factory,
        transaction,
        utcnow,
    )
    from hypervision.events.models import OutboxEvent
    from hypervision.identity.passwords import Passwords
    from hypervision.logbook import entries
    from hypervision.logbook.models import Entry
    from hypervision.records.labels import JsonList
    from hypervision.records.models import RecordVersion

    await benchlib.header(
        "write_path",
        db,
        args.rows,
        f", concurrency {args.concurrency}, {args.rounds} alternating rounds",
    )
    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    passwords = Passwords(settings)
    counter = Counter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)

    await benchlib.make_org(sessions, "BENCH-PARENT")
    await benchlib.make_org(sessions, "BENCH-W", "BENCH-PARENT")
    await benchlib.make_group(sessions, "BENCH-VIP")
    user = await benchlib.make_user(
        sessions, settings, passwords, "bench.writer", "BENCH-W",
        roles=("officer",), clearance="DR", groups=("BENCH-VIP",),
    )  # fmt: skip
    actor = await benchlib.principal_of(sessions, user.id)

    raw = Table(
        "bench_raw_entries",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("author_id", Uuid, nullable=False),
        Column("organisation_id", Uuid, nullable=False),
        Column("category", String(32), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("title", String(200), nullable=False),
        Column("body", Text, nullable=False),
        Column("tags", JsonList, nullable=False),
        Column("label_level", String(16), nullable=False),
        Column("need_to_know", JsonList, nullable=False),
        Column("audience", JsonList, nullable=False),
        Column("version", Integer, nullable=False),
    )
    async with engine.begin() as conn:
        await conn.run_sync(raw.metadata.create_all)
    raw_insert = insert(raw)
    categories = settings.categories

    async def app_write(i: int) -> None:
        async with transaction(sessions) as session:
            await entries.create_entry(
                session=session, settings=settings, actor=actor, data=payload(i, categories)
            )

    async def raw_write(i: int) -> None:
        data = payload(i, categories)
        async with engine.begin() as conn:
            await conn.execute(
                raw_insert,
                {
                    "id": new_id(),
                    "recorded_at": utcnow(),
                    "author_id": actor.user_id,
                    "organisation_id": actor.organisation_id,
                    "category": data.category,
                    "severity": data.severity.value,
                    "status": data.status.value,
                    "title": data.title,
                    "body": data.body,
                    "tags": sorted(set(data.tags)),
                    "label_level": "NP",
                    "need_to_know": [],
                    "audience": [str(actor.organisation_id)],
                    "version": 1,
                },
            )

    paths: dict[str, Callable[[int], Awaitable[None]]] = {
        "raw": raw_write,
        "create_entry": app_write,
    }
    labels = {
        "raw": "raw single-row INSERT, plain table (baseline)",
        "create_entry": "entries.create_entry (row+version+outbox+audit)",
        "api": "POST /api/v1/entries via ASGI (full request)",
    }

    app = client = None
    if args.api:
        app = create_app(settings)
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", counter)
        client = AsyncClient(
            transport=ASGITransport(app=app, client=("127.0.0.1", 50000)),
            base_url="https://testserver",
        )
        token = await client.post(
            "/api/v1/auth/token", data={"username": "bench.writer", "password": benchlib.PASSWORD}
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        async def api_write(i: int) -> None:
            assert client is not None
            body = payload(i, categories).model_dump(mode="json", exclude_none=True)
            response = await client.post("/api/v1/entries", json=body, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"POST /entries: {response.status_code} {response.text[:300]}")

        paths["api"] = api_write

    next_i = 0
    cpu: dict[str, float] = {}  # this process's CPU seconds per path (the database's apart)

    async def block(name: str, count: int, samples: list[float]) -> float:
        """``count`` writes on ``args.concurrency`` workers; returns the wall time."""
        nonlocal next_i
        remaining = count

        async def worker() -> None:
            nonlocal remaining, next_i
            while remaining > 0:
                remaining -= 1
                next_i += 1
                started = time.perf_counter()
                await paths[name](next_i)
                samples.append(time.perf_counter() - started)

        counter.current = name
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - cpu_started
        return time.perf_counter() - started

    warm = min(20, max(1, args.rows // 20))
    for name in paths:
        await block(name, warm, [])
    counter.counts.clear()
    cpu.clear()

    per_round = max(1, args.rows // args.rounds)
    samples: dict[str, list[float]] = {n: [] for n in paths}
    wall: dict[str, float] = dict.fromkeys(paths, 0.0)
    round_rates: list[dict[str, float]] = []
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        rates: dict[str, float] = {}
        for name in order:
            seconds = await block(name, per_round, samples[name])
            wall[name] += seconds
            rates[name] = per_round / seconds
        round_rates.append(rates)
        note(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {rates[n]:.0f}/s" for n in paths))

    rows = []
    for name in paths:
        lat = Latency.of(samples[name])
        count = len(samples[name])
        rows.append(
            [
                labels[name],
                str(count),
                fmt(wall[name]),
                fmt(count / wall[name], 1),
                fmt(lat.p50),
                fmt(lat.p95),
                fmt(lat.max),
                fmt(counter.counts.get(name, 0) / count, 1),
                fmt(1000 * cpu[name] / count, 2),
            ]
        )
    show(
        f"Write path — {db.engine}, {args.rows:,} transactions per path, "
        f"concurrency {args.concurrency}",
        [
            "path",
            "txns",
            "seconds",
            "txn/s",
            "p50 ms",
            "p95 ms",
            "max ms",
            "SQL stmts/txn",
            "CPU ms/txn",
        ],
        rows,
    )

    rate = {n: len(samples[n]) / wall[n] for n in paths}
    ratio_rows = [
        [
            "create_entry / raw INSERT (rate ratio)",
            f"{rate['create_entry'] / rate['raw']:.2f}",
            "≥ 0.5",
        ]
    ]
    per_round_ratios = sorted(rr["create_entry"] / rr["raw"] for rr in round_rates)
    ratio_rows.append(
        [
            "  same, per round (min / median / max)",
            f"{per_round_ratios[0]:.2f} / {benchlib.percentile(per_round_ratios, 50):.2f} / "
            f"{per_round_ratios[-1]:.2f}",
            "",
        ]
    )
    if "api" in rate:
        ratio_rows.append(
            ["POST /entries / raw INSERT (rate ratio)", f"{rate['api'] / rate['raw']:.2f}", "—"]
        )
    show("Write ratio", ["ratio", "value", "target"], ratio_rows)

    if args.in_process:
        await in_process(app_write, args.in_process, args.scaling_rows, args.rounds)

    # The rows really were written, with their history and a valid audit chain.
    async with sessions() as session:
        n_entries = await session.scalar(sa_select(func.count()).select_from(Entry))
        n_versions = await session.scalar(sa_select(func.count()).select_from(RecordVersion))
        n_outbox = await session.scalar(sa_select(func.count()).select_from(OutboxEvent))
        n_audit = await session.scalar(sa_select(func.count()).select_from(AuditRecord))
        n_raw = await session.scalar(sa_select(func.count()).select_from(raw))
        verdict = await audit.verify(session=session)
    print(
        f"\nchecked: {n_entries} entries, {n_versions} versions, {n_outbox} outbox events, "
        f"{n_audit} audit records (chain {'ok' if verdict.ok else verdict.problem}), "
        f"{n_raw} raw rows",
        flush=True,
    )
    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile):
            next_i += 1
            await app_write(next_i)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats("hypervision", 20)
        print(
            f"\n### Profile: {args.profile} × entries.create_entry "
            "(event-loop thread only; by own time, then cumulative)"
            f"\n\n```\n{out.getvalue().strip()}\n```"
        )
    if client is not None:
        await client.aclose()
    if app is not None:
        await app.state.engine.dispose()
    await engine.dispose()
    if args.scaling:
        await asyncio.to_thread(
            scaling, db, str(user.id), args.scaling, args.scaling_rows, args.rounds
        )


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=2000)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument(
        "--concurrency", type=int, default=1, help="concurrent writers per path (default 1)"
    )
    p.add_argument(
        "--api", action="store_true", help="also time POST /api/v1/entries through the ASGI app"
    )
    p.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="profile N more create_entry calls with cProfile and print the top functions",
    )  # fmt: skip
    p.add_argument(
        "--scaling", type=int, default=0, metavar="C",
        help="then entries/s with 1 writer process against C writer processes at once",
    )  # fmt: skip
    p.add_argument(
        "--in-process", type=int, default=0, metavar="C",
        help="then entries/s with 1 writer against C concurrent writers in this process",
    )  # fmt: skip
    p.add_argument(
        "--scaling-rows", type=int, default=200,
        help="entries per writer process (--scaling), per phase (--in-process)",
    )  # fmt: skip
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
