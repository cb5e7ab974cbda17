# ruff: noqa: T201 - benchmarks print their figures
"""The release test: a rolling release under live load, behind haproxy.

    .venv/bin/python bench/release.py [--clients 300] [--rate 20] [--image] [--next-image TAG]

What runs (all on 127.0.0.1, see bench/README.md):

- **PostgreSQL** with two roles, as deployed: a throw-away database ``hv_bench_<random>``
  (``benchlib.throwaway_database``) whose owner runs the migrations, and an app role
  ``<database>_app`` (LOGIN, no superuser, no BYPASSRLS) that the replicas connect as;
  ``hypervision.migrate.upgrade(owner, app_role=...)`` grants it its rights.
- **NATS** at ``--nats-url`` (default nats://127.0.0.1:4222, JetStream) as the live bus.
- **three replicas**: ``python -m hypervision serve`` (the package), or with ``--image`` the
  container image ``localhost/hypervision:dev`` under podman (``--network host``,
  ``CONTAINERS_CONF=deploy/image/containers.conf``) when podman and the image are present.
- **haproxy** (Debian's; installed with apt-get when missing and run as root): HTTP mode, round
  robin, health checks on ``/readyz``, long ``timeout server``/``timeout tunnel`` for the SSE
  streams (haproxy forwards a response as it arrives: nothing buffers the stream), L7 retries
  on a failed connection, an empty answer or a 503 (another server). Its configuration is
  written in a temporary folder; it runs as a subprocess on a free port; its stats socket
  tells when a server is up again.
- **the clients**: ``--clients`` SSE streams through haproxy, held by ``bench/live_client.py``
  in its own process (``Generator.follow``): a stream that ends (``event: shutdown`` when its
  replica stops, the end of the body, a lost connection, an HTTP error) is opened again at
  once through haproxy with ``Last-Event-ID``; every connection's receipts count for the
  client. The users and their visibility come from ``bench/live.py`` (``make_readers``,
  ``may_read``: the reference rule, independent of the server's code).
- **the writer**: ``POST /api/v1/entries`` at ``--rate`` per second through haproxy, each with
  an ``Idempotency-Key`` (also written in the entry's title); on an error or a time-out the same
  request is sent again with the same key until it is acknowledged (201).

The release, after ``--warmup`` seconds of writing: first the migration step (``hypervision
migrate`` as the owner: the "Job"), then each replica in turn is sent SIGTERM (it ends its
streams with ``event: shutdown`` and exits: ADR 0006's amendment), a new one is started on the
same port (the same code, or the image ``--next-image``), and the next replica waits until
haproxy sees the new one up. Writing goes on ``--after`` seconds after the release.

Checked at the end: every acknowledged entry is in the database (lost = 0), no idempotency key
has two entries (duplicated = 0), every client received every entry it may see once (missed =
0, duplicated = 0, leaked = 0). Exit status 1 when any of them is not 0; timings never fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402 - after the path
from benchlib import fmt, note, show  # noqa: E402

import live  # noqa: E402
from live import HOST, Created, Reader  # noqa: E402

IMAGE = "localhost/hypervision:dev"
CONTAINERS_CONF = ROOT / "deploy" / "image" / "containers.conf"


# --- PostgreSQL: the app role -------------------------------------------------------------------


def admin(pg_url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(benchlib.pg_dsn(pg_url), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    benchlib.in_thread(lambda: asyncio.run(run()))


def app_role_url(owner_url: str, role: str) -> str:
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


# --- haproxy ------------------------------------------------------------------------------------

HAPROXY_CFG = """\
# Written by bench/release.py: three replicas behind one address, as in a deployment.
global
    maxconn 8192
    stats socket {sock} mode 600 level admin

defaults
    mode http
    option http-no-delay
    timeout connect 2s
    timeout client 1h
    timeout http-request 10s
    timeout queue 30s
    # SSE: a stream stays open for hours; haproxy forwards each chunk as it comes (no
    # response buffering without compression or a cache), so only the time-outs matter.
    timeout server 1h
    timeout tunnel 1h
    # A replica that stops refuses connections or answers 503 (Retry-After: 1): the request
    # goes to another one. POSTs are replayed too: the writer sends an Idempotency-Key.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503

