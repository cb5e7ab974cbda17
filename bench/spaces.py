# ruff: noqa: T201 - benchmarks print their figures
"""Spaces (issue 18): first render of a 12-module space, each module's data, live refresh.

    python bench/spaces.py --engine postgresql --rows 1000000 [--entries N] [--clients 500]
        [--renders 20] [--requests 30] [--live-events 3] [--debounce 0.3] [--each]

Data: ``--rows`` rows of ``product_import_read``'s 12-column product, imported with
``products.import_data`` under ``products.py``'s row and column rules (``import_once``), and
``--entries`` entries (default: ``--rows``) bulk-loaded with ``feed_search``'s loaders and
world (eight organisations, three need-to-know groups, labels spread). One space of 12
modules (2 key figures, 3 charts — entries by hour, a product grouped sum, a product by time
bucket —, feed, map, 2 tables, situations, synthesis, text) is made through
``POST /api/v1/spaces`` by the reader, ``bench.restricted`` (NP, one organisation of eight, no
group: sees a fraction of the entries; the product's row rule hides its red rows from them and
its column rule a column). Then ``hypervision serve`` (one worker, as deployed) serves the
throw-away database, and over real HTTP on 127.0.0.1:

1. **First render**, ``--renders`` times: ``GET /espaces/{id}`` then its 12 module fragments
   ``/espaces/{id}/modules/{mid}`` at once, over at most ``--browser-connections`` (default 6,
   a browser's HTTP/1.1 connections per origin) kept-alive connections; time from the page's
   request to the last fragment. Target p95 < 1 s.
2. **Module data**: ``GET /api/v1/spaces/{id}/modules/{mid}/data`` (bearer) per module,
   interleaved ``--requests`` times, against baselines of the same run: ``GET
   /api/v1/entries?limit=20``, ``GET /api/v1/products/{id}/aggregate`` grouped by department
   and ``/healthz``. Target p95 < 300 ms.
3. **Live**, for each size of ``--clients`` (comma-separated, e.g. ``10,100,500``): K streams
   opened as the space's page opens its one stream (session cookie, the page's topics), then
   ``--live-events`` entry creations (``POST /api/v1/entries``, a label every reader may see)
   and as many product imports (``POST /api/v1/products/{id}/imports``, ``upsert`` of
   ``--import-rows`` rows), one at a time. Each client does what ``static/spaces.js`` does: on an
   event of a topic, it waits ``--debounce`` seconds (the page's gathering window, 0.3 s) and
   fetches the modules that listen to that topic (``modules.LIVE``) in one request, ``GET
   /espaces/{id}/modules?modules=a,b,c`` (ADR 0051; ``--each``: one fragment per module, as
   the page did before, over its own ``--browser-connections`` - 1 connections — the stream
   holds one). Per client and event:
   **delivery** = receipt − the event's ``at`` (the outbox row's insert, just before the
   commit; for an import it includes the rows' write), also − the writer's response (after the
   commit: a lower bound); **refetch** = from the debounce's end to the last fragment;
   **updated** = receipt − ``at`` + debounce + refetch. That was the page before ADR 0052,
   measured with ``--pull``. By default the streams watch the space (``space=<id>``, as
   app.js opens them) and the modules come pushed: **updated** = the arrival of the
   ``space.modules`` frame carrying the modules the event changed (one push carries them all;
   a module whose content is the same is not sent again) − ``at``; **refresh** = that
   arrival − the event's. Each import upserts ``--import-rows`` rows with new values.
   Target: every open module updated within 1 s p99.

Timings never fail the run. SQLite works too (``--engine sqlite``), slowly at 1M.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
import feed_search
from benchlib import LATENCY_HEADERS, Latency, fmt, note, ratio, show
from live_client import SSE
from product_import_read import make_csv

import live
from products import import_once

HOST = "127.0.0.1"
ERRORS: dict[str, int] = {}  # answers other than 200 of the timed requests, by status and body
# The page's stream (static/app.js on a space's page): entry, comment + product, situation, space.
PAGE_TOPICS = ("entry", "comment", "product", "situation", "space")
# What each module type listens to (spaces.modules.LIVE): the page refreshes on these topics.
LIVE_TOPICS = {
    "feed": ("entry",),
    "map": ("entry",),
    "table": ("product",),
    "chart": ("entry", "product"),
    "kpi": ("entry", "product"),
    "synthesis": ("synthesis",),
    "situations": ("situation",),
}


def space_modules(product_id: str) -> list[dict[str, Any]]:
    """The 12 modules, on a 3 × 4 grid."""
    pid = product_id
    specs: list[tuple[str, str, str, dict[str, Any]]] = [
        ("kpi-entrees", "kpi", "Évènements 24 h",
         {"source": "entries", "filter": {"hours": 24}, "trend_hours": 24}),
        ("kpi-lits", "kpi", "Lits",
         {"source": "product", "product_id": pid, "measure": "sum:lits"}),
        ("chart-heures", "chart", "Évènements par heure",
         {"source": "entries", "group_by": "occurred_at", "bucket": "hour", "kind": "line",
          "filter": {"hours": 48}}),
        ("chart-dept", "chart", "Lits par département",
         {"source": "product", "product_id": pid, "group_by": "departement",
          "measure": "sum:lits"}),
        ("chart-semaines", "chart", "Lignes par semaine",
         {"source": "product", "product_id": pid, "group_by": "jour", "bucket": "week",
          "kind": "line"}),
        ("fil", "feed", "Fil", {"limit": 10}),
        ("carte", "map", "Carte", {}),
        ("table-lits", "table", "Établissements", {"product_id": pid, "limit": 20}),
        ("table-idf", "table", "Île-de-France par taux",
         {"product_id": pid, "sort": "-taux", "filters": ["departement:in:75,92,93,94"],
          "limit": 20}),
        ("situations", "situations", "Situations", {}),
        ("synthese", "synthesis", "Dernière synthèse", {}),
        ("texte", "text", "Consignes", {"markdown": "**Consignes** : point de situation à 18 h."}),
    ]  # fmt: skip
    return [
        {"id": i, "type": t, "title": title, "x": (n % 3) * 4, "y": (n // 3) * 4, "w": 4, "h": 4,
         "config": config}
        for n, (i, t, title, config) in enumerate(specs)
    ]  # fmt: skip


# --- data -------------------------------------------------------------------------------------


@dataclass
class Setup:
    product_id: str = ""
    space_id: str = ""
    modules: list[dict[str, Any]] = field(default_factory=list)
    usernames: dict[str, str] = field(default_factory=dict)  # reader, writer, steward
    # each module's live topics as the page lists them (data-live): a kind (entry) or one
    # product (product:<id>, ADR 0047); before that, modules.LIVE by type
    live: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


async def seed(db: benchlib.BenchDb, args: Any) -> Setup:
    from sqlalchemy import func, select, text

    from hypervision.app import create_app
    from hypervision.logbook import entries as entries_service
    from hypervision.logbook.models import Entry
    from hypervision.policy.roles import Role
    from hypervision.policy.rules import visible_filter
    from hypervision.products.models import storage_table_name

    # the 1M import's INSERT … SELECT outlasts the default 15 s statement timeout under load
    settings = benchlib.bench_settings(
        db, product_max_bytes=2_000_000_000, db_statement_timeout_seconds=900
    )
    app = create_app(settings)
    sessions, passwords = app.state.sessions, app.state.passwords
    setup = Setup()
    world = await feed_search.build_world(app)
    watch = benchlib.Stopwatch()
    if db.engine == "postgresql":
        await feed_search.seed_postgres(db, world, args.entries, settings.categories)
    else:
        await asyncio.to_thread(
            feed_search.seed_sqlite, db, world, args.entries, settings.categories
        )
    setup.counts["entries seconds"] = watch.seconds
    health = str((await benchlib.make_org(sessions, "SANTE")).id)
    await benchlib.make_group(sessions, "MEDICAL")
    steward_user = await benchlib.make_user(
        sessions, settings, passwords, "steward", "SANTE", roles=[Role.DATA_STEWARD],
        clearance="DR", groups=["MEDICAL"],
    )  # fmt: skip
    steward = await benchlib.principal_of(sessions, steward_user.id)
    path = db.data_dir / "lits.csv"
    await asyncio.to_thread(path.write_bytes, make_csv(args.rows))
    note(f"importing {args.rows:,} product rows")
    product, seconds = await import_once(app, steward, health, path, 1)
    setup.counts["import seconds"] = seconds
    setup.product_id = str(product.id)
    async with app.state.engine.begin() as conn:
        if db.engine == "postgresql":  # what autovacuum does within a minute of the import
            await conn.execute(text(f'ANALYZE "{storage_table_name(product.id)}"'))
    reader = await benchlib.principal_of(sessions, world.users["restricted"].id)
    async with sessions() as session:
        subject = entries_service.subject_of(settings, reader)
        setup.counts["entries"] = await session.scalar(select(func.count()).select_from(Entry))
        setup.counts["visible"] = await session.scalar(
            select(func.count()).select_from(Entry).where(visible_filter(subject, Entry, db.engine))
        )
    setup.usernames = {
        "reader": world.users["restricted"].username,
        "writer": "author.c",  # ORG-C, DR, every group
        "steward": steward_user.username,
    }
    await app.state.engine.dispose()
    return setup


# --- the server and its clients ----------------------------------------------------------------


def serve(db: benchlib.BenchDb, args: Any) -> live.Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env.update(
        {
            "HYPERVISION_DATABASE_URL": db.url,
            "HYPERVISION_DATA_DIR": str(db.data_dir),
            "HYPERVISION_SECRET_KEY": benchlib.BENCH_SECRET,
            "HYPERVISION_ARGON2_TIME_COST": "1",
            "HYPERVISION_ARGON2_MEMORY_KIB": "8",
            "HYPERVISION_ARGON2_PARALLELISM": "1",
            "HYPERVISION_LOGIN_IP_MAX_FAILURES": "100000",
            "HYPERVISION_PRODUCT_MAX_BYTES": "2000000000",
        }
    )
    # ``hypervision serve``, launched so that its command line does not read "hypervision
    # serve": twice a run's server shut down mid-run on the shared machine (uvicorn's
    # "Shutting down", not asked by this script), as if a clean-up of other sessions' servers
    # matched it by name; launched this way it did not recur (the cause is not proven).
    launch = "import sys; from hypervision.cli import app; sys.argv[0] = 'hv-bench'; app()"
    argv = [sys.executable, "-c", launch, "serve", "--host", HOST, "--port", "{port}",
            "--workers", str(args.workers)]  # fmt: skip
    return live.start_server("hypervision", argv, env, db.data_dir / "server.log")


async def bearer(http: Any, username: str) -> dict[str, str]:
    r = await http.post(
        "/api/v1/auth/token", data={"username": username, "password": benchlib.PASSWORD}
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def web_session(http: Any, username: str) -> str:
    """A session cookie from the sign-in form (read from Set-Cookie: it is Secure)."""
    r = await http.post(
        "/connexion", data={"username": username, "password": benchlib.PASSWORD, "suite": "/"}
    )
    for value in r.headers.get_list("set-cookie"):
        found = re.match(r"hv_session=([^;]+)", value)
        if found:
            return found.group(1)
    raise RuntimeError(f"no session cookie from /connexion: {r.status_code} {r.text[:200]}")


async def timed_get(http: Any, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    r = await http.get(url, headers=headers)
    seconds = time.perf_counter() - started
    if r.status_code != 200:  # counted (a busy shared machine: 503 when the pool times out)
        ERRORS[f"{r.status_code} {r.text[:120]}"] = (
            ERRORS.get(f"{r.status_code} {r.text[:120]}", 0) + 1
        )
        note(f"GET {url}: {r.status_code} {r.text[:200]}")
    return seconds, r


# --- 1. first render and module data -------------------------------------------------------------


async def first_render(base: str, setup: Setup, cookie: str, args: Any) -> dict[str, Any]:
    import httpx

    headers = {"Cookie": f"hv_session={cookie}"}
    fragment = {"Cookie": f"hv_session={cookie}", "HX-Request": "true",
                "X-Hypervision-Background": "1"}  # fmt: skip
    limits = httpx.Limits(max_connections=args.browser_connections)
    page_s: list[float] = []
    totals: list[float] = []
    per_module: dict[str, list[float]] = {m["id"]: [] for m in setup.modules}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        for n in range(args.warmup + args.renders):
            started = time.perf_counter()
            seconds, page = await timed_get(http, f"/espaces/{setup.space_id}", headers)
            ids = re.findall(r'data-module="([^"]+)"', page.text)
            assert len(ids) == len(setup.modules), ids
            done = await asyncio.gather(
                *(timed_get(http, f"/espaces/{setup.space_id}/modules/{i}", fragment) for i in ids)
            )
            total = time.perf_counter() - started
            if n < args.warmup:
                continue
            page_s.append(seconds)
            totals.append(total)
            for i, (s, _) in zip(ids, done, strict=True):
                per_module[i].append(s)
    return {"page": Latency.of(page_s), "total": Latency.of(totals),
            "modules": {i: Latency.of(v) for i, v in per_module.items()}}  # fmt: skip


async def module_data(
    base: str, setup: Setup, token: dict[str, str], cookie: str, args: Any
) -> dict[str, Any]:
    import httpx

    fragment = {"Cookie": f"hv_session={cookie}", "HX-Request": "true",
                "X-Hypervision-Background": "1"}  # fmt: skip

    cases = {
        f"{m['type']} — {m['id']}": f"/api/v1/spaces/{setup.space_id}/modules/{m['id']}/data"
        for m in setup.modules
    }
    baselines = {
        "baseline: GET /entries?limit=20": "/api/v1/entries?limit=20",
        "baseline: product aggregate (departement, sum:lits)":
            f"/api/v1/products/{setup.product_id}/aggregate?group_by=departement&measure=sum:lits",
        "baseline: /healthz": "/healthz",
    }  # fmt: skip
    # the same reads as the page's fragments, one at a time: the web route's own cost
    fragments = {
        f"fragment, alone — {i}": f"/espaces/{setup.space_id}/modules/{i}"
        for i in ("texte", "kpi-lits", "chart-heures")
    }
    samples: dict[str, list[float]] = {k: [] for k in (*cases, *baselines, *fragments)}
    statuses: dict[str, str] = {}
    spent = dict.fromkeys(samples, 0.0)
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        for name, url in cases.items():  # warm-up, and what each module answers
            _, r = await timed_get(http, url, token)
            if r.status_code != 200:
                statuses[name] = f"HTTP {r.status_code}"
                continue
            body = r.json()
            statuses[name] = f"{body['status']}, {len(r.content):,} B, label {body['label']}"
        for _ in range(args.requests):
            for name, url in (*cases.items(), *baselines.items(), *fragments.items()):
                if spent[name] > args.budget:
                    continue
                seconds, _ = await timed_get(
                    http, url, fragment if url in fragments.values() else token
                )
                samples[name].append(seconds)
                spent[name] += seconds
    return {"lat": {k: Latency.of(v) for k, v in samples.items()}, "statuses": statuses}


# --- 3. live -----------------------------------------------------------------------------------


class PageStream(SSE):
    """A stream that tells its page of each event (``on_event(client, ident, frame, now)``)
    and of each space event without id (``on_space(client, frame, now)``: the watch, pushed
    modules, ADR 0052)."""

    __slots__ = ("client", "on_event", "on_space", "seen")

    def named(self, frame: bytes, now: float) -> None:
        if frame.startswith(b"event: space."):
            self.on_space(self.client, frame, now)
        else:
            super().named(frame, now)

    def data_received(self, data: bytes) -> None:
        before = len(self.ids)
        super().data_received(data)
        for k in range(before, len(self.ids)):
            ident = self.ids[k]
            self.on_event(self.client, ident, self.events[ident], self.times[k])


@dataclass
class Receipt:
    client: int
    ident: int
    kind: str
    received: float  # time.time()
    at: float  # the event's at (outbox insert)
    refetch: float = math.nan  # seconds, debounce end → last fragment
    failures: int = 0
    modules: tuple[str, ...] = ()  # those the event refreshes
    pushed: float = math.nan  # time.time() the stream brought them all (push, ADR 0052)


def parse_frame(frame: bytes) -> tuple[str, dict[str, Any]]:
    kind, data = "", "{}"
    for line in frame.decode().split("\n"):
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
    return kind, json.loads(data)


class Pages:
    """K open spaces: one stream each, and the refetches spaces.js would make."""

    def __init__(self, base: str, setup: Setup, cookies: Sequence[str], args: Any) -> None:
        import httpx

        self.setup, self.cookies, self.args = setup, cookies, args
        self.events: dict[int, bytes] = {}
        self.streams: list[PageStream] = []
        self.receipts: list[Receipt] = []
        self.waiting: dict[int, list[Receipt]] = {}  # push: per client, events not yet pushed
        self.watched = 0  # streams told space.watch
        self.push_bytes: list[int] = []  # each space.modules frame received
        self.carried: list[int] = []  # of the modules an event concerns, how many came
        self.tasks: set[asyncio.Task[None]] = set()
        per_page = max(1, args.browser_connections - 1)  # the stream holds one
        self.gates: list[asyncio.Semaphore] = []
        self.per_page = per_page
        self.http = httpx.AsyncClient(
            base_url=base, timeout=120,
            limits=httpx.Limits(max_connections=min(2000, args.max_clients * per_page),
                                max_keepalive_connections=min(2000, args.max_clients * per_page)),
        )  # fmt: skip

    def on_event(self, client: int, ident: int, frame: bytes, received: float) -> None:
        kind, payload = parse_frame(frame)
        at = payload.get("at")
        stamp = time_of(at) if at else math.nan
        receipt = Receipt(client, ident, kind, received, stamp)
        self.receipts.append(receipt)
        topic = kind.split(".")[0]
        one = f"{topic}:{payload.get('resource_id')}"
        ids = [m["id"] for m in self.setup.modules
               if topic in self.setup.live[m["id"]] or one in self.setup.live[m["id"]]]  # fmt: skip
        if ids and not self.args.pull:  # the modules come through the stream
            receipt.modules = tuple(ids)
            self.waiting.setdefault(client, []).append(receipt)
        elif ids:
            task = asyncio.get_running_loop().create_task(self.refetch(receipt, ids))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def on_space(self, client: int, frame: bytes, received: float) -> None:
        # A browser parses its own frames on its own CPU: here one process reads 500 pages'
        # streams, so a pushed frame (tens of KB) is searched, not decoded — a module is in
        # it when its key opens a non-empty string (quotes inside the HTML are escaped).
        if frame.startswith(b"event: space.watch"):
            self.watched += 1
        elif frame.startswith(b"event: space.modules"):
            self.push_bytes.append(len(frame))
            left = []
            for receipt in self.waiting.get(client, []):
                # one push carries every module an event changed (a module whose content is
                # the same is not sent again, ADR 0052): the first frame naming one of them
                carried = sum(f'"{m}":"<'.encode() in frame for m in receipt.modules)
                if carried:
                    receipt.pushed = received
                    self.carried.append(carried)
                else:
                    left.append(receipt)
            self.waiting[client] = left
        elif frame.startswith(b"event: space.refresh"):
            key = "push: space.refresh (the server could not push)"
            ERRORS[key] = ERRORS.get(key, 0) + 1

    async def refetch(self, receipt: Receipt, ids: list[str]) -> None:
        await asyncio.sleep(self.args.debounce)
        cookie = self.cookies[receipt.client % len(self.cookies)]
        headers = {"Cookie": f"hv_session={cookie}", "HX-Request": "true",
                   "X-Hypervision-Background": "1"}  # fmt: skip
        gate = self.gates[receipt.client]
        started = time.perf_counter()

        async def one(mid: str) -> None:
            async with gate:
                try:
                    r = await self.http.get(
                        f"/espaces/{self.setup.space_id}/modules/{mid}", headers=headers
                    )
                    receipt.failures += r.status_code != 200
                    if r.status_code != 200:
                        key = f"refetch: HTTP {r.status_code}"
                        ERRORS[key] = ERRORS.get(key, 0) + 1
                except Exception as exc:  # noqa: BLE001 - counted, never fatal
                    receipt.failures += 1
                    key = f"refetch: {type(exc).__name__}"
                    ERRORS[key] = ERRORS.get(key, 0) + 1

        async def together() -> None:  # the page's one request (spaces.js, ADR 0051)
            async with gate:
                try:
                    r = await self.http.get(
                        f"/espaces/{self.setup.space_id}/modules",
                        params={"modules": ",".join(ids)},
                        headers=headers,
                    )
                    wrong = r.status_code != 200 or r.text.count("data-fragment=") != len(ids)
                    receipt.failures += len(ids) if wrong else 0
                    if wrong:
                        key = f"refetch (together): HTTP {r.status_code}"
                        ERRORS[key] = ERRORS.get(key, 0) + 1
                except Exception as exc:  # noqa: BLE001 - counted, never fatal
                    receipt.failures += len(ids)
                    key = f"refetch (together): {type(exc).__name__}"
                    ERRORS[key] = ERRORS.get(key, 0) + 1

        if self.args.each:
            await asyncio.gather(*(one(m) for m in ids))
        else:
            await together()
        receipt.refetch = time.perf_counter() - started

    async def open(self, port: int, count: int) -> float:
        loop = asyncio.get_running_loop()
        query = "&".join(f"topic={t}" for t in self.args.topics)
        if not self.args.pull:  # the page's stream watches its space (app.js, ADR 0052)
            query += f"&space={self.setup.space_id}&lang=fr"
        path = f"/api/v1/stream?{query}"
        slots = asyncio.Semaphore(8)
        started = time.perf_counter()

        async def one(client: int) -> None:
            cookie = self.cookies[client % len(self.cookies)]
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\nCookie: hv_session={cookie}\r\n\r\n"
            ).encode("latin-1")
            for attempt in range(5):
                async with slots:
                    ready: asyncio.Future[bool] = loop.create_future()
                    proto = PageStream(client, request, self.events, ready)
                    proto.client, proto.on_event = client, self.on_event
                    proto.on_space = self.on_space
                    with contextlib.suppress(OSError, TimeoutError):
                        await asyncio.wait_for(
                            loop.create_connection(lambda p=proto: p, HOST, port), 30
                        )
                        if await asyncio.wait_for(ready, 30):
                            self.streams.append(proto)
                            return
                    if proto.transport is not None:
                        proto.transport.abort()
                    if attempt == 4:
                        raise RuntimeError(
                            f"stream {client} not opened: {proto.error or proto.closed}"
                        )
                await asyncio.sleep(0.5 * (attempt + 1))

        first = len(self.streams)
        self.gates.extend(asyncio.Semaphore(self.per_page) for _ in range(first, first + count))
        await asyncio.gather(*(one(c) for c in range(first, first + count)))
        return time.perf_counter() - started

    async def settle(self, idents: set[int], clients: int, seconds: float) -> None:
        """Until every client received every event and its refetches ended (or ``seconds``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = sum(1 for r in self.receipts if r.ident in idents)
            unpushed = any(rs for rs in self.waiting.values())
            if got >= clients * len(idents) and not self.tasks and not unpushed:
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for s in self.streams:
            if s.transport is not None:
                s.transport.abort()
        for t in list(self.tasks):
            t.cancel()
        await self.http.aclose()


def time_of(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


class LiveProfile:
    """py-spy (``--py-spy PATH``, installed outside the project) on the server during the live
    events: the functions the most samples were in (inclusive) and spent their own time in."""

    MINE = ("hypervision/", "jinja2/", "sqlalchemy/", "asyncpg/", "starlette/", "fastapi/")

    def __init__(self, exe: str, out: Path) -> None:
        self.exe, self.out = exe, out
        self.proc: Any = None

    def start(self, pid: int) -> None:
        import subprocess

        argv = [self.exe, "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o",
                str(self.out), "--nonblocking", "--function", "--subprocesses"]  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603 - the path given on the command line
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def finish(self) -> list[list[str]]:
        if self.proc is None or not benchlib.py_spy_done(self.proc, self.out, interrupt=True):
            return []
        total = 0
        inclusive: dict[str, int] = {}
        own: dict[str, int] = {}
        for count, frames in benchlib.py_spy_samples(self.out):
            total += count
            for name in {f for f in frames if any(m in f for m in self.MINE)}:
                inclusive[name] = inclusive.get(name, 0) + count
            own[frames[-1]] = own.get(frames[-1], 0) + count
        top = sorted(inclusive.items(), key=lambda kv: -kv[1])[:40]
        rows = [["inclusive: " + k[-110:], f"{100 * v / total:.1f} %"] for k, v in top]
        rows += [["self: " + k[-110:], f"{100 * v / total:.1f} %"]
                 for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:15]]  # fmt: skip
        rows.append(["samples (100 Hz)", str(total)])
        return rows


async def live_phase(
    server: live.Server, setup: Setup, cookies: list[str], tokens: dict[str, Any], args: Any
) -> list[list[str]]:
    import httpx

    rows: list[list[str]] = []
    pages = Pages(server.base, setup, cookies, args)
    imported = 0  # each import changes the rows (another seed): the same rows push nothing
    raw = Path(args.py_spy_raw) if args.py_spy_raw else args.data_dir / "py-spy.txt"
    profile = LiveProfile(args.py_spy, raw) if args.py_spy else None
    if profile is not None:
        profile.start(server.proc.pid)
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=300) as writer:
            opened = 0
            for size in args.clients:
                seconds = await pages.open(server.port, size - opened)
                opened = size
                note(f"{size} streams open ({seconds:.1f} s); load {os.getloadavg()[0]:.1f}")
                await asyncio.sleep(1)
                done: dict[str, list[tuple[int, float]]] = {"entry": [], "product": []}
                for n in range(args.live_events):
                    for what in ("entry", "product"):
                        upsert = b""
                        if what == "product":
                            imported += 1
                            upsert = await asyncio.to_thread(
                                make_csv, min(args.import_rows, args.rows), 100 + imported
                            )
                        ident, committed = await write_one(writer, setup, tokens, what, n, upsert)
                        done[what].append((ident, committed))
                        await pages.settle({ident}, size, args.settle)
                        await asyncio.sleep(args.debounce + 0.2)
                for what, events in done.items():
                    rows.append(live_row(pages, size, what, events, cpu=None))
                    note(" | ".join(rows[-1]))
    finally:
        args.watched = pages.watched
        if pages.push_bytes:
            note(
                f"space.modules frames: {len(pages.push_bytes):,}, "
                f"{sum(pages.push_bytes) / len(pages.push_bytes) / 1024:,.1f} KiB each on "
                f"average, {sum(pages.carried) / max(1, len(pages.carried)):.1f} of the "
                "event's modules in each (those whose content changed)"
            )
        await pages.close()
        if profile is not None:
            show("Where the server's CPU goes during the live phase (py-spy, share of samples)",
                 ["function", "share"], profile.finish())  # fmt: skip
    return rows


