"""Migration 0021 (docs/adr/0039) indexes the records already sequenced by the ids they name,
once each, and leaves queued records to the sequencer; on PostgreSQL the index is under
row-level security like the trail."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest

from hypervision.migrate import upgrade
from tests import dbutil

BEFORE = "0020"  # the revision before the console's
INSERT = (
    "INSERT INTO audit_records (seq, id, at, actor_name, action, surface, decision, "
    "resource_ids, labels, detail) VALUES ({}, '{}', CURRENT_TIMESTAMP, 'x', 'entry.read', "
    "'api', 'allowed', '{}', '[]', '{{}}')"
)


def _rows(a: str, b: str) -> list[str]:
    """Two sequenced records (one naming a twice over two ids), one queued."""
    return [
        INSERT.format(seq, uuid.uuid4(), json.dumps(ids))
        for seq, ids in (("1", [a, b, a]), ("2", [a]), ("NULL", [b]))
    ]


def test_sqlite_backfill(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    dbutil.in_thread(lambda: upgrade(url, revision=BEFORE))
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with sqlite3.connect(tmp_path / "m.db") as conn:
        for statement in _rows(a, b):
            conn.execute(statement)
    dbutil.in_thread(lambda: upgrade(url))
    with sqlite3.connect(tmp_path / "m.db") as conn:
        found = sorted(conn.execute("SELECT resource_id, seq FROM audit_resources"))
    assert found == sorted([(a, 1), (b, 1), (a, 2)])


def test_postgresql_backfill_under_row_level_security(tmp_path: Path) -> None:
    reason = dbutil.postgres_unreachable_reason()
    if reason:
        if dbutil.postgres_required():
            pytest.fail(reason)
        pytest.skip(reason)
    url = dbutil.create_postgres_database()
    try:
        dbutil.in_thread(lambda: upgrade(url, revision=BEFORE))
        a, b = str(uuid.uuid4()), str(uuid.uuid4())

        async def run(statements: list[str], query: str) -> list[tuple[object, ...]]:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                for statement in statements:
                    await conn.execute(statement)
                return [tuple(r) for r in await conn.fetch(query)] if query else []
            finally:
                await conn.close()

        dbutil.in_thread(lambda: asyncio.run(run(_rows(a, b), "")))
        dbutil.in_thread(lambda: upgrade(url))
        found = dbutil.in_thread(
            lambda: asyncio.run(run([], "SELECT resource_id, seq FROM audit_resources"))
        )
        assert sorted(found) == sorted([(a, 1), (b, 1), (a, 2)])
        rls = dbutil.in_thread(
            lambda: asyncio.run(
                run(
                    [],
                    "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname = 'audit_resources'",
                )
            )
        )
        assert rls == [(True, True)]
    finally:
        dbutil.drop_postgres_database(url)