frontend hypervision
    bind {host}:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # A busy 2-core machine answers /readyz slowly while a replica starts: a check may take
    # up to 5 s and a server is down after 3 failures (its connections refused: at once).
    timeout check 5s
    default-server inter 1s fastinter 500ms downinter 250ms rise 2 fall 3
{servers}
"""


def ensure_haproxy() -> str:
    exe = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if exe:
        return exe
    if os.geteuid() != 0:
        raise SystemExit("haproxy is missing: apt-get install -y haproxy (as root)")
    note("haproxy is missing: installing Debian's (apt-get install -y haproxy)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "haproxy"],  # noqa: S607
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


class Haproxy:
    def __init__(self, exe: str, folder: Path, ports: dict[str, int]) -> None:
        self.port = live.free_port()
        self.sock = folder / "haproxy.sock"
        self.cfg = folder / "haproxy.cfg"
        self.log = folder / "haproxy.log"
        servers = "\n".join(
            f"    server {name} {HOST}:{port} check" for name, port in ports.items()
        )
        self.cfg.write_text(
            HAPROXY_CFG.format(sock=self.sock, host=HOST, port=self.port, servers=servers)
        )
        subprocess.run([exe, "-c", "-q", "-f", str(self.cfg)], check=True)  # noqa: S603
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(  # noqa: S603
                [exe, "-db", "-f", str(self.cfg)], stdout=sink, stderr=subprocess.STDOUT
            )
        self.version = subprocess.run(  # noqa: S603
            [exe, "-v"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0]

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.sock))
            s.sendall(line.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def states(self) -> dict[str, str]:
        """Server name -> haproxy's status (UP, DOWN, UP 1/2...)."""
        lines = self.command("show stat").splitlines()
        if not lines:
            return {}
        head = lines[0].lstrip("# ").split(",")
        name, status = head.index("svname"), head.index("status")
        out = {}
        for line in lines[1:]:
            cells = line.split(",")
            if len(cells) > status and cells[0] == "replicas" and cells[name] != "BACKEND":
                out[cells[name]] = cells[status]
        return out

    async def wait_up(self, names: list[str], seconds: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log.read_text(errors='replace')}")
            with contextlib.suppress(OSError):
                states = self.states()
                if all(states.get(n) == "UP" for n in names):
                    return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise RuntimeError(f"haproxy does not see {names} up after {seconds} s: {self.states()}")

    async def wait_down(self, name: str, seconds: float) -> None:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            with contextlib.suppress(OSError):
                if self.states().get(name, "").startswith("DOWN"):
                    return
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- the replicas -------------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    port: int
    log: Path
    image: str | None = None  # None: the package
    proc: subprocess.Popen[bytes] | None = None
    container: str = ""
    generation: int = 0

    def start(self, env: dict[str, str], data_dir: Path, image: str | None) -> None:
        self.generation += 1
        self.image = image
        serve = ["serve", "--host", HOST, "--port", str(self.port)]
        if image is None:
            argv = [sys.executable, "-m", "hypervision", *serve]
            run_env = env
        else:
            self.container = f"hv-release-{secrets.token_hex(3)}-{self.name}-{self.generation}"
            argv = container_argv(self.container, env, data_dir, image, serve)
            run_env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        with self.log.open("ab") as sink:
            sink.write(f"\n--- generation {self.generation} ---\n".encode())
            sink.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our interpreter or podman
                argv, cwd=ROOT, env=run_env, stdout=sink, stderr=subprocess.STDOUT
            )

    async def stop(self, seconds: float = 30) -> float:
        """SIGTERM (podman forwards it to the container); seconds until the process exited."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.proc.wait, seconds)
        if self.proc.poll() is None:
            note(f"{self.name} did not exit {seconds} s after SIGTERM: killed")
            self.kill()
        return time.monotonic() - started

    def kill(self) -> None:
        if self.container:
            subprocess.run(  # noqa: S603
                ["podman", "rm", "-f", "-t", "0", self.container],  # noqa: S607
                env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
                capture_output=True,
                check=False,
            )
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def container_argv(
    name: str, env: dict[str, str], data_dir: Path, image: str, command: list[str]
) -> list[str]:
    argv = ["podman", "run", "--rm", "--name", name, "--network", "host", "--read-only"]
    argv += ["--tmpfs", "/tmp"]  # noqa: S108 - the container's own /tmp
    argv += ["-v", f"{data_dir}:/var/lib/hypervision"]
    for key, value in env.items():
        if key.startswith("HYPERVISION_") and key != "HYPERVISION_DATA_DIR":
            argv += ["-e", f"{key}={value}"]
    return [*argv, image, *command]


def image_present(image: str) -> bool:
    if not shutil.which("podman"):
        return False
    done = subprocess.run(  # noqa: S603
        ["podman", "image", "exists", image],  # noqa: S607
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


MIGRATIONS_PROBE = (
    "import hypervision, os; d = os.path.join(os.path.dirname(hypervision.__file__), "
    "'migrations', 'versions'); print(' '.join(sorted(f for f in os.listdir(d) "
    "if f.endswith('.py') and not f.startswith('_'))))"
)


def image_migrations(image: str) -> set[str]:
    """The migration files inside the image (the image has Python but no shell)."""
    done = subprocess.run(  # noqa: S603
        ["podman", "run", "--rm", "--network", "host", "--entrypoint",  # noqa: S607
         "/opt/hypervision/bin/python", image, "-c", MIGRATIONS_PROBE],
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )  # fmt: skip
    return set(done.stdout.split())


def package_migrations() -> set[str]:
    import hypervision

    folder = Path(hypervision.__file__).parent / "migrations" / "versions"
    return {f.name for f in folder.glob("*.py") if not f.name.startswith("_")}


def migrate_job(env: dict[str, str], data_dir: Path, image: str | None, log: Path) -> None:
    """``hypervision migrate`` as the owner, in the new version: the release's "Job"."""
    if image is None:
        argv = [sys.executable, "-m", "hypervision", "migrate"]
        run_env = env
    else:
        name = f"hv-release-migrate-{secrets.token_hex(3)}"
        argv = container_argv(name, env, data_dir, image, ["migrate"])
        run_env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    with log.open("ab") as sink:
        done = subprocess.run(  # noqa: S603
            argv, cwd=ROOT, env=run_env, stdout=sink, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"hypervision migrate failed: {log.read_text(errors='replace')[-2000:]}")