async def write_one(
    writer: Any, setup: Setup, tokens: dict[str, Any], what: str, n: int, upsert: bytes
) -> tuple[int, float]:
    """One entry or one import; the outbox id of its event (from the response's resource) and
    the time its response arrived (after the commit)."""
    if what == "entry":
        body = {"title": f"Point de situation {n}", "body": "Relevé de la cellule.",
                "category": "security", "severity": "major",
                "label": {"level": "NP", "need_to_know": [], "audience": []}}  # fmt: skip
        r = await writer.post("/api/v1/entries", json=body, headers=tokens["writer"])
        rid = r.json().get("id") if r.status_code == 201 else None
    else:
        files = {"file": ("lits.csv", upsert, "text/csv")}
        r = await writer.post(
            f"/api/v1/products/{setup.product_id}/imports", files=files, data={"mode": "upsert"},
            headers=tokens["steward"],
        )  # fmt: skip
        rid = setup.product_id if r.status_code == 201 else None
    committed = time.time()
    if rid is None:
        raise RuntimeError(f"{what}: {r.status_code} {r.text[:300]}")
    return await outbox_id(setup, what, rid), committed


async def outbox_id(setup: Setup, what: str, rid: str) -> int:
    import asyncpg  # PostgreSQL only for the live phase's bookkeeping; SQLite below

    if setup.counts["dsn"].endswith(".db"):
        import sqlite3

        conn = sqlite3.connect(setup.counts["dsn"])
        try:
            row = conn.execute(
                "SELECT max(id) FROM outbox WHERE resource_id IN (?, ?)",
                (rid, rid.replace("-", "")),
            ).fetchone()
        finally:
            conn.close()
        return int(row[0])
    conn = await asyncpg.connect(setup.counts["dsn"])
    try:
        return int(
            await conn.fetchval("SELECT max(id) FROM outbox WHERE resource_id = $1::uuid", rid)
        )
    finally:
        await conn.close()


