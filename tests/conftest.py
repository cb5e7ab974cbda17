"""Fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hypervision.app import create_app
from hypervision.audit.models import GENESIS_HASH
from hypervision.config import Settings
from hypervision.db import Base
from tests import dbutil
from tests.factories import REFUSE_AUDIT

TEST_SECRET = "test-secret-key-with-enough-length-0123456789"

_pg_skip_reason: str | None = None
OWNER_URLS: dict[str, str] = {}  # application role's URL -> the owner's (PostgreSQL)


# Tests that keep SQLite's production durability (synchronous=FULL): the one that checks it,
# and the backups (a copy of a live database). Every other test runs with NORMAL, which in WAL
# mode loses nothing when a process dies, only on a power cut, and saves an fsync per commit.
DURABLE = (
    "tests/security/test_input_and_durability.py::test_commits_are_synchronous",
    "tests/test_backup.py::",
)
_durable = False  # the running test's setting, read by make_settings


# The run's template databases (a migrated SQLite file, a migrated PostgreSQL database), named
# by the process that starts the run (xdist's controller, or the only process): each worker
# copies them instead of migrating (tests/dbutil.py), and the starting process drops them.
TEMPLATE_DB = "HYPERVISION_TEST_TEMPLATE_DB"
TEMPLATE_DIR = "HYPERVISION_TEST_TEMPLATE_DIR"


def pytest_configure(config: pytest.Config) -> None:
    global _pg_skip_reason
    config.pluginmanager.register(_SlowFirst(), "hypervision-slow-first")
    _pg_skip_reason = dbutil.postgres_unreachable_reason()
    if _pg_skip_reason and dbutil.postgres_required():
        raise pytest.UsageError(f"PostgreSQL tests are required (CI) but {_pg_skip_reason}")
    # xdist's load scheduling hands each worker a quarter of its share of consecutive tests at
    # the start (150 of 1,800 on 3 workers): the slow ones, first in the order (SLOW_FIRST),
    # all went to the first worker, one after another, while the others ran through the rest.
    # One test at a time from the shared queue (2 pending per worker) keeps them spread.
    if getattr(config.option, "dist", "no") == "load" and config.option.maxschedchunk is None:
        config.option.maxschedchunk = 1
    if not hasattr(config, "workerinput"):  # workers inherit these from the environment
        os.environ[TEMPLATE_DB] = f"hv_test_tmpl_{secrets.token_hex(6)}"
        os.environ[TEMPLATE_DIR] = tempfile.mkdtemp(prefix="hv-test-template-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or TEMPLATE_DB not in os.environ:
        return
    if _pg_skip_reason is None:
        dbutil.drop_postgres_template(os.environ.pop(TEMPLATE_DB))
    shutil.rmtree(os.environ.pop(TEMPLATE_DIR), ignore_errors=True)


# The longest tests (a minute or more each on PostgreSQL) start first, so that under xdist
# none of them is left alone at the end of the run.
SLOW_FIRST = (
    "tests/security/test_leak_matrix.py::",
    "tests/security/test_fuzz_api.py::",
    "tests/browser/",
    "tests/live/test_replicas.py::",
    "tests/policy/test_visibility_differential.py::",
    "tests/products/test_rules_differential.py::",
    "tests/policy/test_query_differential.py::",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(DURABLE):
            item.add_marker(pytest.mark.durable)
    # HYPERVISION_TEST_ENGINES=sqlite (make test-fast): the database tests of the other
    # engines are deselected, not skipped one by one.
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        spec = getattr(item, "callspec", None)
        engine = spec.params.get("database_url") if spec else None
        (drop if engine is not None and not _engine_wanted(engine) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _SlowFirst:
    @pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by database
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def rank(item: pytest.Item) -> tuple[int, int]:
            for n, prefix in enumerate(SLOW_FIRST):
                if item.nodeid.startswith(prefix):
                    spec = getattr(item, "callspec", None)
                    engine = spec.params.get("database_url") if spec else None
                    return n, 0 if engine == "postgresql" else 1
            return len(SLOW_FIRST), 0

        items.sort(key=rank)  # stable: the rest keeps pytest's order


def _engine_wanted(engine: str) -> bool:
    engines = os.environ.get("HYPERVISION_TEST_ENGINES", "")
    return not engines.strip() or engine in {e.strip() for e in engines.split(",")}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures (a module's too) call make_settings."""
    global _durable
    _durable = item.get_closest_marker("durable") is not None


def pytest_report_header(config: pytest.Config) -> str:
    if _pg_skip_reason:
        return f"PostgreSQL tests SKIPPED: {_pg_skip_reason}"
    return f"PostgreSQL tests enabled ({dbutil.PG_ADMIN_URL})"