# --- the writer ---------------------------------------------------------------------------------


@dataclass
class Writes:
    created: list[Created] = field(default_factory=list)  # acknowledged (201)
    keys: dict[str, int] = field(default_factory=dict)  # idempotency key -> i
    given_up: list[int] = field(default_factory=list)
    attempts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    replayed: int = 0  # answers marked Idempotent-Replayed (a retry of a committed write)
    seconds: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def write_loop(
    base: str,
    writers: list[tuple[Reader, str]],
    rate: float,
    stop: asyncio.Event,
    run_id: str,
    seed: int,
    out: Writes,
    give_up_after: float,
) -> None:
    """POST /api/v1/entries at ``rate`` until ``stop``; each write retried with its key until
    acknowledged (or ``give_up_after`` seconds)."""
    import httpx

    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(10, connect=3, pool=30),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    # After time-outs httpx's pool may keep connections it no longer uses (PoolTimeout from
    # then on, seen here under load): a time-out replaces the client, as a browser would open
    # new connections.
    http = [client()]
    old: list[httpx.AsyncClient] = []
    try:

        async def one(i: int) -> None:
            writer, token = writers[i % len(writers)]
            label = live.make_label(rng, writer.org)
            body = live.entry_body(i, rng, label)
            key = f"{run_id}-{i:06d}"
            body["title"] = f"Release {i} {key}"
            out.keys[key] = i
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            sent, t0 = time.time(), time.perf_counter()
            while time.perf_counter() - t0 < give_up_after:
                out.attempts += 1
                current = http[0]
                try:
                    r = await current.post("/api/v1/entries", json=body, headers=headers)
                except httpx.HTTPError as exc:
                    out.error(type(exc).__name__)
                    if isinstance(exc, httpx.TimeoutException) and http[0] is current:
                        old.append(current)
                        http[0] = client()
                else:
                    if r.status_code == 201:
                        out.replayed += r.headers.get("Idempotent-Replayed") == "true"
                        seconds = time.perf_counter() - t0
                        out.seconds.append(seconds)
                        out.created.append(Created(i, r.json()["id"], label, sent, seconds, 201))
                        return
                    out.error(f"http {r.status_code}")
                await asyncio.sleep(0.3)
            out.given_up.append(i)

        started = loop.time()
        i = 0
        while not stop.is_set():
            delay = started + i / rate - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    break
            tasks.append(asyncio.create_task(one(i)))
            i += 1
        await asyncio.gather(*tasks)
    finally:
        for one_client in [*http, *old]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(one_client.aclose(), 5)


