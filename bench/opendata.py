# ruff: noqa: S311 - benchmarks draw their data and request order with a fixed seed
"""Open data (issue 19): public pages and API under 200 concurrent anonymous readers, and a
large release downloaded streamed.

    python bench/opendata.py --engine sqlite|postgresql --rows 200000 [--readers 200 --rate 1]

1. Set-up, in process: a data product of ``--rows`` rows (day, transit line, incidents,
   delays) imported through the API by a steward, proposed for publication and approved by
   a second steward (release 1 copies every row under the public principal's policy; timed).
2. A real server (``hypervision serve``, ``--workers``) on the throw-away database, rate limit
   raised out of the way, the public cache on (``--no-cache`` to compare). The load model,
   stated: ``--readers`` anonymous readers, each asking ``--rate`` requests a second on
   average (Poisson arrivals, open loop: an arrival does not wait for the previous answer;
   latency counts from the arrival), a case drawn at random per request, for ``--seconds``;
   then the same readers back to back (closed loop) for the saturation throughput. The
   clients run in ``--clients`` processes (one asyncio client saturates first on 2 cores),
   their CPU time is printed. Cases: the dataset's page, the catalogue page, metadata, the
   same revalidated (304), the first rows page, a random rows page (mostly cache misses),
   the DCAT-AP catalogue, and ``/healthz`` as the baseline of the same server in the same
   run: n, req/s, p50, p95, max (ms), each p95 / the baseline's.
3. The latest release downloaded whole in each of ``--formats`` (csv, parquet): seconds, MB,
   the server's resident memory before and at its highest while streaming (sampled every
   50 ms), its growth against the file's size: a server holding the rows would grow by at
   least that much. ``--rows 1000000 --seconds 0`` measures the 1M-row downloads alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402 - after the path
from benchlib import fmt, note, show  # noqa: E402

from live import HOST, rss_kib, start_server  # noqa: E402

SLUG = "incidents-transports-bench"
SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "n", "type": "integer"},
        {"name": "jour", "type": "date"},
        {"name": "ligne", "type": "string"},
        {"name": "incidents", "type": "integer"},
        {"name": "retard_minutes", "type": "integer"},
    ],
    "primaryKey": ["n"],
}
LINES = [f"M{i}" for i in range(1, 15)] + ["RER A", "RER B", "RER C", "RER D", "RER E"]
OPEN = {"level": "NP", "need_to_know": [], "audience": []}


CHUNK = 40_000


def make_csv(start: int, end: int) -> bytes:
    rng = random.Random(19 + start)
    out = ["n;jour;ligne;incidents;retard_minutes"]
    for i in range(start, end):
        day = f"2024-{7 + (i // 31) % 2:02d}-{1 + i % 28:02d}"
        out.append(f"{i};{day};{rng.choice(LINES)};{rng.randint(0, 40)};{rng.randint(0, 90)}")
    return ("\n".join(out) + "\n").encode()


async def publish(db: benchlib.BenchDb, rows: int) -> float:
    """The product, its import and its approved publication; the release's seconds."""
    import httpx

    from hypervision.app import create_app
    from hypervision.policy.roles import Role

    settings = benchlib.bench_settings(db, product_max_bytes=2_000_000_000)
    app = create_app(settings)
    sessions, passwords = app.state.sessions, app.state.passwords
    await benchlib.make_org(sessions, "TRANSPORTS")
    users = {
        name: await benchlib.make_user(
            sessions, settings, passwords, name, "TRANSPORTS", roles=[Role.DATA_STEWARD]
        )
        for name in ("steward.un", "steward.deux")
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        tokens = await benchlib.bearer_tokens(client, users)
        first, second = tokens["steward.un"], tokens["steward.deux"]
        body = {
            "slug": "incidents-bench",
            "name": "Incidents de transport (bench)",
            "description": "Incidents et retards par ligne et par jour",
            "table_schema": SCHEMA,
            "rules": {"rows": [], "rows_default": "allow", "columns": []},
            "label": OPEN,
        }
        made = await client.post("/api/v1/products", json=body, headers=first)
        made.raise_for_status()
        pid = made.json()["id"]
        watch = time.perf_counter()
        # In files of 40,000 rows: the request body limit (2 MiB) holds each one.
        for start in range(0, rows, CHUNK):
            imported = await client.post(
                f"/api/v1/products/{pid}/imports",
                files={
                    "file": ("incidents.csv", make_csv(start, min(rows, start + CHUNK)), "text/csv")
                },
                data={"mode": "replace" if start == 0 else "append"},
                headers=first,
                timeout=3600,
            )
            imported.raise_for_status()
        note(f"imported {rows:,} rows in {time.perf_counter() - watch:.1f} s")
        proposal = {
            "product_id": pid,
            "slug": SLUG,
            "title": "Incidents de transport par ligne",
            "description": "Nombre d'incidents et minutes de retard, par ligne et par jour",
            "keywords": ["transports"],
            "themes": ["TRAN"],
            "columns": [f["name"] for f in SCHEMA["fields"]],
        }
        proposed = await client.post("/api/v1/publications", json=proposal, headers=first)
        proposed.raise_for_status()
        watch = time.perf_counter()
        approved = await client.post(
            f"/api/v1/publications/{proposed.json()['id']}/approve", headers=second, timeout=3600
        )
        approved.raise_for_status()
        seconds = time.perf_counter() - watch
    await app.state.engine.dispose()
    return seconds


# The cases, as data (client processes receive them): name, path, query, headers. ``{page}``
# in a query is drawn at random over the release's pages (mostly misses of the cache),
# ``{ten}`` among the first ten (cached after their first reader).
Case = tuple[str, str, dict[str, str], dict[str, str]]
BASELINE = "/healthz (baseline)"


def cases_of(tag: str, random_pages: bool) -> list[Case]:
    api = f"/opendata/api/datasets/{SLUG}"
    misses: list[Case] = [
        ("rows, random page (misses)", f"{api}/rows", {"page": "{page}", "size": "50"}, {})
    ]
    return [
        *(misses if random_pages else []),
        (BASELINE, "/healthz", {}, {}),
        ("dataset page", f"/opendata/{SLUG}", {}, {}),
        ("catalogue page", "/opendata", {}, {}),
        ("metadata", api, {}, {}),
        ("metadata, revalidated (304)", api, {}, {"If-None-Match": tag}),
        ("rows, first page", f"{api}/rows", {"size": "50"}, {}),
        ("rows, one of 10 pages", f"{api}/rows", {"page": "{ten}", "size": "50"}, {}),
        ("DCAT-AP catalogue", "/catalogue.jsonld", {}, {}),
    ]


async def _one(
    client: Any, case: Case, pages: int, rng: random.Random, timings: dict[str, list[float]]
) -> None:
    name, path, query, headers = case
    draw = {"{page}": lambda: rng.randint(1, pages), "{ten}": lambda: rng.randint(1, 10)}
    params = {k: (str(draw[v]()) if v in draw else v) for k, v in query.items()}
    started = time.perf_counter()
    response = await client.get(path, params=params, headers=headers)
    if response.status_code not in (200, 304):
        raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
    timings[name].append((time.perf_counter() - started) * 1000)


async def _open_loop(
    base: str, readers: int, rate: float, seconds: float, cases: list[Case], pages: int, seed: int
) -> dict[str, list[float]]:
    """``readers`` readers, each asking ``rate`` requests a second on average (Poisson
    arrivals, a case drawn at random): arrivals do not wait for answers (open loop). Latency
    counts from the arrival, so a server (or client) falling behind shows in it."""
    import httpx

    rng = random.Random(seed)
    timings: dict[str, list[float]] = {c[0]: [] for c in cases}
    limits = httpx.Limits(
        max_connections=readers, max_keepalive_connections=readers, keepalive_expiry=2.0
    )  # under the server's 5 s keep-alive: never a request on a connection it closes
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def arrival(case: Case, due: float) -> None:
            name = case[0]
            done: dict[str, list[float]] = {name: []}
            await _one(client, case, pages, rng, done)
            late = (time.perf_counter() - due) * 1000  # from the arrival: includes waiting
            timings[name].append(max(late, done[name][0]))

        started = time.perf_counter()
        at = started
        while True:
            at += rng.expovariate(readers * rate)
            if at - started > seconds:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(arrival(rng.choice(cases), at)))
        await asyncio.gather(*tasks)
    return timings