def live_row(
    pages: Pages, size: int, what: str, events: list[tuple[int, float]], cpu: Any
) -> list[str]:
    idents = {i for i, _ in events}
    committed = dict(events)
    got = [r for r in pages.receipts if r.ident in idents and r.client < size]
    delivery = [r.received - r.at for r in got]
    after_commit = [r.received - committed[r.ident] for r in got]
    if pages.args.pull:  # the page asks (ADR 0051): delivery + its wait + its request
        refetch = [r.refetch for r in got if not math.isnan(r.refetch)]
        updated = [r.received - r.at + pages.args.debounce + r.refetch for r in got
                   if not math.isnan(r.refetch)]  # fmt: skip
        failures = sum(r.failures for r in got)
    else:  # pushed (ADR 0052): from the event's delivery to the modules' arrival
        pushed = [r for r in got if r.modules]
        refetch = [r.pushed - r.received for r in pushed if not math.isnan(r.pushed)]
        updated = [r.pushed - r.at for r in pushed if not math.isnan(r.pushed)]
        failures = sum(len(r.modules) for r in pushed if math.isnan(r.pushed))
    expected = size * len(events)
    ms = [x * 1000 for x in delivery]
    return [
        f"{size} × {what}",
        f"{len(got)}/{expected}",
        fmt(live.pct(sorted(ms), 50)),
        fmt(live.pct(sorted(ms), 99)),
        fmt(live.pct(sorted(x * 1000 for x in after_commit), 99)),
        fmt(live.pct(sorted(x * 1000 for x in refetch), 50)),
        fmt(live.pct(sorted(x * 1000 for x in refetch), 99)),
        fmt(live.pct(sorted(x * 1000 for x in updated), 99)),
        str(failures),
    ]


