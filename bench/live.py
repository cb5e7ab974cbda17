# ruff: noqa: T201 - benchmarks print their figures
"""Live streams under load: N SSE clients, entries written at R per second.

    .venv/bin/python bench/live.py --engine postgresql|sqlite --clients N --rate R --seconds S
                                   [--idle N2] [--burst E]

What runs (all on 127.0.0.1):

- **the app**: ``python -m hypervision serve`` as a subprocess (one uvicorn worker, as
  deployed), on a throw-away database (temporary SQLite file, or ``hv_bench_<random>`` on the
  PostgreSQL server, made and dropped by ``benchlib.throwaway_database``) migrated with
  ``hypervision.migrate.upgrade``. Organisations (3 ministries, 4 directions, 6 services),
  need-to-know groups and users with a spread of clearances (NP/DR), groups and roles are
  created with the identity service functions; bearer tokens come from
  ``POST /api/v1/auth/token``. Sign-ins use cheap argon2 (not what is measured).
- **the baseline**: ``bench/live_baseline.py``, a minimal plain-ASGI SSE broadcaster (no
  framework, no policy, no database, no audit) run by uvicorn the same way, in its own process.
- **the load generator**: ``bench/live_client.py`` in one separate process (raw asyncio
  protocols, uvloop): N "active" streams (every topic) and N2 "idle" streams
  (``?topic=situation``: subscribed and planned by the hub like any other, but nothing in this
  run is a situation, so they get heartbeats only). Active streams cycle over the users.
- **the writer** (this process): ``POST /api/v1/entries`` at R per second for S seconds with
  varied labels (level, need-to-know, audience: everyone, the owner only, owner + another
  service, a whole ministry), from writers in four services; for the baseline
  ``POST /publish`` with a payload of the same size at the same rate.

For every entry created, the expected recipients are computed with a reference rule written
here, independently of the server's code (clearance ≥ level, need-to-know ⊆ the reader's
groups, audience empty or the reader's organisation owns it or lies under an audience
organisation), and compared with what each stream received: **missed** (expected, not
received) and **leaked** (received, not allowed) must both be 0. Duplicates and streams the
server closed (``resync``: queue full) are counted too.

**Latency** = receipt time in the generator (``time.time()`` when the chunk arrives) minus the
event's ``at``: ``outbox.created_at``, set when the outbox row is inserted in the writing
transaction, i.e. *just before* the commit (the rest of the transaction — version row, search
index, commit and its fsync — is included, so this slightly over-states commit-to-receipt).
For the baseline, ``at`` is stamped when ``/publish`` is handled, before the fan-out. Both
clocks are the same machine's. Latency is over every delivery (p50/p99/max); "fan-out done" is,
per event, the latency of its last recipient.

**Throughput**: at a fixed rate both servers deliver what they are offered (ours delivers to
the share of clients allowed, the baseline to all), so the ratio of deliveries per second
at rate R says whether we keep up, not our capacity. Capacity is read two ways: server CPU per
delivery (deliveries per server CPU-second, one asyncio process = at most one core), and with
``--burst E``: E events as fast as ``--burst-concurrency`` writers can create them, deliveries
per second from the first event to the last receipt.

**Memory and CPU per connection**: the server's VmRSS (``/proc/<pid>/status``) before any
stream (after a warm-up of 50 streams opened and closed) and once all are held, divided by the
number of streams; server CPU (``/proc/<pid>/stat``) while streams open (ms per open), over a
quiet window with every stream held (heartbeats only), and per delivery during the run. Before
the streams open, a short calibration writes at R/s with no stream connected: its server CPU
per write is taken out of the window's CPU to give the fan-out cost per delivery, and the
"fan-out capacity" (deliveries one core can push per CPU-second) — the throughput ratio to
read, since both servers are one asyncio process. The generator's and PostgreSQL's CPU and the
machine's busy share are printed too: the machine has 2 cores and everything shares them.

**Where the time goes** (app only): the hub writes one ``live.deliver`` audit record per
delivery batch *before* pushing; its ``at`` splits each delivery's latency into "event → hub
audit record" (rest of the write transaction, commit, NOTIFY, the hub's outbox read and plan)
and "hub audit record → receipt" (audit commit, push, stream tasks, socket, generator). The
events per batch come from the same records. With ``--py-spy PATH`` (py-spy installed outside
the project, e.g. ``python -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy``) the app
server is sampled while the largest set of streams opens and during the rate window.

Deployments: ``--workers N`` runs ``hypervision serve --workers N`` (CPU and RSS summed over
the workers); ``--replicas N`` runs N app servers on their own ports (streams and writes
spread over them round-robin; CPU and RSS summed), ``--bus nats`` with the NATS bus
(``HYPERVISION_LIVE_BUS=nats``) instead of LISTEN/NOTIFY.

Runs used for the issue (each under 9 minutes on 2 cores)::

    python bench/live.py --engine sqlite --clients 100 --rate 5 --seconds 10
    python bench/live.py --engine postgresql --clients 100 --rate 5 --seconds 10
    python bench/live.py --engine postgresql --clients 1500 --rate 20 --seconds 30 --burst 200
    python bench/live.py --engine postgresql --clients 500 --idle 9500 --rate 5 --seconds 20 \
        --quiet 15
    python bench/live.py --engine postgresql --clients 1500 --rate 20 --seconds 60 \
        --replicas 3 --bus nats

Exit status 1 when anything was missed or leaked; timings never fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402 - after the path
from benchlib import fmt, note, show  # noqa: E402

LEVELS = ("NP", "DR")
HOST = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")

# --- the population ---------------------------------------------------------------------------

# code -> parent code; weight: how many users an organisation gets, relatively.
ORGS: dict[str, tuple[str | None, int]] = {
    "MI": (None, 1),
    "MS": (None, 1),
    "MT": (None, 1),
    "MI-POL": ("MI", 2),
    "MI-SEC": ("MI", 2),
    "MS-ARS": ("MS", 2),
    "MT-DIR": ("MT", 2),
    "MI-POL-PARIS": ("MI-POL", 4),
    "MI-POL-LYON": ("MI-POL", 3),
    "MI-SEC-SDIS75": ("MI-SEC", 4),
    "MI-SEC-SDIS69": ("MI-SEC", 3),
    "MS-ARS-IDF": ("MS-ARS", 3),
    "MT-DIR-RATP": ("MT-DIR", 3),
}
GROUPS = ("NTK-VIP", "NTK-CBRN", "NTK-RENS", "NTK-CYBER")
WRITER_ORGS = ("MI-POL-PARIS", "MI-SEC-SDIS75", "MS-ARS-IDF", "MT-DIR-RATP")
SERVICES = [code for code in ORGS if code.count("-") == 2]
CATEGORIES = ("security", "public_order", "rescue", "health", "transport", "traffic", "weather")
SEVERITIES = ("info", "minor", "major", "critical")


def ancestry(code: str) -> frozenset[str]:
    out = [code]
    parent = ORGS[code][0]
    while parent is not None:
        out.append(parent)
        parent = ORGS[parent][0]
    return frozenset(out)


@dataclass(frozen=True)
class Reader:
    """What the reference rule needs to know about a user (codes, not ids)."""

    username: str
    org: str
    clearance: str
    groups: frozenset[str]
    role: str

    @property
    def key(self) -> tuple[object, ...]:
        return (self.clearance, self.groups, self.org)


@dataclass(frozen=True)
class LabelSpec:
    level: str
    need_to_know: frozenset[str]
    audience: frozenset[str]  # organisation codes; empty: everyone
    owner: str
    explicit: bool  # False: no label sent, the server applies its default

    def body(self) -> dict[str, Any] | None:
        if not self.explicit:
            return None
        return {
            "level": self.level,
            "need_to_know": sorted(self.need_to_know),
            "audience": sorted(self.audience),
        }


def may_read(reader: Reader, label: LabelSpec) -> bool:
    """The reference rule (independent of hypervision.policy)."""
    if LEVELS.index(reader.clearance) < LEVELS.index(label.level):
        return False
    if not label.need_to_know <= reader.groups:
        return False
    if not label.audience:
        return True
    return reader.org == label.owner or bool(label.audience & ancestry(reader.org))


def make_readers(count: int, rng: random.Random) -> list[Reader]:
    codes = list(ORGS)
    weights = [ORGS[c][1] for c in codes]
    readers = []
    for i in range(count):
        org = rng.choices(codes, weights)[0]
        clearance = "DR" if rng.random() < 0.35 else "NP"
        draw = rng.random()
        n_groups = 0 if draw < 0.55 else 1 if draw < 0.80 else 2 if draw < 0.95 else 3
        groups = frozenset(rng.sample(GROUPS, n_groups))
        role = rng.choices(["officer", "authority", "watch_officer"], [8, 1, 1])[0]
        readers.append(Reader(f"reader{i:05d}", org, clearance, groups, role))
    return readers


def make_label(rng: random.Random, owner: str) -> LabelSpec:
    """The label mix of the run (see the module docstring)."""
    draw = rng.random()
    ministry = next(iter(sorted(ancestry(owner), key=len)))
    other = rng.choice([s for s in SERVICES if s != owner])
    group = frozenset({rng.choice(GROUPS)})
    none: frozenset[str] = frozenset()
    if draw < 0.30:
        return LabelSpec("NP", none, none, owner, True)  # everyone
    if draw < 0.50:
        return LabelSpec("NP", none, frozenset({owner}), owner, False)  # the server's default
    if draw < 0.65:
        return LabelSpec("DR", none, none, owner, True)
    if draw < 0.75:
        return LabelSpec("NP", group, none, owner, True)
    if draw < 0.80:
        return LabelSpec("DR", group, none, owner, True)
    if draw < 0.90:
        return LabelSpec("NP", none, frozenset({owner, other}), owner, True)
    return LabelSpec(rng.choice(LEVELS), none, frozenset({ministry}), owner, True)


def entry_body(i: int, rng: random.Random, label: LabelSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"Bench live {i}: colis suspect secteur {rng.randint(1, 20)}",
        "body": "Périmètre établi, équipes prévenues.",
        "category": rng.choice(CATEGORIES),
        "severity": rng.choice(SEVERITIES),
        "location": {
            "type": "Point",
            "coordinates": [
                round(2.25 + rng.random() * 0.2, 5),
                round(48.8 + rng.random() * 0.1, 5),
            ],
        },
        "tags": ["bench", f"s{rng.randint(1, 20)}"],
    }
    if label.explicit:
        body["label"] = label.body()
    return body


# --- processes: /proc readings ----------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_mem(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers when ``--workers`` > 1)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server: the process and its workers."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += proc_cpu(p)
    return total


def rss_kib(pid: int) -> int:
    """VmRSS of a server: the process and its workers (summed)."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += proc_mem(p).get("VmRSS", 0)
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every process named postgres (the server is local: loopback)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm", encoding="ascii") as f:
                if f.read().strip() != "postgres":
                    continue
            out[int(name)] = proc_cpu(int(name))
        except OSError:
            continue
    return out