async def _closed_loop(
    base: str, readers: int, seconds: float, cases: list[Case], pages: int, seed: int
) -> dict[str, list[float]]:
    """``readers`` readers asking back to back (no think time) for ``seconds``."""
    import httpx

    rng = random.Random(seed)
    timings: dict[str, list[float]] = {c[0]: [] for c in cases}
    limits = httpx.Limits(
        max_connections=readers, max_keepalive_connections=readers, keepalive_expiry=2.0
    )  # under the server's 5 s keep-alive: never a request on a connection it closes
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        end = time.perf_counter() + seconds

        async def reader() -> None:
            while time.perf_counter() < end:
                await _one(client, rng.choice(cases), pages, rng, timings)

        await asyncio.gather(*(reader() for _ in range(readers)))
    return timings


def client_process(
    mode: str,
    base: str,
    readers: int,
    rate: float,
    seconds: float,
    cases: list[Case],
    pages: int,
    seed: int,
) -> tuple[dict[str, list[float]], float]:
    """One client process (the load is split across processes: one asyncio client on a
    shared 2-core machine saturates before the server does). Timings and its CPU seconds."""
    cpu = time.process_time()
    if mode == "open":
        found = asyncio.run(_open_loop(base, readers, rate, seconds, cases, pages, seed))
    else:
        found = asyncio.run(_closed_loop(base, readers, seconds, cases, pages, seed))
    return found, time.process_time() - cpu