LIVE_HEADERS = [
    "clients × event", "received", "delivery p50 ms", "delivery p99 ms",
    "after response p99 ms", "refresh p50 ms", "refresh p99 ms",
    "updated p99 ms", "failed fragments",
]  # fmt: skip


# --- run ----------------------------------------------------------------------------------------


async def run(db: benchlib.BenchDb, args: Any) -> None:
    import httpx

    extra = f", {args.entries:,} entries, clients {','.join(map(str, args.clients))}"
    await benchlib.header("spaces", db, args.rows, extra)
    setup = await seed(db, args)
    setup.counts["dsn"] = db.dsn
    args.data_dir = db.data_dir
    show("Data set", ["figure", "value"], [
        ["product rows (import, s)", f"{args.rows:,} ({setup.counts['import seconds']:.1f} s)"],
        ["entries (bulk load, s)",
         f"{setup.counts['entries']:,} ({setup.counts['entries seconds']:.1f} s)"],
        ["entries the reader may see", f"{setup.counts['visible']:,}"],
    ])  # fmt: skip
    server = serve(db, args)
    try:
        await server.wait_ready("/healthz")
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as http:
            tokens = {k: await bearer(http, u) for k, u in setup.usernames.items()}
            r = await http.post("/api/v1/spaces", headers=tokens["reader"], json={
                "title": "PC de site", "modules": space_modules(setup.product_id)})  # fmt: skip
            if r.status_code != 201:
                raise RuntimeError(f"POST /spaces: {r.status_code} {r.text[:500]}")
            setup.space_id, setup.modules = r.json()["id"], r.json()["modules"]
            cookies = [await web_session(http, setup.usernames["reader"])
                       for _ in range(min(args.sessions, max(args.clients or [1])))]  # fmt: skip
            args.topics = await stream_topics(http, cookies[0], setup)
        await report_reads(server.base, setup, cookies[0], tokens["reader"], args)
        if args.clients:
            rows = await live_phase(server, setup, cookies, tokens, args)
            how = (
                f"the pages ask (debounce {args.debounce:.1f} s)"
                if args.pull
                else f"modules pushed ({args.watched} streams watched the space)"
            )
            show(f"Live: open spaces, an entry then an import (upsert of {args.import_rows:,} "
                 f"rows), {args.live_events} of each; {how}; load "
                 f"{os.getloadavg()[0]:.1f}", LIVE_HEADERS, rows)  # fmt: skip
            show("Live target", ["figure", "value", "target", "met"], [
                [f"updated p99 at {r[0]}", r[7] + " ms", "< 1,000 ms p99",
                 met(r[7], 1000)] for r in rows])  # fmt: skip
        log_summary(server)
        if ERRORS:
            show("Failed requests (their times are in the figures above)",
                 ["answer", "count"], [[k, str(v)] for k, v in ERRORS.items()])  # fmt: skip
    except BaseException:
        note(f"server exit code {server.proc.poll()}; its log's tail:\n{server.tail(40)}")
        raise
    finally:
        server.stop()
        if args.show_logs:
            print(f"\n```\n{server.tail(40)}\n```")


