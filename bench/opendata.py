# ruff: noqa: S311 - benchmarks draw their data and request order with a fixed seed
"""Open data (issue 19): public pages and API under 200 concurrent anonymous readers, and a
large release downloaded streamed.

    python bench/opendata.py --engine sqlite|postgresql --rows 200000 [--readers 200]

1. Set-up, in process: a data product of ``--rows`` rows (day, transit line, incidents,
   delays) imported through the API by a steward, proposed for publication and approved by
   a second steward (release 1 copies every row under the public principal's policy; timed).
2. A real server (``hypervision serve``, ``--workers``) on the throw-away database, rate limit
   raised out of the way. ``--readers`` anonymous clients at once, each request on its own
   connection slot, ``--requests`` times per case, interleaved: the dataset's page
   (``/opendata/{slug}``), its metadata (``/opendata/api/datasets/{slug}``), a page of 50 rows
   at a random offset, the same metadata revalidated with ``If-None-Match`` (the cached path,
   answered 304), the DCAT-AP catalogue, and ``/healthz`` as the baseline of the same server
   under the same concurrency. Prints n, p50, p95, max (ms) and each p95 / the baseline's.
3. The latest release's CSV downloaded whole: seconds, MB, rows, the server's resident memory
   before and at its highest while streaming (sampled every 50 ms), against the file's size:
   a server holding the rows would grow by at least that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402 - after the path
from benchlib import fmt, note, show  # noqa: E402

from live import HOST, rss_kib, start_server  # noqa: E402

SLUG = "incidents-transports-bench"
SCHEMA = {
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


def make_csv(rows: int) -> bytes:
    rng = random.Random(19)
    out = ["n;jour;ligne;incidents;retard_minutes"]
    for i in range(rows):
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
        imported = await client.post(
            f"/api/v1/products/{pid}/imports",
            files={"file": ("incidents.csv", make_csv(rows), "text/csv")},
            data={"mode": "replace"},
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


async def concurrent(
    base: str, readers: int, requests: int, cases: dict[str, Callable[[Any], Awaitable[Any]]]
) -> dict[str, list[float]]:
    """``requests`` calls of every case, interleaved, ``readers`` in flight at once."""
    import httpx

    timings: dict[str, list[float]] = {name: [] for name in cases}
    order = [name for _ in range(requests) for name in cases]
    random.Random(7).shuffle(order)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in order:
        queue.put_nowait(name)
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def reader() -> None:
            while not queue.empty():
                name = queue.get_nowait()
                started = time.perf_counter()
                response = await cases[name](client)
                timings[name].append((time.perf_counter() - started) * 1000)
                if response.status_code not in (200, 304):
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(reader() for _ in range(readers)))
    return timings


async def download(base: str, pid: int) -> tuple[float, int, int, int, int]:
    """Seconds, bytes, rows, resident KiB before, highest resident KiB while streaming."""
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
    size = lines = 0
    started = time.perf_counter()
    url = f"/opendata/datasets/{SLUG}/releases/latest/data.csv"
    async with (
        httpx.AsyncClient(base_url=base, timeout=3600) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    stop.set()
    await sampler
    return seconds, size, lines - 1, before, highest


def latency_rows(timings: dict[str, list[float]], baseline: str) -> list[list[str]]:
    base_p95 = benchlib.percentile(timings[baseline], 95)
    rows = []
    for name, values in timings.items():
        p95 = benchlib.percentile(values, 95)
        rows.append(
            [
                name,
                f"{len(values):,}",
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
        pages = max(args.rows // 50, 1)
        rng = random.Random(3)
        cases: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "/healthz (baseline)": lambda c: c.get("/healthz"),
            "dataset page": lambda c: c.get(f"/opendata/{SLUG}"),
            "metadata": lambda c: c.get(f"/opendata/api/datasets/{SLUG}"),
            "metadata, revalidated (304)": lambda c: c.get(
                f"/opendata/api/datasets/{SLUG}", headers={"If-None-Match": tag}
            ),
            "50 rows at a random page": lambda c: c.get(
                f"/opendata/api/datasets/{SLUG}/rows",
                params={"page": rng.randint(1, pages), "size": 50},
            ),
            "DCAT-AP catalogue": lambda c: c.get("/catalogue.jsonld"),
        }
        await concurrent(server.base, min(args.readers, 20), 3, cases)  # warm-up
        watch = time.perf_counter()
        timings = await concurrent(server.base, args.readers, args.requests, cases)
        seconds = time.perf_counter() - watch
        show(
            f"Latency at {args.readers} concurrent anonymous readers "
            f"({sum(map(len, timings.values())):,} requests in {seconds:.1f} s, "
            f"{args.workers} worker(s))",
            ["case", "n", "p50 ms", "p95 ms", "max ms", "p95 / baseline p95"],
            latency_rows(timings, "/healthz (baseline)"),
        )
        took, size, lines, before, highest = await download(server.base, server.pid)
        show(
            "Download of the latest release as CSV (streamed)",
            ["rows", "MB", "seconds", "MB/s", "server RSS before", "highest", "growth / file"],
            [
                [
                    f"{lines:,}",
                    fmt(size / 1e6, 1),
                    fmt(took, 1),
                    fmt(size / 1e6 / took, 1),
                    f"{before / 1024:,.0f} MiB",
                    f"{highest / 1024:,.0f} MiB",
                    benchlib.ratio((highest - before) * 1024, size),
                ]
            ],
        )
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            log.unlink()


def main() -> None:
    p = benchlib.parser(__doc__.split("\n\n")[0], default_rows=200_000)
    p.add_argument("--readers", type=int, default=200, help="clients at once (default 200)")
    p.add_argument("--requests", type=int, default=200, help="requests per case (default 200)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