# --- checks -------------------------------------------------------------------------------------


async def database_check(db: benchlib.BenchDb, writes: Writes) -> dict[str, Any]:
    """As the owner: acknowledged entries missing, keys with more than one entry."""
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, title FROM entries WHERE title LIKE 'Release %'"
        )
    finally:
        await conn.close()
    ids = {str(r["id"]).replace("-", "") for r in rows}
    per_key: dict[str, int] = {}
    for r in rows:
        key = str(r["title"]).rsplit(" ", 1)[-1]
        per_key[key] = per_key.get(key, 0) + 1
    lost = [c for c in writes.created if str(c.resource_id).replace("-", "") not in ids]
    acked = {c.i for c in writes.created}
    stray = [k for k, i in writes.keys.items() if k in per_key and i not in acked]
    return {
        "rows": len(rows),
        "lost": len(lost),
        "duplicated": sum(1 for n in per_key.values() if n > 1),
        "extra_rows": sum(n - 1 for n in per_key.values() if n > 1),
        "unacknowledged_in_db": len(stray),
    }


def per_client(
    collected: dict[str, Any], want: dict[str, set[int]], tags: list[int]
) -> dict[int, tuple[int, int]]:
    """tag -> (missed, duplicated) entry.create events against ``want`` (resource -> tags)."""
    kinds: dict[int, str] = {}
    for ident, frame in collected["events"].items():
        text = frame.decode()
        if "\nevent: entry.create\n" not in f"\n{text}":
            continue
        data = next(line[6:] for line in text.split("\n") if line.startswith("data: "))
        kinds[ident] = str(json.loads(data).get("resource_id", ""))
    got: dict[int, list[str]] = {t: [] for t in tags}
    for tag, ids_raw, _times, _closed, _pings in collected["clients"]:
        ids = array("q")
        ids.frombytes(ids_raw)
        got.setdefault(tag, []).extend(kinds[i] for i in ids if i in kinds and kinds[i] in want)
    out = {}
    for tag in tags:
        received = got.get(tag, [])
        expected = {rid for rid, who in want.items() if tag in who}
        out[tag] = (len(expected - set(received)), len(received) - len(set(received)))
    return out