async def stream_topics(http: Any, cookie: str, setup: Setup) -> tuple[str, ...]:
    """The page's topics (app.js's own and the products the page lists in ``data-topics``;
    before ADR 0047, every product); each module's from its ``data-live``. If the stream
    refuses them (a 422), the most it takes."""
    page = await http.get(f"/espaces/{setup.space_id}", headers={"Cookie": f"hv_session={cookie}"})
    listed = re.search(r'data-topics="([^"]*)"', page.text)
    topics = PAGE_TOPICS
    if listed is not None:
        topics = ("entry", "comment", "situation", "space", *listed.group(1).split())
        print(f"\n**Note**: the page follows {', '.join(topics)} (its `data-topics`).")
    lives = dict(re.findall(r'data-module="([^"]+)" data-live="([^"]*)"', page.text))
    setup.live = {m["id"]: tuple(lives.get(m["id"], "").split()) if listed is not None
                  else LIVE_TOPICS.get(m["type"], ()) for m in setup.modules}  # fmt: skip
    query = "&".join(f"topic={t}" for t in topics)
    async with http.stream("GET", f"/api/v1/stream?{query}",
                           headers={"Cookie": f"hv_session={cookie}"}) as r:  # fmt: skip
        status = r.status_code
    if status == 200:
        return topics
    note(f"the page's stream ({len(PAGE_TOPICS)} topics) answers {status}: using 4 topics")
    print(f"\n**Note**: `/api/v1/stream?{query}` (what a space's page opens) answers {status}; "
          "the live phase subscribes to entry, product, situation, space.")  # fmt: skip
    return ("entry", "product", "situation", "space")