def make_settings(tmp: Path, database_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp,
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        "sqlite_synchronous": "FULL" if _durable else "NORMAL",
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _databases() -> Iterator[dict[str, str]]:
    """The databases made by this process (one set per xdist worker), kept for the whole run
    and dropped at its end: a worker may alternate engines without migrating again."""
    made: dict[str, str] = {}
    yield made
    for url in made.values():
        owner = OWNER_URLS.pop(url, None)
        if owner:
            dbutil.drop_postgres_database(owner)
            dbutil.drop_app_role(owner)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    _databases: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """A migrated database, created once per engine for the whole run."""
    engine = str(request.param)
    if engine == "postgresql" and _pg_skip_reason:
        pytest.skip(_pg_skip_reason)
    if engine not in _databases:
        _databases[engine] = _make_database(engine, tmp_path_factory)
    return _databases[engine]


def _make_database(engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the run's template (migrated once for the run), or on the first call of
    the run, the template made first."""
    if engine == "sqlite":
        return migrated_sqlite(tmp_path_factory.mktemp("sqlite") / "test.db")
    owner = dbutil.create_postgres_database(template=os.environ[TEMPLATE_DB])
    try:
        app_url = dbutil.create_app_role(owner)
        dbutil.grant_app_role(owner)
    except BaseException:
        dbutil.drop_postgres_database(owner)
        dbutil.drop_app_role(owner)
        raise
    OWNER_URLS[app_url] = owner
    return app_url  # the application connects as the restricted role, under RLS


def migrated_sqlite(path: Path) -> str:
    """A SQLite database at ``path`` at the head revision (a copy of the run's template);
    its URL."""
    dbutil.copy_sqlite(dbutil.sqlite_template(Path(os.environ[TEMPLATE_DIR])), path)
    return dbutil.sqlite_url(path)


@pytest.fixture
def owner_database_url(database_url: str) -> str:
    """The owner's connection (migrations, test set-up and tampering): on PostgreSQL the
    application connects as a restricted role that cannot alter the audit trail."""
    return OWNER_URLS.get(database_url, database_url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url)


async def reset_database(app: FastAPI, owner_engines: dict[str, AsyncEngine] | None = None) -> None:
    """Empty every table and restart the audit chain, so each test starts clean (as the
    owner: the application's role may not truncate, nor delete the audit trail).
    ``owner_engines``: the run's owner engines, kept from one test to the next (else one is
    made and closed for this call)."""
    owner = OWNER_URLS.get(app.state.settings.database_url)
    if not owner:
        await _empty(app.state.engine)
        return
    if owner_engines is not None:
        if owner not in owner_engines:
            owner_engines[owner] = create_async_engine(owner)
        await _empty(owner_engines[owner])
        return
    engine = create_async_engine(owner)
    try:
        await _empty(engine)
    finally:
        await engine.dispose()


async def _empty(engine: AsyncEngine) -> None:
    """DELETE, children first: on PostgreSQL, TRUNCATE of every table costs 0.1-1 s (a new
    file per table and an exclusive lock) where DELETE of a test's few rows costs
    milliseconds. Sequences carry on, as they did under TRUNCATE (no RESTART IDENTITY).
    The statements go as one script in one transaction (one round trip on PostgreSQL, one
    hop to aiosqlite's thread), not one by one: 30-100 ms less per test."""
    # Table names from the models, a constant hash: nothing here comes from outside.
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "audit_head"]
    deletes = [f'DELETE FROM "{name}"' for name in tables]  # noqa: S608
    audit_head = [
        "DELETE FROM audit_head",
        f"INSERT INTO audit_head (id, seq, last_hash) VALUES (1, 0, '{GENESIS_HASH}')",  # noqa: S608
    ]
    async with engine.connect() as conn:
        deletes = [*await _product_tables(conn), *deletes]
        await conn.commit()
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        if conn.dialect.name == "sqlite":
            script = [
                "BEGIN IMMEDIATE",
                *deletes,
                "DELETE FROM search_fts",
                f"DROP TRIGGER IF EXISTS {REFUSE_AUDIT}",
                *audit_head,
                "COMMIT",
            ]
            await driver.executescript(";\n".join(script) + ";")
            return
        if not await _bypasses_rls(conn):
            # FORCE ROW LEVEL SECURITY holds an owner that is not superuser: its DELETE
            # would see no row, TRUNCATE ignores policies.
            deletes = [d for d in deletes if d.startswith("DROP")] + [
                "TRUNCATE " + ", ".join(f'"{name}"' for name in tables) + " CASCADE"
            ]
        script = [
            *deletes,
            f"DROP TRIGGER IF EXISTS {REFUSE_AUDIT} ON audit_records",
            f"DROP FUNCTION IF EXISTS {REFUSE_AUDIT}()",
            *audit_head,
        ]
        # Several statements in one simple query: PostgreSQL runs them as one transaction.
        await driver.execute(";\n".join(script))


async def _product_tables(conn: AsyncConnection) -> list[str]:
    """DROP statements of the data products' own row tables (``dp_<id>``, made at run time:
    not in the metadata)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE tablename ~ '^dp_[0-9a-f]{32}$'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'dp_*'"
    names = (await conn.execute(text(query))).scalars().all()
    return [f'DROP TABLE "{name}"' for name in names]


_BYPASSES_RLS: dict[str, bool] = {}


async def _bypasses_rls(conn: AsyncConnection) -> bool:
    key = str(conn.engine.url)
    if key not in _BYPASSES_RLS:
        _BYPASSES_RLS[key] = bool(
            await conn.scalar(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        )
        await conn.rollback()  # the script below runs outside SQLAlchemy's transaction
    return _BYPASSES_RLS[key]


@pytest.fixture(scope="session")
async def _owner_engines(_databases: dict[str, str]) -> AsyncIterator[dict[str, AsyncEngine]]:
    """The owner's engine per PostgreSQL database, for the resets between tests: closed
    before the databases are dropped (hence set up after them)."""
    engines: dict[str, AsyncEngine] = {}
    yield engines
    for engine in engines.values():
        await engine.dispose()


@pytest.fixture
async def app(settings: Settings, _owner_engines: dict[str, AsyncEngine]) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    await reset_database(application, _owner_engines)
    yield application
    await application.state.hub.stop()
    await application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


def once_across_engines(database_url: str) -> None:
    """For engine-independent paths that are slow to drive (a subprocess per command, the web
    form): run on PostgreSQL, the deployment's engine, and on SQLite only without it."""
    if (
        engine_name(database_url) == "sqlite"
        and _pg_skip_reason is None
        and _engine_wanted("postgresql")
    ):
        pytest.skip("engine-independent path: run once, on PostgreSQL")


def engine_name(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


os.environ.setdefault("HYPERVISION_SECRET_KEY", TEST_SECRET)