@dataclass
class Snapshot:
    wall: float
    server: float
    gen: float
    me: float
    sys_busy: float
    sys_total: float
    pg: dict[int, float]

    @classmethod
    def take(cls, server_pid: int, gen_pid: int, with_pg: bool) -> Snapshot:
        busy, total = benchlib.system_cpu()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            time.perf_counter(),
            tree_cpu(server_pid),
            proc_cpu(gen_pid),
            ru.ru_utime + ru.ru_stime,
            busy,
            total,
            postgres_cpu() if with_pg else {},
        )

    def since(self, before: Snapshot) -> dict[str, float]:
        wall = self.wall - before.wall
        pg = sum(v - before.pg[k] for k, v in self.pg.items() if k in before.pg)
        cores = os.cpu_count() or 1
        return {
            "wall": wall,
            "server_cpu": self.server - before.server,
            "server_pct": 100 * (self.server - before.server) / wall,
            "gen_pct": 100 * (self.gen - before.gen) / wall,
            "writer_pct": 100 * (self.me - before.me) / wall,
            "pg_pct": 100 * pg / wall if self.pg else math.nan,
            "sys_pct": 100
            * cores
            * (self.sys_busy - before.sys_busy)
            / max(1.0, self.sys_total - before.sys_total),
        }


# --- subprocesses -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    ports: list[int] = field(default_factory=list)  # every replica's (--replicas)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, path: str, seconds: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        for port in self.ports or [self.port]:
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=2) as http:
                while time.monotonic() < deadline:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"{self.name} exited: {self.tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(path)).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"{self.name} not ready after {seconds} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        for child in tree(self.proc.pid)[1:] if len(self.ports) > 1 else ():
            with contextlib.suppress(OSError):  # replicas under a shell: stop each
                os.kill(child, signal.SIGTERM)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(
    name: str, argv: list[str], env: dict[str, str], log: Path, replicas: int = 1
) -> Server:
    """One server; with ``replicas`` > 1, that many under one shell (their CPU and memory are
    read as the shell's process tree), each on its own port."""
    ports = [free_port() for _ in range(replicas)]
    if replicas > 1:
        commands = [shlex.join(a.replace("{port}", str(p)) for a in argv) for p in ports]
        argv = ["/bin/sh", "-c", " & ".join(commands) + " & wait"]
    else:
        argv = [a.replace("{port}", str(ports[0])) for a in argv]
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    return Server(name, proc, ports[0], log, ports)


class GenProc:
    """The load-generator process and its command pipe."""

    def __init__(self, nofile: int) -> None:
        import live_client

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=live_client.main, args=(child, nofile), daemon=True)
        self.proc.start()
        child.close()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    async def call(self, *command: Any, wait_seconds: float = 60) -> Any:
        self.conn.send(command)

        def wait() -> Any:
            if not self.conn.poll(wait_seconds):
                raise TimeoutError(
                    f"load generator: no answer to {command[0]!r} in {wait_seconds} s"
                )
            return self.conn.recv()

        return await asyncio.to_thread(wait)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("quit",))
            if self.conn.poll(10):
                self.conn.recv()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


# --- statistics ---------------------------------------------------------------------------------