def log_summary(server: live.Server) -> None:
    """The server's answers other than 2xx/3xx, and its warnings, from its log."""
    counts: dict[str, int] = {}
    for line in server.log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message", ""))
        if record.get("logger") == "hypervision.access":
            parts = message.split(" ")
            if len(parts) > 2 and not parts[2].startswith(("2", "3")):
                route = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", parts[1])
                key = f"{parts[0]} {re.sub(r'/modules/[^/]+', '/modules/{mid}', route)} {parts[2]}"
                counts[key] = counts.get(key, 0) + 1
        elif record.get("level") in ("warning", "error"):
            key = f"{record['level']}: {message[:100]}"
            counts[key] = counts.get(key, 0) + 1
    if counts:
        show("Server log: failed answers and warnings", ["what", "count"],
             [[k, str(v)] for k, v in sorted(counts.items())])  # fmt: skip


def met(value: str, target: float) -> str:
    try:
        return "met" if float(value.replace(",", "")) < target else "unmet"
    except ValueError:
        return "—"


async def report_reads(
    base: str, setup: Setup, cookie: str, token: dict[str, str], args: Any
) -> None:
    render = await first_render(base, setup, cookie, args)
    show(f"First render: page + {len(setup.modules)} fragments over "
         f"{args.browser_connections} connections, {args.renders} renders",
         ["case", *LATENCY_HEADERS],
         [["whole render (page + every fragment)", *render["total"].cells()],
          ["GET /espaces/{id} alone", *render["page"].cells()],
          *([f"fragment {k}", *v.cells()] for k, v in render["modules"].items())])  # fmt: skip
    data = await module_data(base, setup, token, cookie, args)
    lat = data["lat"]
    show("Module data as the reader (what each answers)", ["module", "answer"],
         [[k, v] for k, v in data["statuses"].items()])  # fmt: skip
    entries_base = lat["baseline: GET /entries?limit=20"]
    agg_base = lat["baseline: product aggregate (departement, sum:lits)"]
    show(f"Module data: GET /api/v1/spaces/{{id}}/modules/{{mid}}/data, {args.requests} each",
         ["case", *LATENCY_HEADERS, "p50 / entries p50", "p50 / aggregate p50"],
         [[k, *v.cells(), ratio(v.p50, entries_base.p50), ratio(v.p50, agg_base.p50)]
          for k, v in lat.items()])  # fmt: skip
    worst = max((v.p95, k) for k, v in lat.items() if not k.startswith(("baseline", "fragment")))
    show("Targets", ["figure", "value", "target", "met"], [
        ["first render p95", fmt(render["total"].p95) + " ms", "< 1,000 ms",
         "met" if render["total"].p95 < 1000 else "unmet"],
        [f"module data p95, slowest ({worst[1]})", fmt(worst[0]) + " ms", "< 300 ms",
         "met" if worst[0] < 300 else "unmet"],
        *([f"module data p95, {k}", fmt(v.p95) + " ms", "< 300 ms",
           "met" if v.p95 < 300 else "unmet"] for k, v in lat.items()
          if not k.startswith(("baseline", "fragment"))),
    ])  # fmt: skip