# --- the run --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, db: benchlib.BenchDb, app_url: str) -> int:
    rng = random.Random(args.seed)  # noqa: S311
    readers = live.make_readers(max(1, min(args.clients, args.users)), rng)
    writers = [
        Reader(f"writer{i}", org, "DR", frozenset(live.GROUPS), "officer")
        for i, org in enumerate(live.WRITER_ORGS)
    ]
    started = time.perf_counter()
    await live.populate(db, readers, writers)
    seconds = time.perf_counter() - started
    note(f"{len(readers)} readers and {len(writers)} writers created in {seconds:.1f} s")

    image = None
    fallback = ""  # why the package ran although --image was given
    if args.image:
        if not image_present(args.image_tag):
            fallback = f"podman or {args.image_tag} missing"
            note(f"--image: {fallback}: running the package instead")
        elif (inside := image_migrations(args.image_tag)) != package_migrations():
            fallback = f"{args.image_tag} was built from other code (rebuild it: make image)"
            # The database was made by this checkout (benchlib.throwaway_database): an image
            # built from other code cannot serve it.
            note(
                f"--image: {args.image_tag} was built from other code (its migrations differ "
                f"from this checkout's: {sorted(inside ^ package_migrations())}); rebuild it "
                "with `make image`. Running the package instead"
            )
        else:
            image = args.image_tag
    next_image = image
    if args.next_image:
        if image is None:
            note("--next-image needs --image and podman: the package replaces the package")
        else:
            next_image = args.next_image
    if image is not None:  # the image's user (10001) owns its data folder
        for where, _dirs, files in os.walk(db.data_dir):
            for name in [where, *(os.path.join(where, f) for f in files)]:
                os.chown(name, 10001, 10001)
    what = (
        f"the image {image} under podman ({shutil.which('podman')}), replaced by "
        + (f"the image {next_image}" if next_image != image else "the same image (same code)")
        if image is not None
        else "the package (python -m hypervision serve), replaced by new processes of the same code"
    )
    folder = Path(tempfile.mkdtemp(prefix="hv_release_"))
    # Replicas keep their compiled modules (__pycache__), as a deployment has them (the image
    # compiles at build time): else each new process compiles the package from source while
    # the others serve, on a machine where every core is busy (as `make test` does).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HYPERVISION_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "HYPERVISION_DATABASE_URL": app_url,
            "HYPERVISION_DATA_DIR": str(db.data_dir),
            "HYPERVISION_SECRET_KEY": benchlib.BENCH_SECRET,
            "HYPERVISION_ARGON2_TIME_COST": "1",
            "HYPERVISION_ARGON2_MEMORY_KIB": "8",
            "HYPERVISION_ARGON2_PARALLELISM": "1",
            "HYPERVISION_LOGIN_IP_MAX_FAILURES": "100000",
            "HYPERVISION_LIVE_BUS": "nats",
            "HYPERVISION_NATS_URL": args.nats_url,
            "HYPERVISION_NATS_SUBJECT": f"hypervision.release.{secrets.token_hex(4)}",
            "HYPERVISION_LIVE_HEARTBEAT_SECONDS": "15",
        }
    )
    owner_env = {**env, "HYPERVISION_DATABASE_OWNER_URL": db.url}
    replicas = [Replica(f"app{n}", live.free_port(), folder / f"app{n}.log") for n in (1, 2, 3)]
    proxy: Haproxy | None = None
    gen: live.GenProc | None = None
    try:
        for r in replicas:
            r.start(env, db.data_dir, image)
        proxy = Haproxy(ensure_haproxy(), folder, {r.name: r.port for r in replicas})
        try:
            await proxy.wait_up([r.name for r in replicas], args.start_timeout)
        except RuntimeError:
            for r in replicas:
                note(f"{r.name}: {r.tail()}")
            raise
        note(f"3 replicas up behind haproxy at {proxy.base}")
        tokens = await live.sign_in_all(
            proxy.base, [r.username for r in readers + writers], args.signin_concurrency
        )
        gen = live.GenProc(args.clients + 1000)

        def reader_of(tag: int) -> Reader:
            return readers[tag % len(readers)]

        specs = [(t, "/api/v1/stream", tokens[reader_of(t).username]) for t in range(args.clients)]
        by_key: dict[tuple[object, ...], list[int]] = {}
        for t in range(args.clients):
            by_key.setdefault(reader_of(t).key, []).append(t)
        subjects = {k: reader_of(v[0]) for k, v in by_key.items()}

        def expected(c: Created) -> set[int]:
            assert c.label is not None
            out: set[int] = set()
            for key, reader in subjects.items():
                if live.may_read(reader, c.label):
                    out.update(by_key[key])
            return out

        print(
            f"## Release test — {args.clients} live clients through haproxy, {args.rate}/s "
            f"written, rolling release of 3 replicas"
        )
        print(
            f"{await benchlib.server_version(db)}; {proxy.version}; NATS {args.nats_url}; "
            f"Python {platform.python_version()}; {os.cpu_count()} CPU(s); load average "
            f"{os.getloadavg()[0]:.2f} at start; {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        )
        print(f"Ran: {what}" + (f" (--image: {fallback})." if fallback else "."), flush=True)
        note(f"opening {args.clients} streams through haproxy")
        opened = await gen.call(
            "follow", HOST, proxy.port, specs, 8, args.connect_max, 30,
            wait_seconds=args.connect_max + 60,
        )  # fmt: skip
        note(f"{opened['opened']}/{opened['requested']} streams open in {opened['seconds']:.1f} s")
        if opened["failed"]:
            raise RuntimeError(f"{opened['failed']} streams could not open")

        writes = Writes()
        stop = asyncio.Event()
        writer = asyncio.create_task(
            write_loop(
                proxy.base,
                [(w, tokens[w.username]) for w in writers],
                args.rate,
                stop,
                f"rel{secrets.token_hex(3)}",
                args.seed + 1,
                writes,
                args.give_up,
            )
        )
        await asyncio.sleep(args.warmup)
        # --- the rolling release --------------------------------------------------------
        steps: list[list[str]] = []
        release_started = time.monotonic()
        note("release: migration job (hypervision migrate as the owner)")
        t0 = time.monotonic()
        await asyncio.to_thread(
            migrate_job, owner_env, db.data_dir, next_image, folder / "migrate.log"
        )
        steps.append(["migration job", fmt(time.monotonic() - t0, 1), "", ""])
        for r in replicas:
            note(f"release: replacing {r.name}")
            t0 = time.monotonic()
            exited = await r.stop()
            await proxy.wait_down(r.name, 10)  # else it may still look up from before
            r.start(env, db.data_dir, next_image)
            try:
                up = await proxy.wait_up([r.name], args.start_timeout)
            except RuntimeError:
                note(f"{r.name}: {r.tail()}")
                raise
            steps.append(
                [f"replace {r.name}", fmt(time.monotonic() - t0, 1), fmt(exited, 2), fmt(up, 1)]
            )
            if writer.done():
                writer.result()  # a crashed writer stops the run
        release_seconds = time.monotonic() - release_started
        note(f"release done in {release_seconds:.1f} s")
        await asyncio.sleep(args.after)
        stop.set()
        await writer
        # --- drain and collect ----------------------------------------------------------
        tags = set(range(args.clients))
        want = {str(c.resource_id): expected(c) & tags for c in writes.created}
        expected_total = sum(len(v) for v in want.values())
        drained, last, last_change = time.monotonic(), -1, time.monotonic()
        while time.monotonic() - drained < args.drain_max:
            received = (await gen.call("count"))["received"]
            if received >= expected_total:
                break
            if received != last:
                last, last_change = received, time.monotonic()
            elif time.monotonic() - last_change > args.stall:
                break
            await asyncio.sleep(0.3)
        follow = await gen.call("follow_stats")
        collected = await gen.call("collect", False, wait_seconds=120)
        await gen.call("close")
        d = live.analyse(collected, writes.created, expected, tags)
        clients = per_client(collected, want, sorted(tags))
        worst_missed = max((m for m, _ in clients.values()), default=0)
        worst_dup = max((u for _, u in clients.values()), default=0)
        checked = await database_check(db, writes)
        # --- report ---------------------------------------------------------------------
        show(
            "Rolling release (seconds)",
            ["step", "took", "old exited after SIGTERM", "new seen up by haproxy"],
            [*steps, ["whole release", fmt(release_seconds, 1), "", ""]],
        )
        errors = ", ".join(f"{k} {v}" for k, v in sorted(writes.errors.items())) or "0"
        client_errors = ", ".join(f"{k} {v}" for k, v in sorted(follow["errors"].items())) or "0"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(follow["reasons"].items())) or "0"
        posts = sorted(s * 1000 for s in writes.seconds)
        bad = {
            "lost": checked["lost"],
            "duplicated writes": checked["duplicated"],
            "missed": d.missed,
            "duplicated events": d.duplicates,
            "leaked": d.leaked,
        }
        p50 = fmt(live.pct(posts, 50), 0)
        worst = fmt(posts[-1], 0) if posts else "—"
        lost, dup_keys = checked["lost"], checked["duplicated"]
        resumed = f"{follow['reconnects']} ({follow['resumed']})"
        ran = "package" if image is None else f"image {image}"
        if next_image != image:
            ran += f" → {next_image}"
        rows = [
            ["writes acknowledged", f"{len(writes.created):,}", "", ""],
            ["writes given up (never acknowledged)", str(len(writes.given_up)), "0",
             ok(not writes.given_up)],
            ["write attempts / errors retried", f"{writes.attempts:,} / {errors}", "", ""],
            ["answers replayed from the idempotency key", str(writes.replayed), "", ""],
            ["write p50 / max ms (retries included)", f"{p50} / {worst}", "", ""],
            ["lost (acknowledged, not in the database)", str(lost), "0", ok(lost == 0)],
            ["duplicated (two entries for one key)", str(dup_keys), "0", ok(dup_keys == 0)],
            ["deliveries / expected", f"{d.deliveries:,} / {d.expected:,}", "", ""],
            ["events missed: sum / worst client", f"{d.missed} / {worst_missed}", "0",
             ok(d.missed == 0)],
            ["events duplicated: sum / worst client", f"{d.duplicates} / {worst_dup}", "0",
             ok(d.duplicates == 0)],
            ["events leaked (not allowed)", str(d.leaked), "0", ok(d.leaked == 0)],
            ["stream ends seen by clients", reasons, "", ""],
            ["reconnections (with Last-Event-ID)", resumed, "", ""],
            ["client errors (failed attempts)", client_errors, "", ""],
            ["longest reconnection gap s", fmt(follow["gap_max"], 2), "", ""],
            ["release time s", fmt(release_seconds, 1), "< 300", ok(release_seconds < 300)],
            ["ran", ran, "", ""],
        ]  # fmt: skip
        show("Release test", ["figure", "measured", "goal", "met"], rows)
        if any(bad.values()):
            for example in d.miss_examples + d.leak_examples:
                note(example)
            note("FAILED: " + ", ".join(f"{k} {v}" for k, v in bad.items() if v))
            return 1
        return 0
    finally:
        if gen is not None:
            gen.stop()
        if proxy is not None:
            proxy.stop()
        for r in replicas:
            if r.proc is not None and r.proc.poll() is None:
                await r.stop(15)
        if args.show_logs:
            for r in replicas:
                print(f"--- {r.name}\n{r.tail(40)}", file=sys.stderr)
        await delete_stream(args.nats_url, env["HYPERVISION_NATS_SUBJECT"])
        shutil.rmtree(folder, ignore_errors=True)