def pct(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mib(kib: float) -> str:
    return fmt(kib / 1024, 1)


# --- writing ------------------------------------------------------------------------------------


@dataclass
class Created:
    i: int
    resource_id: str | None
    label: LabelSpec | None
    sent: float
    seconds: float
    status: int
    error: str = ""


async def paced(
    post: Callable[[int], Awaitable[Created]],
    count: int,
    rate: float | None,
    inflight: int,
    seconds_max: float,
) -> tuple[list[Created], float]:
    """``count`` posts at ``rate`` per second (None: as fast as ``inflight`` allow); returns
    the results and the seconds from the first send to the last answer. Bounded in time."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(inflight)
    tasks: list[asyncio.Task[Created]] = []
    started = loop.time()
    deadline = started + seconds_max

    async def one(i: int) -> Created:
        try:
            return await post(i)
        finally:
            slots.release()

    for i in range(count):
        if rate:
            delay = started + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        if loop.time() > deadline:
            break
        await slots.acquire()
        tasks.append(asyncio.create_task(one(i)))
    done = await asyncio.wait_for(asyncio.gather(*tasks), max(5.0, deadline - loop.time() + 30))
    return list(done), loop.time() - started


# --- one target (baseline or app) ---------------------------------------------------------------


@dataclass
class Target:
    name: str
    server: Server
    active_specs: list[tuple[int, str, str]]  # (tag, path, token)
    idle_specs: list[tuple[int, str, str]]
    post: Callable[[int], Awaitable[Created]]
    expected: Callable[[Created], set[int]]  # active client tags allowed to receive it
    audit: AuditProbe | None = None
    profiler: Profiler | None = None


@dataclass
class Delivery:
    """Figures of one writing window (rate or burst)."""

    events: int = 0
    post_failures: int = 0
    post_p50: float = math.nan
    post_p99: float = math.nan
    write_seconds: float = math.nan
    expected: int = 0
    deliveries: int = 0
    missed: int = 0
    leaked: int = 0
    duplicates: int = 0
    foreign: int = 0
    other_events: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    missed_on_closed: int = 0
    lat_p50: float = math.nan
    lat_p99: float = math.nan
    lat_max: float = math.nan
    done_p50: float = math.nan
    done_p99: float = math.nan
    span: float = math.nan
    per_second: float = math.nan
    usage: dict[str, float] = field(default_factory=dict)
    drain_seconds: float = math.nan
    audit: dict[str, int] = field(default_factory=dict)
    leak_examples: list[str] = field(default_factory=list)
    miss_examples: list[str] = field(default_factory=list)
    samples: list[tuple[int, float, float]] = field(default_factory=list, repr=False)
    hub_p50: float = math.nan  # event `at` -> the hub's live.deliver audit record
    hub_p99: float = math.nan
    push_p50: float = math.nan  # audit record -> receipt (audit commit, push, send, read)
    push_p99: float = math.nan

    write_cpu_per_event: float = math.nan  # server CPU s per event with no stream open

    @property
    def cpu_us_per_delivery(self) -> float:
        """Server CPU per delivery, writes included."""
        cpu = self.usage.get("server_cpu", math.nan)
        return 1e6 * cpu / self.deliveries if self.deliveries else math.nan

    @property
    def fanout_cpu(self) -> float:
        """Server CPU of the window minus what the same writes cost with no stream open."""
        return max(
            0.0, self.usage.get("server_cpu", math.nan) - self.events * self.write_cpu_per_event
        )

    @property
    def fanout_us_per_delivery(self) -> float:
        return 1e6 * self.fanout_cpu / self.deliveries if self.deliveries else math.nan

    @property
    def per_fanout_cpu_second(self) -> float:
        """Deliveries one core could fan out per second (write cost taken out)."""
        return self.deliveries / self.fanout_cpu if self.fanout_cpu else math.nan


@dataclass
class PhaseResult:
    name: str
    connect: dict[str, Any] = field(default_factory=dict)
    connect_idle: dict[str, Any] = field(default_factory=dict)
    rss_before: int = 0
    rss_active: int = 0
    rss_held: int = 0
    rss_peak: int = 0
    rss_after_close: int = 0
    idle_usage: dict[str, float] = field(default_factory=dict)
    gen_rss_before: int = 0
    gen_rss_held: int = 0
    write_cpu_per_event: float = math.nan
    write_calibration: int = 0
    profile: list[list[str]] = field(default_factory=list)
    profile_connect: list[list[str]] = field(default_factory=list)
    connect_cpu_ms: float = math.nan  # server CPU per stream opened
    rate: Delivery | None = None
    burst: Delivery | None = None

    @property
    def streams(self) -> int:
        return int(self.connect.get("opened", 0)) + int(self.connect_idle.get("opened", 0))

    def kib_per(self, which: str) -> float:
        if which == "all":
            n, kib = self.streams, self.rss_held - self.rss_before
        elif which == "active":
            n, kib = int(self.connect.get("opened", 0)), self.rss_active - self.rss_before
        else:
            n, kib = int(self.connect_idle.get("opened", 0)), self.rss_held - self.rss_active
        return kib / n if n else math.nan


def analyse(
    collected: dict[str, Any],
    created: list[Created],
    expected: Callable[[Created], set[int]],
    active_tags: set[int],
) -> Delivery:
    d = Delivery()
    ok = [c for c in created if c.resource_id]
    d.events = len(ok)
    d.post_failures = len(created) - len(ok)
    posts = sorted(c.seconds * 1000 for c in created)
    d.post_p50, d.post_p99 = pct(posts, 50), pct(posts, 99)
    want: dict[str, set[int]] = {c.resource_id: expected(c) & active_tags for c in ok}  # type: ignore[misc]
    d.expected = sum(len(v) for v in want.values())
    by_rid = {c.resource_id: c for c in ok}

    events: dict[int, tuple[str, str, float]] = {}  # id -> (type, resource_id, at)
    for ident, frame in collected["events"].items():
        kind, data = "", "{}"
        for line in frame.decode().split("\n"):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        payload = json.loads(data)
        at = datetime.fromisoformat(payload["at"]).timestamp() if payload.get("at") else math.nan
        events[ident] = (kind, str(payload.get("resource_id", "")), at)

    latencies: list[float] = []
    last_by_rid: dict[str, float] = {}
    seen: set[tuple[int, str]] = set()
    first_at, last_recv = math.inf, -math.inf
    from array import array

    for tag, ids_raw, times_raw, closed, _pings in collected["clients"]:
        if closed and closed not in ("eof", "end"):
            d.closed[closed] = d.closed.get(closed, 0) + 1
        ids, times = array("q"), array("d")
        ids.frombytes(ids_raw)
        times.frombytes(times_raw)
        for ident, t in zip(ids, times, strict=True):
            kind, rid, at = events.get(ident, ("?", "", math.nan))
            if kind != "entry.create":
                d.other_events += 1
                continue
            if rid not in want:
                d.foreign += 1
                continue
            if (tag, rid) in seen:
                d.duplicates += 1
                continue
            seen.add((tag, rid))
            if tag not in want[rid]:
                d.leaked += 1
                if len(d.leak_examples) < 5:
                    d.leak_examples.append(f"client {tag} got {rid} ({by_rid[rid].label})")
                continue
            d.deliveries += 1
            d.samples.append((ident, t, at))
            lat = t - at
            latencies.append(lat)
            last_by_rid[rid] = max(last_by_rid.get(rid, -math.inf), lat)
            first_at = min(first_at, at)
            last_recv = max(last_recv, t)
    closed_tags = {
        tag
        for tag, _i, _t, closed, _p in collected["clients"]
        if closed not in (None, "eof", "end")
    }
    for rid, tags in want.items():
        for tag in tags:
            if (tag, rid) not in seen:
                d.missed += 1
                d.missed_on_closed += tag in closed_tags
                if len(d.miss_examples) < 5:
                    d.miss_examples.append(f"client {tag} missed {rid} ({by_rid[rid].label})")
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    d.lat_p50, d.lat_p99, d.lat_max = pct(ms, 50), pct(ms, 99), (ms[-1] if ms else math.nan)
    done = sorted(v * 1000 for v in last_by_rid.values())
    d.done_p50, d.done_p99 = pct(done, 50), pct(done, 99)
    if d.deliveries:
        d.span = last_recv - first_at
        d.per_second = d.deliveries / d.span if d.span > 0 else math.nan
    return d


def stages(d: Delivery, hub_at: dict[int, float]) -> None:
    """Split each delivery's latency at the hub's audit record (see AuditProbe)."""
    hub, push = [], []
    for ident, t, at in d.samples:  # (cleared by the caller afterwards)
        mark = hub_at.get(ident)
        if mark is not None:
            hub.append(1000 * (mark - at))
            push.append(1000 * (t - mark))
    hub.sort()
    push.sort()
    d.hub_p50, d.hub_p99 = pct(hub, 50), pct(hub, 99)
    d.push_p50, d.push_p99 = pct(push, 50), pct(push, 99)


async def sample_rss(pid: int, stop: asyncio.Event, seconds_max: float) -> int:
    """Peak VmRSS, sampled every half second until ``stop`` (bounded)."""
    peak = 0
    for _ in range(int(seconds_max * 2) + 1):
        with contextlib.suppress(OSError):
            peak = max(peak, rss_kib(pid))
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    return peak


async def window(
    target: Target,
    gen: GenProc,
    args: argparse.Namespace,
    count: int,
    rate: float | None,
    inflight: int,
    active_tags: set[int],
    result: PhaseResult,
) -> Delivery:
    """Write ``count`` events, wait until every expected delivery is in (or stalls), collect."""
    with_pg = args.engine == "postgresql" and target.audit is not None
    audit_before = await target.audit.count() if target.audit else {}
    before = Snapshot.take(target.server.pid, gen.pid, with_pg)
    stop = asyncio.Event()
    seconds_max = (count / rate if rate else 0) + args.drain_max + 120
    peak_task = asyncio.create_task(sample_rss(target.server.pid, stop, seconds_max))
    profiling = None
    if target.profiler is not None and rate and count / rate >= 8:

        async def profile_later(profiler: Profiler) -> None:
            await asyncio.sleep(2)
            profiler.start(target.server.pid, int(min(20, count / rate - 4)))

        profiling = asyncio.create_task(profile_later(target.profiler))
    created, write_seconds = await paced(target.post, count, rate, inflight, seconds_max)
    expected_total = sum(len(target.expected(c) & active_tags) for c in created if c.resource_id)
    drained = time.perf_counter()
    last, last_change = -1, time.perf_counter()
    while time.perf_counter() - drained < args.drain_max:
        status = await gen.call("count")
        if status["received"] >= expected_total:
            break
        if status["received"] != last:
            last, last_change = status["received"], time.perf_counter()
        elif time.perf_counter() - last_change > args.stall:
            break
        await asyncio.sleep(0.2)
    after = Snapshot.take(target.server.pid, gen.pid, with_pg)
    drain_seconds = time.perf_counter() - drained
    stop.set()
    result.rss_peak = max(result.rss_peak, await peak_task)
    collected = await gen.call("collect", True, wait_seconds=120)
    d = analyse(collected, created, target.expected, active_tags)
    d.write_seconds = write_seconds
    d.drain_seconds = drain_seconds
    if profiling is not None and target.profiler is not None:
        await profiling
        result.profile = await asyncio.to_thread(target.profiler.finish)
    d.usage = after.since(before)
    if target.audit:
        audit_after = await target.audit.count()
        d.audit = {k: audit_after[k] - audit_before.get(k, 0) for k in audit_after}
        hub_at = await target.audit.deliver_times(audit_before["seq"])
        stages(d, hub_at)
    d.samples = []
    errors = [c.error for c in created if c.error][:3]
    if errors:
        note(f"{target.name}: {d.post_failures} writes failed, e.g. {errors}")
    for example in d.leak_examples + d.miss_examples:
        note(f"{target.name}: {example}")
    return d


async def run_target(target: Target, gen: GenProc, args: argparse.Namespace) -> PhaseResult:
    result = PhaseResult(target.name)
    pid = target.server.pid
    # Warm-up: a few streams opened and closed, so that first-use allocations (imports, caches,
    # compiled statements) are not counted as per-stream memory.
    warm = (target.active_specs + target.idle_specs)[: min(50, args.clients + args.idle)]
    await gen.call("connect", HOST, target.server.port, warm, args.connect_concurrency, 3, 60)
    await gen.call("close")
    # Write cost with no stream open: server CPU per event, taken out of the fan-out figures.
    calibration = max(10, int(args.rate * min(args.seconds, 3)))
    before = Snapshot.take(pid, gen.pid, False)
    created, _seconds = await paced(target.post, calibration, args.rate or 10, 64, 120)
    await asyncio.sleep(1)
    cpu = Snapshot.take(pid, gen.pid, False).since(before)["server_cpu"]
    ok = sum(1 for c in created if c.resource_id)
    result.write_calibration = ok
    result.write_cpu_per_event = cpu / ok if ok else math.nan
    await asyncio.sleep(1)
    result.rss_before = rss_kib(pid)
    result.gen_rss_before = (await gen.call("usage"))["rss_kib"]
    biggest = max(len(target.active_specs), len(target.idle_specs))
    note(f"{target.name}: connecting {len(target.active_specs)} active streams")
    cpu_before = tree_cpu(pid)
    if target.profiler is not None and len(target.active_specs) == biggest:
        target.profiler.start(
            pid,
            int(min(20, max(5, biggest / 150))),
            target.profiler.out.with_name("py-spy-connect.txt"),
        )
    result.connect = await gen.call(
        "connect",
        HOST,
        target.server.port,
        target.active_specs,
        args.connect_concurrency,
        args.connect_attempts,
        args.connect_max,
        args.ready_timeout,
        wait_seconds=args.connect_max + 60,
    )
    note(f"{target.name}: {_connect_line(result.connect)}")
    cpu_active = tree_cpu(pid) - cpu_before
    if target.profiler is not None and len(target.active_specs) == biggest:
        result.profile_connect = await asyncio.to_thread(target.profiler.finish)
    await asyncio.sleep(1)
    result.rss_active = rss_kib(pid)
    cpu_idle = 0.0
    if target.idle_specs:
        note(f"{target.name}: connecting {len(target.idle_specs)} idle streams")
        cpu_before = tree_cpu(pid)
        if target.profiler is not None and len(target.idle_specs) == biggest:
            target.profiler.start(
                pid,
                int(min(20, max(5, biggest / 150))),
                target.profiler.out.with_name("py-spy-connect.txt"),
            )
        result.connect_idle = await gen.call(
            "connect",
            HOST,
            target.server.port,
            target.idle_specs,
            args.connect_concurrency,
            args.connect_attempts,
            args.connect_max,
            args.ready_timeout,
            wait_seconds=args.connect_max + 60,
        )
        note(f"{target.name}: {_connect_line(result.connect_idle)}")
        cpu_idle = tree_cpu(pid) - cpu_before
        if target.profiler is not None and len(target.idle_specs) == biggest:
            result.profile_connect = await asyncio.to_thread(target.profiler.finish)
    opened_all = result.connect["opened"] + result.connect_idle.get("opened", 0)
    result.connect_cpu_ms = 1000 * (cpu_active + cpu_idle) / opened_all if opened_all else math.nan
    await asyncio.sleep(2)
    result.rss_held = rss_kib(pid)
    result.gen_rss_held = (await gen.call("usage"))["rss_kib"]
    before = Snapshot.take(pid, gen.pid, False)
    await asyncio.sleep(args.quiet)
    result.idle_usage = Snapshot.take(pid, gen.pid, False).since(before)
    opened = set(result.connect["tags"])
    count = int(args.rate * args.seconds)
    if count:
        note(f"{target.name}: writing {count} events at {args.rate}/s")
        result.rate = await window(target, gen, args, count, args.rate, 64, opened, result)
        result.rate.write_cpu_per_event = result.write_cpu_per_event
        note(f"{target.name}: rate window done: {_delivery_line(result.rate)}")
    if args.burst:
        note(f"{target.name}: burst of {args.burst} events")
        result.burst = await window(
            target, gen, args, args.burst, None, args.burst_concurrency, opened, result
        )
        result.burst.write_cpu_per_event = result.write_cpu_per_event
        note(f"{target.name}: burst done: {_delivery_line(result.burst)}")
    await gen.call("close")
    await asyncio.sleep(2)
    result.rss_after_close = rss_kib(pid)
    return result


def _connect_line(c: dict[str, Any]) -> str:
    rate = c["opened"] / c["seconds"] if c["seconds"] else math.nan
    extra = f"; failures e.g. {c['failures']}" if c["failures"] else ""
    return (
        f"{c['opened']}/{c['requested']} streams open in {c['seconds']:.1f} s "
        f"({rate:.0f}/s, {c['retries']} retries){extra}"
    )


def _delivery_line(d: Delivery) -> str:
    return (
        f"{d.events} events, {d.deliveries}/{d.expected} deliveries, missed {d.missed}, "
        f"leaked {d.leaked}, p99 {fmt(d.lat_p99)} ms"
    )


# --- the app: setup ----------------------------------------------------------------------------


async def populate(db: benchlib.BenchDb, readers: list[Reader], writers: list[Reader]) -> None:
    """Organisations, groups and users through the identity service, 100 users a transaction."""
    from hypervision.db import create_engine, session_factory, transaction
    from hypervision.identity import service
    from hypervision.identity.passwords import Passwords
    from hypervision.identity.principal import system_principal
    from hypervision.identity.schemas import GroupCreate, OrganisationCreate, UserCreate
    from hypervision.policy.roles import Role

    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    actor = system_principal("bench-live")
    passwords = Passwords(settings)
    try:
        async with transaction(sessions) as session:
            for code, (parent, _w) in ORGS.items():
                data = OrganisationCreate(
                    code=code, name=f"Organisation {code}", parent_code=parent
                )
                await service.create_organisation(session=session, actor=actor, data=data)
            for group in GROUPS:
                data_g = GroupCreate(code=group, name=group)
                await service.create_group(session=session, actor=actor, data=data_g)
        people = writers + readers
        for start in range(0, len(people), 100):
            async with transaction(sessions) as session:
                for r in people[start : start + 100]:
                    data_u = UserCreate(
                        username=r.username,
                        full_name=r.username,
                        organisation_code=r.org,
                        roles=[Role(r.role)],
                        clearance=r.clearance,
                        groups=sorted(r.groups),
                        password=benchlib.PASSWORD,
                    )
                    await service.create_user(
                        session=session,
                        actor=actor,
                        settings=settings,
                        passwords=passwords,
                        data=data_u,
                    )
    finally:
        await engine.dispose()


async def sign_in_all(base: str, usernames: list[str], concurrency: int) -> dict[str, str]:
    import httpx

    tokens: dict[str, str] = {}
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def one(name: str) -> None:
            async with slots:
                for attempt in range(3):
                    r = await http.post(
                        "/api/v1/auth/token",
                        data={"username": name, "password": benchlib.PASSWORD},
                    )
                    if r.status_code == 200:
                        tokens[name] = r.json()["access_token"]
                        return
                    await asyncio.sleep(0.5 * (attempt + 1))
                raise RuntimeError(f"sign-in of {name} failed: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one(n) for n in usernames))
    return tokens


class AuditProbe:
    """Reads the app's audit trail for evidence: counts of the records the live path writes,
    and when the hub wrote the ``live.deliver`` record of each event (written *before* the
    event is pushed to any stream: it splits the latency in two)."""

    def __init__(self, db: benchlib.BenchDb) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(db.url)

    async def count(self) -> dict[str, int]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT action, count(*) FROM audit_records "
                        "WHERE action IN ('live.deliver', 'stream.open') GROUP BY action"
                    )
                )
            ).all()
            total = await conn.scalar(text("SELECT count(*) FROM audit_records"))
            seq = await conn.scalar(text("SELECT max(seq) FROM audit_records"))
            outbox = await conn.scalar(text("SELECT count(*) FROM outbox"))
        out = {str(a): int(n) for a, n in rows}
        out["all"] = int(total or 0)
        out["seq"] = int(seq or 0)
        out["outbox"] = int(outbox or 0)
        return out

    async def deliver_times(self, since_seq: int) -> dict[int, float]:
        """Outbox id -> time of the live.deliver audit record that covers it."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT at, detail FROM audit_records "
                        "WHERE action = 'live.deliver' AND seq > :seq"
                    ),
                    {"seq": since_seq},
                )
            ).all()
        out: dict[int, float] = {}
        for at, detail in rows:
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            if isinstance(detail, str):
                detail = json.loads(detail)
            for ident in detail.get("events", ()):
                out[int(ident)] = min(out.get(int(ident), math.inf), at.timestamp())
        return out