def main() -> None:
    p = benchlib.parser(__doc__.split("\n\n")[0], default_rows=1_000_000)
    p.add_argument("--entries", type=int, help="entries (default: --rows)")
    p.add_argument("--renders", type=int, default=20, help="first renders timed (default 20)")
    p.add_argument("--requests", type=int, default=30, help="module data calls per module")
    p.add_argument("--warmup", type=int, default=2, help="untimed renders first")
    p.add_argument("--budget", type=float, default=60, help="seconds per module data case")
    p.add_argument("--browser-connections", type=int, default=6)
    p.add_argument("--clients", default="500",
                   help="open spaces, comma-separated sizes measured in turn (default 500; "
                   "0: no live phase)")  # fmt: skip
    p.add_argument("--sessions", type=int, default=50, help="web sessions the clients share")
    p.add_argument("--live-events", type=int, default=3, help="entries and imports per size")
    p.add_argument("--import-rows", type=int, default=1000, help="rows of each live import")
    p.add_argument(
        "--debounce",
        type=float,
        default=0.3,
        help="the page's wait (spaces.js: 0.3 s; 1.0 before ADR 0051)",
    )
    p.add_argument("--py-spy", help="py-spy executable (installed outside the project): "
                   "profile the server during the live phase")  # fmt: skip
    p.add_argument("--py-spy-raw", help="keep py-spy's raw samples in this file")
    p.add_argument(
        "--pull",
        action="store_true",
        help="the pages ask for their modules (ADR 0051) instead of having them "
        "pushed through their streams (ADR 0052)",
    )
    p.add_argument("--each", action="store_true",
                   help="live: one request per module (the page before ADR 0051)")  # fmt: skip
    p.add_argument("--settle", type=float, default=120, help="max seconds per live event")
    p.add_argument("--workers", type=int, default=1, help="hypervision serve --workers")
    p.add_argument("--show-logs", action="store_true")
    args = p.parse_args()
    args.entries = args.entries or args.rows
    args.clients = [int(c) for c in args.clients.split(",") if int(c) > 0]
    args.max_clients = max(args.clients or [1])
    live.raise_fd_limit(args.max_clients * args.browser_connections + 1000)
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