async def load(
    mode: str, base: str, args: Any, cases: list[Case], pages: int
) -> tuple[dict[str, list[float]], float, float]:
    """The load split over ``--clients`` processes; timings merged, wall and client CPU s."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    loop = asyncio.get_running_loop()
    share = [
        args.readers // args.clients + (i < args.readers % args.clients)
        for i in range(args.clients)
    ]
    watch = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")  # not a fork of this running event loop
    with ProcessPoolExecutor(args.clients, mp_context=spawn) as pool:
        done = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    client_process,
                    mode,
                    base,
                    n,
                    args.rate,
                    args.seconds,
                    cases,
                    pages,
                    11 + i,
                )
                for i, n in enumerate(share)
            )
        )
    wall = time.perf_counter() - watch
    merged: dict[str, list[float]] = {c[0]: [] for c in cases}
    for timings, _ in done:
        for name, values in timings.items():
            merged[name].extend(values)
    return merged, wall, sum(cpu for _, cpu in done)


async def download(base: str, pid: int, fmt_name: str) -> tuple[float, int, int, int]:
    """Seconds, bytes, resident KiB before, highest resident KiB while streaming."""
    import httpx

    stop = asyncio.Event()
    before = rss_kib(pid)
    highest = before

    async def sample() -> None:
        nonlocal highest
        while not stop.is_set():
            highest = max(highest, rss_kib(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    size = 0
    started = time.perf_counter()
    url = f"/opendata/datasets/{SLUG}/releases/latest/data.{fmt_name}"
    async with (
        httpx.AsyncClient(base_url=base, timeout=3600) as client,
        client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            size += len(chunk)
    seconds = time.perf_counter() - started
    stop.set()
    await sampler
    return seconds, size, before, highest


def latency_rows(timings: dict[str, list[float]], seconds: float) -> list[list[str]]:
    base_p95 = benchlib.percentile(timings[BASELINE], 95)
    rows = []
    for name, values in timings.items():
        if not values:
            continue
        p95 = benchlib.percentile(values, 95)
        rows.append(
            [
                name,
                f"{len(values):,}",
                fmt(len(values) / seconds, 1),
                fmt(benchlib.percentile(values, 50), 1),
                fmt(p95, 1),
                fmt(max(values), 1),
                benchlib.ratio(p95, base_p95),
            ]
        )
    return rows


async def run(db: benchlib.BenchDb, args: Any) -> None:
    await benchlib.header("opendata", db, args.rows, f", {args.readers} readers")
    release_seconds = await publish(db, args.rows)
    note(f"release 1 ({args.rows:,} rows) written in {release_seconds:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env.update(
        {
            "HYPERVISION_DATABASE_URL": db.url,
            "HYPERVISION_DATA_DIR": str(db.data_dir),
            "HYPERVISION_SECRET_KEY": benchlib.BENCH_SECRET,
            "HYPERVISION_OPENDATA_RATE_PER_SECOND": "100000",
            "HYPERVISION_OPENDATA_BURST": "1000000",
            "HYPERVISION_OPENDATA_CACHE_SECONDS": "60" if args.cache else "0",
        }
    )
    log = Path(tempfile.mkdtemp(prefix="hv_bench_opendata_")) / "server.log"
    argv = [sys.executable, "-m", "hypervision", "serve", "--host", HOST, "--port", "{port}"]
    server = start_server("hypervision", [*argv, "--workers", str(args.workers)], env, log)
    try:
        await server.wait_ready("/healthz")
        import httpx

        async with httpx.AsyncClient(base_url=server.base) as client:
            meta = await client.get(f"/opendata/api/datasets/{SLUG}")
            meta.raise_for_status()
            tag = meta.headers["etag"]
        cases = cases_of(tag, args.random_pages)
        pages = max(args.rows // 50, 1)
        if args.seconds > 0:
            warm = argparse_copy(args, readers=min(args.readers, 20), seconds=2.0, clients=1)
            await load("closed", server.base, warm, cases, pages)
            for mode, title in (
                (
                    "open",
                    f"Open loop: {args.readers} anonymous readers, each {args.rate:g} "
                    f"request(s)/s on average (Poisson arrivals, "
                    f"{args.readers * args.rate:g} req/s offered), latency from the arrival",
                ),
                (
                    "closed",
                    f"Closed loop (saturation): {args.readers} readers back to back, no think time",
                ),
            ):
                load_before = os.getloadavg()[0]
                timings, wall, client_cpu = await load(mode, server.base, args, cases, pages)
                total = sum(map(len, timings.values()))
                show(
                    f"{title}: {total:,} requests in {wall:.1f} s = {total / wall:,.0f} req/s, "
                    f"{args.workers} worker(s), {args.clients} client process(es) using "
                    f"{client_cpu:.1f} CPU s, cache {'on' if args.cache else 'off'}, "
                    f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}",
                    ["case", "n", "req/s", "p50 ms", "p95 ms", "max ms", "p95 / baseline p95"],
                    latency_rows(timings, wall),
                )
        rows = []
        for fmt_name in args.formats.split(","):
            took, size, before, highest = await download(server.base, server.pid, fmt_name)
            rows.append(
                [
                    fmt_name,
                    f"{args.rows:,}",
                    fmt(size / 1e6, 1),
                    fmt(took, 1),
                    fmt(size / 1e6 / took, 1),
                    f"{before / 1024:,.0f} MiB",
                    f"{highest / 1024:,.0f} MiB",
                    f"{(highest - before) / 1024:,.0f} MiB",
                    benchlib.ratio((highest - before) * 1024, size),
                ]
            )
        show(
            f"Downloads of the latest release, streamed (load average {os.getloadavg()[0]:.2f})",
            [
                "format",
                "rows",
                "MB",
                "seconds",
                "MB/s",
                "server RSS before",
                "highest",
                "growth",
                "growth / file",
            ],
            rows,
        )
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            log.unlink()


def argparse_copy(args: Any, **changes: Any) -> Any:
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


def main() -> None:
    p = benchlib.parser(__doc__.split("\n\n")[0], default_rows=200_000)
    p.add_argument("--readers", type=int, default=200, help="clients at once (default 200)")
    p.add_argument("--rate", type=float, default=1.0, help="requests/s per reader (default 1)")
    p.add_argument("--seconds", type=float, default=20.0, help="per load phase (0: downloads only)")
    p.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    p.add_argument(
        "--random-pages",
        action="store_true",
        help="add a random rows page to the mix (uncached: every one a miss)",
    )
    p.add_argument("--no-cache", dest="cache", action="store_false", help="cache off (compare)")
    p.add_argument(
        "--formats", default="csv,parquet", help="downloads measured (default csv,parquet)"
    )
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
