# ruff: noqa: T201 - benchmarks print their figures
"""Shared helpers for the benchmarks in bench/: throw-away databases, settings, users,
timing statistics and plain-text tables.

Benchmarks print figures and ratios against a baseline measured in the same run; they never
assert timings (the machines they run on are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

BENCH_SECRET = "bench-secret-key-not-for-production-0123456789"  # noqa: S105
# Migrations read the settings from the environment (hypervision.migrations.env).
os.environ.setdefault("HYPERVISION_SECRET_KEY", BENCH_SECRET)

PG_ADMIN_URL = os.environ.get("HYPERVISION_BENCH_POSTGRES_URL") or os.environ.get(
    "HYPERVISION_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "correct horse battery staple"  # noqa: S105 - throw-away bench accounts

T = TypeVar("T")


# --- command line ---------------------------------------------------------------------------


def parser(description: str, default_rows: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--rows", type=int, default=default_rows, help=f"default {default_rows}")
    p.add_argument(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL server (any database) where hv_bench_<random> is created and dropped "
        "(default $HYPERVISION_BENCH_POSTGRES_URL, $HYPERVISION_TEST_POSTGRES_URL or "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)",
    )
    p.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    return p


# --- throw-away databases -------------------------------------------------------------------


@dataclass(frozen=True)
class BenchDb:
    engine: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL of the throw-away database
    data_dir: Path  # temporary directory (the SQLite file lives there)

    @property
    def dsn(self) -> str:
        """The asyncpg DSN (PostgreSQL) or the file path (SQLite)."""
        if self.engine == "postgresql":
            return pg_dsn(self.url)
        return self.url.split(":///", 1)[1]


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work that calls ``asyncio.run`` (Alembic) away from any event loop."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["ok"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["err"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]
    return box["ok"]  # type: ignore[no-any-return]


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def throwaway_database(
    engine: str, pg_url: str = PG_ADMIN_URL, keep: bool = False
) -> Iterator[BenchDb]:
    """A new, migrated database: a temporary SQLite file, or ``hv_bench_<random>`` on the
    PostgreSQL server; removed afterwards (also on error or Ctrl-C) unless ``keep``."""
    from hypervision.migrate import upgrade

    data_dir = Path(tempfile.mkdtemp(prefix="hv_bench_"))
    os.environ["HYPERVISION_DATA_DIR"] = str(data_dir)  # where the migration engine may mkdir
    name = f"hv_bench_{secrets.token_hex(4)}"
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    else:
        parts = urlsplit(pg_url)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        in_thread(lambda: asyncio.run(_pg_admin(pg_url, f'CREATE DATABASE "{name}"')))
    db = BenchDb(engine=engine, url=url, data_dir=data_dir)
    try:
        started = time.perf_counter()
        in_thread(lambda: upgrade(url))
        seconds = time.perf_counter() - started
        note(f"database {redact(url)} created and migrated in {seconds:.1f} s")
        yield db
    finally:
        if keep:
            note(f"kept database {redact(url)} (data dir {data_dir})")
        else:
            if engine == "postgresql":
                drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                try:
                    in_thread(lambda: asyncio.run(_pg_admin(pg_url, drop)))
                except Exception as exc:  # noqa: BLE001 - report, never hide the real error
                    note(f"could not drop {name}: {exc}")
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def existing_database(url: str) -> Iterator[BenchDb]:
    """A database an earlier ``--keep`` run left (its SQLAlchemy URL), migrated to head (a
    migration added since then applies), kept afterwards; a new temporary data directory."""
    from hypervision.migrate import upgrade

    engine = "postgresql" if url.startswith("postgresql") else "sqlite"
    data_dir = Path(tempfile.mkdtemp(prefix="hv_bench_"))
    os.environ["HYPERVISION_DATA_DIR"] = str(data_dir)
    try:
        started = time.perf_counter()
        in_thread(lambda: upgrade(url))
        note(f"database {redact(url)} migrated in {time.perf_counter() - started:.1f} s (kept)")
        yield BenchDb(engine=engine, url=url, data_dir=data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def bench_settings(db: BenchDb, **extra: Any) -> Any:
    """Settings for a bench run: cheap argon2 (sign-ins are not what is measured)."""
    from hypervision.config import Settings

    values: dict[str, Any] = {
        "data_dir": db.data_dir,
        "database_url": db.url,
        "secret_key": BENCH_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        **extra,
    }
    return Settings(**values)


# --- organisations, groups and users through the service functions ---------------------------


async def make_org(sessions: Any, code: str, parent: str | None = None) -> Any:
    from hypervision.db import transaction
    from hypervision.identity import service
    from hypervision.identity.principal import system_principal
    from hypervision.identity.schemas import OrganisationCreate

    data = OrganisationCreate(code=code, name=f"Organisation {code}", parent_code=parent)
    async with transaction(sessions) as session:
        return await service.create_organisation(
            session=session, actor=system_principal("bench"), data=data
        )


async def make_group(sessions: Any, code: str) -> None:
    from hypervision.db import transaction
    from hypervision.identity import service
    from hypervision.identity.principal import system_principal
    from hypervision.identity.schemas import GroupCreate

    async with transaction(sessions) as session:
        await service.create_group(
            session=session, actor=system_principal("bench"), data=GroupCreate(code=code, name=code)
        )


async def make_user(
    sessions: Any,
    settings: Any,
    passwords: Any,
    username: str,
    org: str,
    *,
    roles: Sequence[str] = ("officer",),
    clearance: str = "NP",
    groups: Sequence[str] = (),
) -> Any:
    from hypervision.db import transaction
    from hypervision.identity import service
    from hypervision.identity.principal import system_principal
    from hypervision.identity.schemas import UserCreate
    from hypervision.policy.roles import Role

    data = UserCreate(
        username=username,
        full_name=username.replace(".", " ").title(),
        organisation_code=org,
        roles=[Role(r) for r in roles],
        clearance=clearance,
        groups=list(groups),
        password=PASSWORD,
    )
    async with transaction(sessions) as session:
        return await service.create_user(
            session=session,
            actor=system_principal("bench"),
            settings=settings,
            passwords=passwords,
            data=data,
        )


async def principal_of(sessions: Any, user_id: Any, request_id: str = "bench") -> Any:
    """The principal the app would build for this user on a request (bearer, every scope)."""
    from hypervision.db import transaction
    from hypervision.identity import auth
    from hypervision.identity.models import User

    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        return await auth.build_principal(
            session=session,
            user=user,
            scopes=None,
            client=auth.Client(address="127.0.0.1", request_id=request_id),
        )


# --- statistics and tables ------------------------------------------------------------------


def py_spy_done(proc: subprocess.Popen[bytes], out: Path, *, interrupt: bool = False) -> bool:
    """Wait for a ``py-spy record`` process to write ``out`` (``interrupt``: it records until
    stopped, and writes its file when interrupted); killed after a minute. Whether ``out``
    was written."""
    if interrupt:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return out.exists()


def py_spy_samples(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The samples of a py-spy ``record -f raw`` file: each stack's count and its frames,
    outermost first."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            yield int(n), stack.split(";")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Latency:
    """Latency figures in milliseconds of a list of durations in seconds."""

    n: int
    p50: float
    p95: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 95), max(ms), sum(ms) / len(ms))

    def cells(self) -> list[str]:
        return [str(self.n), fmt(self.p50), fmt(self.p95), fmt(self.max), fmt(self.mean)]


LATENCY_HEADERS = ["n", "p50 ms", "p95 ms", "max ms", "mean ms"]


def fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "—"
    return f"{a / b:.2f}"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table (readable as text, pastable into an issue)."""
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            numeric = i > 0 and (cell[:1].isdigit() or cell[:1] in "—-")
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n### {title}\n", line(cells[0]), sep, *(line(r) for r in cells[1:])])


def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(title, headers, rows), flush=True)


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the machine, all cores."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def note(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def server_version(db: BenchDb) -> str:
    if db.engine == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        buffers = await conn.fetchval("SHOW shared_buffers")
        sync = await conn.fetchval("SHOW synchronous_commit")
        return f"PostgreSQL {version} (shared_buffers {buffers}, synchronous_commit {sync})"
    finally:
        await conn.close()


async def header(name: str, db: BenchDb, rows: int, extra: str = "") -> None:
    import sqlalchemy

    version = await server_version(db)
    print(f"## {name} — {db.engine}, {rows:,} rows{extra}")
    print(
        f"{version}; Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; "
        f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f}; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        flush=True,
    )


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


async def bearer_tokens(client: Any, users: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Sign every bench user in through the API; their Authorization headers, by key."""
    tokens: dict[str, dict[str, str]] = {}
    for key, user in users.items():
        r = await client.post(
            "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
        )
        r.raise_for_status()
        tokens[key] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return tokens