class Profiler:
    """py-spy (``--py-spy PATH``, installed outside the project) on the app server during the
    rate window: where its CPU goes."""

    BUCKETS = (
        ("hub: dispatch (read outbox, plan, audit, push)", "dispatch (hypervision/live/hub.py"),
        ("hub: plan (policy per group)", "plan (hypervision/live/hub.py"),
        ("hub: Subscriber.group (in plan)", "group (hypervision/live/hub.py"),
        ("hub: Filters.accepts (in plan)", "accepts (hypervision/live/hub.py"),
        ("hub: visible (policy check)", "visible (hypervision/live/hub.py"),
        ("GET /stream endpoint (open)", "stream (hypervision/live/api.py"),
        ("hub: audit_delivery", "audit_delivery (hypervision/live/hub.py"),
        ("stream generator _events (live/api.py)", "_events (hypervision/live/api.py"),
        ("starlette StreamingResponse", "stream_response (starlette/responses.py"),
        ("uvicorn send (http protocol)", "send (uvicorn/protocols/http"),
        ("POST /entries (logbook/api.py create_entry)", "create_entry (hypervision/logbook/api.py"),
        ("authentication (identity/auth.py resolve)", "resolve (hypervision/identity/auth.py"),
        ("audit.record (any)", "record (hypervision/audit/service.py"),
        ("SQLAlchemy (any)", "sqlalchemy/"),
        ("asyncpg / aiosqlite (any)", "asyncpg/"),
        ("json encode/decode (any)", "json/"),
        ("asyncio.wait_for (any)", "wait_for (asyncio/tasks.py"),
    )

    def __init__(self, exe: str, out: Path) -> None:
        self.exe = exe
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, pid: int, seconds: int, out: Path | None = None) -> None:
        self.out = out or self.out
        argv = [self.exe, "record", "-p", str(pid), "-d", str(seconds), "-r", "100"]
        argv += ["-f", "raw", "-o", str(self.out), "--nonblocking", "--function"]
        argv += ["--subprocesses"]  # uvicorn workers with --workers
        self.proc = subprocess.Popen(  # noqa: S603 - the path given on the command line
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def finish(self) -> list[list[str]]:
        if self.proc is None or not benchlib.py_spy_done(self.proc, self.out):
            return []
        total = 0
        inclusive: dict[str, int] = {}
        own: dict[str, int] = {}
        for count, frames in benchlib.py_spy_samples(self.out):
            total += count
            for label, needle in self.BUCKETS:
                if any(needle in f for f in frames):
                    inclusive[label] = inclusive.get(label, 0) + count
            leaf = frames[-1].split(" (")[0] + " (" + _short(frames[-1]) + ")"
            if leaf.startswith("Runner.run ("):  # uvloop's C loop: callbacks, socket I/O
                leaf = "uvloop C code under Runner.run (callbacks, socket I/O)"
            own[leaf] = own.get(leaf, 0) + count
        rows = [["inclusive: " + k, f"{100 * v / total:.1f} %"] for k, v in inclusive.items()]
        rows.sort(key=lambda r: -float(r[1].split()[0]))
        top = sorted(own.items(), key=lambda kv: -kv[1])[:12]
        rows += [["self: " + k, f"{100 * v / total:.1f} %"] for k, v in top]
        rows.append(["samples (active, 100 Hz)", str(total)])
        return rows


def _short(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    parts = where.split("/")
    return "/".join(parts[-2:])


# --- main ----------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, db: benchlib.BenchDb) -> int:
    import httpx

    rng = random.Random(args.seed)  # noqa: S311 - a reproducible spread, not a secret
    total_streams = args.clients + args.idle
    n_users = max(1, min(total_streams, args.users))
    readers = make_readers(n_users, rng)
    writers = [
        Reader(f"writer{i}", org, "DR", frozenset(GROUPS), "officer")
        for i, org in enumerate(WRITER_ORGS)
    ]
    started = time.perf_counter()
    await populate(db, readers, writers)
    note(
        f"{len(readers)} readers and {len(writers)} writers created in "
        f"{time.perf_counter() - started:.1f} s"
    )

    log_dir = db.data_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env.update(
        {
            "HYPERVISION_DATABASE_URL": db.url,
            "HYPERVISION_DATA_DIR": str(db.data_dir),
            "HYPERVISION_SECRET_KEY": benchlib.BENCH_SECRET,
            "HYPERVISION_ARGON2_TIME_COST": "1",
            "HYPERVISION_ARGON2_MEMORY_KIB": "8",
            "HYPERVISION_ARGON2_PARALLELISM": "1",
            # every sign-in comes from 127.0.0.1: do not throttle the bench's own address
            "HYPERVISION_LOGIN_IP_MAX_FAILURES": "100000",
            "HYPERVISION_LIVE_QUEUE_SIZE": str(args.queue_size),
            "HYPERVISION_LIVE_HEARTBEAT_SECONDS": str(args.heartbeat),
            "BASELINE_HEARTBEAT_SECONDS": str(args.heartbeat),
            "PYTHONPATH": str(BENCH),
        }
    )
    if args.bus:
        env["HYPERVISION_LIVE_BUS"] = args.bus
    for setting in args.server_env:  # an A/B run of one setting
        name, _, value = setting.partition("=")
        env[name] = value
    launcher = ["-m", "hypervision"]
    app_server = start_server(
        "hypervision",
        [
            sys.executable,
            *launcher,
            "serve",
            "--host",
            HOST,
            "--port",
            "{port}",
            "--workers",
            str(args.workers),
        ],
        env,
        log_dir / "server.log",
        args.replicas,
    )
    ports = app_server.ports
    base_server = start_server(
        "baseline",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "live_baseline:app",
            "--app-dir",
            str(BENCH),
            "--host",
            HOST,
            "--port",
            "{port}",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env,
        log_dir / "baseline.log",
    )
    gen: GenProc | None = None
    audit: AuditProbe | None = None
    try:
        await app_server.wait_ready("/healthz")
        await base_server.wait_ready("/healthz")
        started = time.perf_counter()
        tokens = await sign_in_all(
            app_server.base, [r.username for r in readers + writers], args.signin_concurrency
        )
        note(f"{len(tokens)} bearer tokens in {time.perf_counter() - started:.1f} s")
        gen = GenProc(total_streams + 1000)
        audit = AuditProbe(db)

        # Streams: tags 0..N-1 active, N..N+N2-1 idle; users cycled.
        def reader_of(tag: int) -> Reader:
            return readers[tag % len(readers)]

        # Streams spread over the replicas (--replicas): stream t on replica t mod N.
        app_active = [
            (t, "/api/v1/stream", tokens[reader_of(t).username], ports[t % len(ports)])
            for t in range(args.clients)
        ]
        app_idle = [
            (t, "/api/v1/stream?topic=situation", tokens[reader_of(t).username],
             ports[t % len(ports)])
            for t in range(args.clients, total_streams)
        ]  # fmt: skip
        by_key: dict[tuple[object, ...], list[int]] = {}
        for t in range(args.clients):
            by_key.setdefault(reader_of(t).key, []).append(t)
        subjects = {k: readers[v[0] % len(readers)] for k, v in by_key.items()}

        def app_expected(c: Created) -> set[int]:
            assert c.label is not None
            out: set[int] = set()
            for key, reader in subjects.items():
                if may_read(reader, c.label):
                    out.update(by_key[key])
            return out

        write_rng = random.Random(args.seed + 1)  # noqa: S311
        writer_tokens = [(w, tokens[w.username]) for w in writers]
        app_https = [  # writes spread over the replicas too
            httpx.AsyncClient(
                base_url=f"http://{HOST}:{port}",
                timeout=60,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
            for port in ports
        ]
        base_http = httpx.AsyncClient(
            base_url=base_server.base,
            timeout=60,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

        async def app_post(i: int) -> Created:
            writer, token = writer_tokens[i % len(writer_tokens)]
            label = make_label(write_rng, writer.org)
            body = entry_body(i, write_rng, label)
            sent, t0 = time.time(), time.perf_counter()
            try:
                r = await app_https[i % len(app_https)].post(
                    "/api/v1/entries", json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                return Created(i, None, label, sent, time.perf_counter() - t0, 0, repr(exc))
            seconds = time.perf_counter() - t0
            if r.status_code != 201:
                return Created(i, None, label, sent, seconds, r.status_code, r.text[:200])
            return Created(i, r.json()["id"], label, sent, seconds, 201)

        async def base_post(i: int) -> Created:
            # the same fields as an entry.create event of the app (see entries.summary)
            rid = str(uuid.uuid4())
            payload = {
                "resource_id": rid,
                "id": rid,
                "version": 1,
                "action": "create",
                "changed": sorted(
                    [
                        "body",
                        "category",
                        "location",
                        "occurred_at",
                        "severity",
                        "status",
                        "situation_id",
                        "tags",
                        "title",
                        "duplicate_of_id",
                        "follow_up_of_id",
                    ]
                ),
                "category": write_rng.choice(CATEGORIES),
                "severity": write_rng.choice(SEVERITIES),
                "status": "open",
                "situation_id": None,
                "bbox": [2.35, 48.85, 2.35, 48.85],
            }
            sent, t0 = time.time(), time.perf_counter()
            try:
                r = await base_http.post("/publish", json=payload)
            except httpx.HTTPError as exc:
                return Created(i, None, None, sent, time.perf_counter() - t0, 0, repr(exc))
            return Created(i, rid, None, sent, time.perf_counter() - t0, r.status_code)

        all_active = set(range(args.clients))
        base_target = Target(
            "baseline",
            base_server,
            [(t, "/stream", "-") for t in range(args.clients)],
            [(t, "/stream?idle=1", "-") for t in range(args.clients, total_streams)],
            base_post,
            lambda _c: all_active,
        )
        app_target = Target(
            "hypervision",
            app_server,
            app_active,
            app_idle,
            app_post,
            app_expected,
            audit,
            Profiler(args.py_spy, db.data_dir / "py-spy.txt") if args.py_spy else None,
        )

        await header(args, db, readers, by_key)
        results = []
        for target in (base_target, app_target) if not args.skip_baseline else (app_target,):
            results.append(await run_target(target, gen, args))
        for http in app_https:
            await http.aclose()
        await base_http.aclose()
        report(args, results, app_server)
        bad = any(
            (d.missed or d.leaked) for r in results for d in (r.rate, r.burst) if d is not None
        )
        return 1 if bad else 0
    finally:
        if gen is not None:
            gen.stop()
        app_server.stop()
        base_server.stop()
        if audit is not None:
            await audit.engine.dispose()
        if args.show_logs:
            print(app_server.tail(40), file=sys.stderr)


async def header(
    args: argparse.Namespace,
    db: benchlib.BenchDb,
    readers: list[Reader],
    by_key: dict[tuple[object, ...], list[int]],
) -> None:
    version = await benchlib.server_version(db)
    print(
        f"## Live streams — {db.engine}, {args.clients:,} active + {args.idle:,} idle streams, "
        f"{args.rate}/s for {args.seconds} s"
        + (f", burst {args.burst}" if args.burst else "")
        + (f", app with {args.workers} workers" if args.workers > 1 else "")
        + (f", {args.replicas} app replicas" if args.replicas > 1 else "")
        + (f", bus {args.bus}" if args.bus else "")
    )
    print(
        f"{version}; Python {platform.python_version()}; {os.cpu_count()} CPU(s); "
        f"load average {os.getloadavg()[0]:.2f} at start; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
    dr = sum(r.clearance == "DR" for r in readers)
    grouped = sum(bool(r.groups) for r in readers)
    print(
        f"{len(readers):,} readers ({dr / len(readers):.0%} DR, {grouped / len(readers):.0%} "
        f"in ≥ 1 need-to-know group) in {len(ORGS)} organisations; "
        f"{len(by_key)} distinct policy subjects among the active streams; "
        f"live_queue_size {args.queue_size}, heartbeat {args.heartbeat} s",
        flush=True,
    )


def report(args: argparse.Namespace, results: list[PhaseResult], app_server: Server) -> None:
    show(
        "Connections, memory and idle CPU (server process)",
        [
            "server",
            "streams",
            "failed",
            "open/s",
            "RSS before MiB",
            "RSS held MiB",
            "RSS peak MiB",
            "KiB/stream",
            "KiB/active",
            "KiB/idle",
            "idle CPU %",
            "idle µs/s/stream",
            "CPU ms/open",
            "gen KiB/stream",
        ],
        [
            [
                r.name,
                f"{r.streams:,}",
                str(r.connect.get("failed", 0) + r.connect_idle.get("failed", 0)),
                fmt(
                    r.streams / max(1e-9, r.connect["seconds"] + r.connect_idle.get("seconds", 0)),
                    0,
                ),
                mib(r.rss_before),
                mib(r.rss_held),
                mib(max(r.rss_peak, r.rss_held)),
                fmt(r.kib_per("all"), 1),
                fmt(r.kib_per("active"), 1),
                fmt(r.kib_per("idle"), 1),
                fmt(r.idle_usage.get("server_pct", math.nan), 1),
                fmt(
                    1e6
                    * r.idle_usage.get("server_cpu", math.nan)
                    / max(1, r.streams)
                    / r.idle_usage.get("wall", math.nan),
                    2,
                ),
                fmt(r.connect_cpu_ms, 2),
                fmt((r.gen_rss_held - r.gen_rss_before) / max(1, r.streams), 1),
            ]
            for r in results
        ],
    )
    for label, attr in (("at the rate", "rate"), ("burst", "burst")):
        rows = []
        for r in results:
            d: Delivery | None = getattr(r, attr)
            if d is None:
                continue
            closed = ", ".join(f"{k} {v}" for k, v in d.closed.items()) or "0"
            rows.append(
                [
                    r.name,
                    f"{d.events} ({fmt(d.events / d.write_seconds, 1)}/s)",
                    str(d.post_failures),
                    fmt(d.post_p50, 1),
                    f"{d.deliveries:,}/{d.expected:,}",
                    fmt(d.per_second, 0),
                    fmt(d.lat_p50, 1),
                    fmt(d.lat_p99, 1),
                    fmt(d.lat_max, 1),
                    fmt(d.done_p99, 1),
                    str(d.missed),
                    str(d.leaked),
                    str(d.duplicates + d.foreign),
                    closed,
                    fmt(d.usage.get("server_pct", math.nan), 0),
                    fmt(d.cpu_us_per_delivery, 1),
                    fmt(d.fanout_us_per_delivery, 1) if attr == "rate" else "—",
                    fmt(d.usage.get("gen_pct", math.nan), 0),
                    fmt(d.usage.get("pg_pct", math.nan), 0),
                    fmt(d.usage.get("sys_pct", math.nan), 0),
                ]
            )
        if rows:
            show(
                f"Delivery {label} (latency = receipt − event `at`, ms; CPU % of one core)",
                [
                    "server",
                    "events (rate)",
                    "write err",
                    "write p50 ms",
                    "delivered/expected",
                    "deliv/s",
                    "p50",
                    "p99",
                    "max",
                    "fan-out done p99",
                    "missed",
                    "leaked",
                    "dup+foreign",
                    "closed",
                    "server CPU %",
                    "server µs/deliv",
                    "fan-out µs/deliv",
                    "gen CPU %",
                    "PG CPU %",
                    "machine busy %",
                ],
                rows,
            )
    ours = next((r for r in results if r.name == "hypervision"), None)
    base = next((r for r in results if r.name == "baseline"), None)
    if ours is not None:
        audit_rows = []
        for label, d in (("rate", ours.rate), ("burst", ours.burst)):
            if d is None or not d.audit:
                continue
            batches = d.audit.get("live.deliver", 0)
            audit_rows.append(
                [
                    label,
                    str(d.events),
                    str(batches),
                    fmt(d.events / batches, 2) if batches else "—",
                    str(d.audit.get("all", 0)),
                    f"{fmt(d.hub_p50, 1)} / {fmt(d.hub_p99, 1)}",
                    f"{fmt(d.push_p50, 1)} / {fmt(d.push_p99, 1)}",
                    fmt(d.drain_seconds, 1),
                ]
            )
        if audit_rows:
            show(
                "Hub batches (from the audit trail: one live.deliver record per delivery batch)",
                [
                    "window",
                    "events",
                    "live.deliver batches",
                    "events/batch",
                    "audit records written",
                    "at → hub audit ms p50/p99",
                    "hub audit → receipt ms p50/p99",
                    "drain s",
                ],
                audit_rows,
            )
    if ours is not None and ours.profile:
        show(
            "Where the app server's CPU goes during the rate window (py-spy, share of samples)",
            ["frame", "share"],
            ours.profile,
        )
    if ours is not None and ours.profile_connect:
        show(
            "Where the app server's CPU goes while streams open (py-spy, share of samples)",
            ["frame", "share"],
            ours.profile_connect,
        )
    if ours is not None and base is not None:
        rows = []
        for label, a, b in (("rate", ours.rate, base.rate), ("burst", ours.burst, base.burst)):
            if a is None or b is None:
                continue
            rows.append(
                [
                    f"{label}: deliveries/s",
                    fmt(a.per_second, 0),
                    fmt(b.per_second, 0),
                    benchlib.ratio(a.per_second, b.per_second),
                ]
            )
            if label == "rate":  # in a burst, batching changes the write cost: not comparable
                rows.append(
                    [
                        f"{label}: fan-out capacity, deliveries per server CPU-s",
                        fmt(a.per_fanout_cpu_second, 0),
                        fmt(b.per_fanout_cpu_second, 0),
                        benchlib.ratio(a.per_fanout_cpu_second, b.per_fanout_cpu_second),
                    ]
                )
            rows.append(
                [
                    f"{label}: p99 ms",
                    fmt(a.lat_p99, 1),
                    fmt(b.lat_p99, 1),
                    benchlib.ratio(a.lat_p99, b.lat_p99),
                ]
            )
        rows.append(
            [
                "server CPU ms per write (no stream open)",
                fmt(1000 * ours.write_cpu_per_event, 2),
                fmt(1000 * base.write_cpu_per_event, 2),
                benchlib.ratio(ours.write_cpu_per_event, base.write_cpu_per_event),
            ]
        )
        rows.append(
            [
                "KiB per stream held",
                fmt(ours.kib_per("all"), 1),
                fmt(base.kib_per("all"), 1),
                benchlib.ratio(ours.kib_per("all"), base.kib_per("all")),
            ]
        )
        show(
            "Hypervision vs the baseline (same clients, same rate, same run)",
            ["figure", "hypervision", "baseline", "ratio"],
            rows,
        )
    if ours is not None:
        rows = []
        if ours.rate is not None:
            rows.append(
                [
                    f"p99 < 100 ms at N={args.clients}, R={args.rate}",
                    f"{fmt(ours.rate.lat_p99, 1)} ms",
                    "yes" if ours.rate.lat_p99 < 100 else "no",
                ]
            )
            rows.append(
                [
                    "missed = 0 and leaked = 0",
                    f"{ours.rate.missed} / {ours.rate.leaked}",
                    "yes" if not (ours.rate.missed or ours.rate.leaked) else "NO",
                ]
            )
        rows.append(
            [
                f"< 100 KB per stream ({ours.streams:,} held)",
                f"{fmt(ours.kib_per('all') * 1.024, 1)} KB",
                "yes" if ours.kib_per("all") * 1.024 < 100 else "no",
            ]
        )
        if base is not None:
            if ours.burst is not None and base.burst is not None:
                a, b = ours.burst, base.burst
                rows.append(
                    [
                        "end-to-end throughput ≥ 0.5 × baseline (burst, writes included)",
                        benchlib.ratio(a.per_second, b.per_second),
                        "yes" if a.per_second >= 0.5 * b.per_second else "no",
                    ]
                )
            a, b = ours.rate, base.rate  # type: ignore[assignment]
            if a is not None and b is not None:
                capacity = a.per_fanout_cpu_second / b.per_fanout_cpu_second
                rows.append(
                    [
                        "fan-out capacity ≥ 0.8 × baseline (deliveries per server CPU-s)",
                        fmt(capacity, 2),
                        "yes" if capacity >= 0.8 else "no",
                    ]
                )
        show("Targets of the issue", ["target", "reached", "met"], rows)


def raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < want:
        note(f"file-descriptor limit is {target} (hard), below the {want} wanted")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--clients", type=int, default=100, help="active SSE streams (every topic)")
    p.add_argument("--idle", type=int, default=0, help="idle SSE streams (?topic=situation)")
    p.add_argument("--rate", type=float, default=5, help="entries per second")
    p.add_argument("--seconds", type=float, default=10, help="seconds of writing at --rate")
    p.add_argument("--burst", type=int, default=0, help="then E events as fast as possible")
    p.add_argument("--burst-concurrency", type=int, default=8)
    p.add_argument("--users", type=int, default=2000, help="readers (streams cycle over them)")
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=8,
        help="streams opened at once (a burst: the app's DB pool, 10 + 10, queues them)",
    )
    p.add_argument(
        "--connect-attempts",
        type=int,
        default=3,
        help="tries per stream (1: a refused open counts as failed, no retry)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=30,
        help="seconds a stream may take to send its first frame (a burst queues: raise it)",
    )
    p.add_argument("--connect-max", type=float, default=420, help="seconds to open all streams")
    p.add_argument("--signin-concurrency", type=int, default=8)
    p.add_argument("--quiet", type=float, default=5, help="idle-CPU window, streams held")
    p.add_argument("--drain-max", type=float, default=60, help="max seconds to wait for stragglers")
    p.add_argument("--stall", type=float, default=5, help="stop waiting after S s without news")
    p.add_argument("--queue-size", type=int, default=256, help="HYPERVISION_LIVE_QUEUE_SIZE")
    p.add_argument("--heartbeat", type=float, default=15, help="HYPERVISION_LIVE_HEARTBEAT_SECONDS")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--show-logs", action="store_true", help="print the server log's tail")
    p.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy executable (install it outside the project): profile the app server "
        "during the rate window",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn workers of the app (hypervision serve --workers); CPU and RSS are summed "
        "over the worker processes",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="app servers sharing the database (streams and writes spread over them); CPU "
        "and RSS are summed over them",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="HYPERVISION_NAME=VALUE",
        help="a setting for the app servers (repeatable), e.g. to compare two values of it",
    )
    p.add_argument(
        "--bus",
        choices=("postgres", "nats"),
        help="HYPERVISION_LIVE_BUS of the app (default: the app's own, LISTEN/NOTIFY on "
        "PostgreSQL); nats needs a NATS server with JetStream at HYPERVISION_NATS_URL",
    )
    p.add_argument("--pg-url", default=benchlib.PG_ADMIN_URL)
    p.add_argument("--keep", action="store_true", help="keep the database")
    args = p.parse_args()
    raise_fd_limit(args.clients + args.idle + 1000)
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        return asyncio.run(bench(args, db))


if __name__ == "__main__":
    sys.exit(main())