async def delete_stream(url: str, subject: str) -> None:
    """The JetStream stream the replicas made for this run's subject (in memory, 1 h)."""
    import nats

    from hypervision.live.nats_bus import stream_name

    with contextlib.suppress(Exception):
        client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            await client.jetstream(timeout=2).delete_stream(stream_name(subject))
        finally:
            await client.close()


def ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--clients", type=int, default=300, help="live SSE clients through haproxy")
    p.add_argument("--rate", type=float, default=20, help="entries written per second")
    p.add_argument("--users", type=int, default=2000, help="readers (clients cycle over them)")
    p.add_argument("--warmup", type=float, default=10, help="seconds of writing before the release")
    p.add_argument("--after", type=float, default=10, help="seconds of writing after it")
    p.add_argument(
        "--image",
        action="store_true",
        help=f"run the container image (--image-tag, default {IMAGE}) under podman when both "
        "are present; else the package",
    )
    p.add_argument("--image-tag", default=IMAGE)
    p.add_argument("--next-image", help="the image the release rolls out (default: the same)")
    p.add_argument(
        "--nats-url", default=os.environ.get("HYPERVISION_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    p.add_argument("--pg-url", default=benchlib.PG_ADMIN_URL)
    p.add_argument("--signin-concurrency", type=int, default=8)
    p.add_argument("--connect-max", type=float, default=180, help="seconds to open the streams")
    p.add_argument("--start-timeout", type=float, default=90, help="seconds for a replica to be up")
    p.add_argument("--give-up", type=float, default=120, help="seconds a write is retried")
    p.add_argument("--drain-max", type=float, default=60)
    p.add_argument("--stall", type=float, default=5, help="stop waiting after S s without news")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--show-logs", action="store_true", help="print the replicas' log tails")
    p.add_argument("--keep", action="store_true", help="keep the database")
    args = p.parse_args()
    live.raise_fd_limit(args.clients + 1000)
    started = time.monotonic()
    role = None
    try:
        with benchlib.throwaway_database("postgresql", args.pg_url, args.keep) as db:
            from hypervision.migrate import upgrade

            role = urlsplit(db.url).path.lstrip("/") + "_app"
            admin(
                args.pg_url,
                f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS '
                "NOREPLICATION",
            )
            benchlib.in_thread(lambda: upgrade(db.url, app_role=role))
            status = asyncio.run(run(args, db, app_role_url(db.url, role)))
    finally:
        if role is not None and not args.keep:
            with contextlib.suppress(Exception):
                admin(args.pg_url, f'DROP ROLE IF EXISTS "{role}"')
    print(f"\nrelease test: {time.monotonic() - started:.0f} s in all", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
