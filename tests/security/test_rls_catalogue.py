"""PostgreSQL row-level security, checked in the catalogue and by trying (SECURITY.md 7).

The application connects as a role that owns nothing, is not superuser, has no BYPASSRLS, no
DDL and no UPDATE/DELETE on the audit trail; every protected table has ENABLE and FORCE ROW
LEVEL SECURITY; the identity is a signed, transaction-local context that fails closed and that
SQL run as the application's role cannot forge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.config import Settings
from hypervision.kinds import PROTECTED_TABLES
from hypervision.policy import rls
from hypervision.policy.roles import Role
from tests.conftest import engine_name
from tests.factories import ENTRY, officer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if engine_name(database_url) != "postgresql":
        pytest.skip("SQLite has no row-level security (ADR 0011)")


@pytest.fixture
async def owner(owner_database_url: str, postgres_only: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(owner_database_url))
    yield conn
    await conn.close()


@pytest.fixture
async def app_conn(database_url: str, postgres_only: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(database_url))
    yield conn
    await conn.close()


@pytest.fixture
async def seeded(app: FastAPI, client: AsyncClient, postgres_only: None) -> dict[str, str]:
    """Rows in the protected tables, written through the API: an entry (with its version,
    outbox event and audit records), a comment and a zone."""
    alice = await officer(app, client, "alice", "PP", roles=(Role.WATCH_OFFICER,))
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    comment = await client.post(
        f"/api/v1/entries/{entry['id']}/comments", json={"body": "Vu."}, headers=alice
    )
    assert comment.status_code == 201, comment.text
    return alice


def role_of(url: str) -> str:
    name = urlsplit(url).username
    assert name
    return name


async def test_application_role_has_no_power(
    owner: asyncpg.Connection, database_url: str, owner_database_url: str
) -> None:
    role = role_of(database_url)
    assert role != role_of(owner_database_url)
    attrs = await owner.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication "
        "FROM pg_roles WHERE rolname = $1",
        role,
    )
    assert attrs is not None and not any(attrs.values()), dict(attrs or {})
    owned = await owner.fetchval(
        """SELECT (SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                   WHERE r.rolname = $1)
                + (SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
                   WHERE r.rolname = $1)
                + (SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
                   WHERE r.rolname = $1)
                + (SELECT count(*) FROM pg_type t JOIN pg_roles r ON r.oid = t.typowner
                   WHERE r.rolname = $1)""",
        role,
    )
    assert owned == 0
    database = urlsplit(database_url).path.lstrip("/")
    assert not await owner.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", role)
    assert not await owner.fetchval(
        "SELECT has_database_privilege($1, $2, 'CREATE')", role, database
    )
    member_of = await owner.fetch(
        "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.member "
        "JOIN pg_roles b ON b.oid = m.roleid WHERE a.rolname = $1",
        role,
    )
    assert member_of == []  # inherits nobody's rights (nor can SET ROLE to them)


async def test_audit_trail_is_append_only_for_the_application(
    owner: asyncpg.Connection, database_url: str
) -> None:
    role = role_of(database_url)
    for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
        assert not await owner.fetchval(
            "SELECT has_table_privilege($1, 'audit_records', $2)", role, privilege
        ), privilege
    for privilege in ("SELECT", "INSERT"):
        assert await owner.fetchval(
            "SELECT has_table_privilege($1, 'audit_records', $2)", role, privilege
        ), privilege
    for privilege in ("INSERT", "DELETE", "TRUNCATE"):
        assert not await owner.fetchval(
            "SELECT has_table_privilege($1, 'audit_head', $2)", role, privilege
        ), privilege
    assert not await owner.fetchval(
        "SELECT has_table_privilege($1, 'hv_context_key', 'SELECT')", role
    )


async def test_every_protected_table_forces_row_level_security(owner: asyncpg.Connection) -> None:
    rows = await owner.fetch(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
    )
    flags = {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows}
    for table in PROTECTED_TABLES:
        assert flags[table] == (True, True), table
    # Every table holding a label, or a record of another one, is in the list.
    labelled = {
        r["table_name"]
        for r in await owner.fetch(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name IN "
            "('label_level', 'label', 'entry_id', 'layer_id', 'synthesis_id')"
        )
    }
    assert labelled <= set(PROTECTED_TABLES), labelled - set(PROTECTED_TABLES)
    # Each protected table has a policy for every command, none of them a blanket "true" read.
    policies = await owner.fetch(
        "SELECT tablename, cmd, qual FROM pg_policies WHERE schemaname = 'public'"
    )
    by_table: dict[str, set[str]] = {}
    for p in policies:
        by_table.setdefault(p["tablename"], set()).add(p["cmd"])
        if p["cmd"] == "SELECT":
            assert p["qual"] and p["qual"].strip("() ") != "true", p
    for table in PROTECTED_TABLES:
        assert "SELECT" in by_table.get(table, set()), table
    # Views over protected tables run with the reader's rights.
    views = await owner.fetch(
        "SELECT relname, reloptions FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'v'"
    )
    for view in views:
        assert "security_invoker=true" in (view["reloptions"] or []), view["relname"]


async def test_the_context_function_cannot_be_hijacked(owner: asyncpg.Connection) -> None:
    rows = await owner.fetch(
        "SELECT proname, prosecdef, proconfig FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'hv\\_%'"
    )
    functions = {r["proname"]: r for r in rows}
    assert functions["hv_context"]["prosecdef"]  # reads the key the caller may not read
    for name, row in functions.items():
        assert any(c.startswith("search_path=") for c in row["proconfig"] or []), name


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in PROTECTED_TABLES}  # noqa: S608


def forged(payload: Mapping[str, object], key: bytes) -> str:
    hexed = json.dumps(payload).encode().hex()
    return f"{hexed}.{hmac.new(key, hexed.encode(), hashlib.sha256).hexdigest()}"


async def test_no_context_or_a_bad_one_sees_nothing(
    seeded: dict[str, str],
    owner: asyncpg.Connection,
    app_conn: asyncpg.Connection,
    settings: Settings,
) -> None:
    stored = await counts(owner)
    for table in ("entries", "record_versions", "comments", "outbox", "audit_records"):
        assert stored[table] > 0, table
    everything = {"system": True, "exp": int(time.time()) + 600}
    reader = {"levels": ["NP", "DR"], "groups": [], "org": None, "ancestry": [], "audit": True}
    attempts = {
        "no context": None,
        "empty (as a reused connection has it)": "",
        "not signed": json.dumps(everything).encode().hex(),
        "garbage": "x.y",
        "signed with another key": forged(everything, b"k" * 32),
        "tag of another payload": rls.sign(settings, reader).split(".")[0]
        + "."
        + rls.sign(settings, everything).split(".")[1],
        "expired": forged({"system": True, "exp": int(time.time()) - 1}, rls.context_key(settings)),
    }
    for name, value in attempts.items():
        async with app_conn.transaction():
            if value is not None:
                await app_conn.execute("SELECT set_config('hypervision.context', $1, true)", value)
            seen = await counts(app_conn)
        assert set(seen.values()) == {0}, (name, seen)
    # The same role with the server's signed context sees the rows: the zeros above are the
    # policy's doing, not an empty database.
    async with app_conn.transaction():
        await app_conn.execute(
            "SELECT set_config('hypervision.context', $1, true)",
            rls.sign(settings, rls.SYSTEM_CONTEXT),
        )
        assert await counts(app_conn) == stored
    # Transaction-local: the next transaction on the same connection has no identity.
    async with app_conn.transaction():
        assert set((await counts(app_conn)).values()) == {0}


async def test_the_application_role_cannot_forge_nor_escape(
    seeded: dict[str, str], app_conn: asyncpg.Connection
) -> None:
    refused = {
        "read the key": "SELECT key FROM hv_context_key",
        "replace the key": "UPDATE hv_context_key SET key = 'x'",
        "switch RLS off": "ALTER TABLE entries DISABLE ROW LEVEL SECURITY",
        "stop forcing it": "ALTER TABLE entries NO FORCE ROW LEVEL SECURITY",
        "drop a policy": "DROP POLICY hv_read ON entries",
        "add a policy": "CREATE POLICY open ON entries FOR SELECT USING (true)",
        "replace the context function": (
            "CREATE OR REPLACE FUNCTION hv_context() RETURNS jsonb LANGUAGE sql "
            "AS $$ SELECT '{\"system\": true}'::jsonb $$"
        ),
        "shadow it in another schema": "CREATE SCHEMA mine",
        "create a table": "CREATE TABLE mine (id int)",
        "become the owner": "SET ROLE postgres",
        "alter the audit trail": "UPDATE audit_records SET actor_name = 'x'",
        "delete the audit trail": "DELETE FROM audit_records",
        "truncate the audit trail": "TRUNCATE audit_records",
        "truncate entries": "TRUNCATE entries",
        "rewind the audit head": "DELETE FROM audit_head",
    }
    for name, statement in refused.items():
        with pytest.raises(asyncpg.PostgresError) as error:
            async with app_conn.transaction():
                await app_conn.execute(statement)
        assert isinstance(
            error.value,
            asyncpg.InsufficientPrivilegeError | asyncpg.exceptions.UndefinedObjectError,
        ) or "must be owner" in str(error.value), (name, error.value)


async def test_a_stale_key_makes_the_server_not_ready(
    client: AsyncClient, owner: asyncpg.Connection
) -> None:
    """A secret key changed without ``migrate``: every table would look empty, so the
    readiness probe fails and says what to do."""
    assert (await client.get("/readyz")).status_code == 200
    key = await owner.fetchval("SELECT key FROM hv_context_key")
    await owner.execute("UPDATE hv_context_key SET key = $1", b"another key" * 3)
    try:
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "rls_key_mismatch"
        assert "hypervision migrate" in answer.json()["error"]["message"]
    finally:
        await owner.execute("UPDATE hv_context_key SET key = $1", key)
    assert (await client.get("/readyz")).status_code == 200
