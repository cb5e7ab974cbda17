"""The RLS template (``records/rls.py``) generates, for every registered table, exactly the
policies the catalogue holds: each table's policies are dropped and re-created from the
template inside a transaction that is rolled back, and PostgreSQL's own text of every policy
is compared before and after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hypervision.kinds import KINDS
from hypervision.records import rls
from tests.conftest import engine_name

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

POLICY = (
    "SELECT policyname, cmd, permissive, roles, qual, with_check FROM pg_policies "
    "WHERE schemaname = 'public' AND tablename = $1 ORDER BY policyname"
)


@pytest.fixture
async def owner(owner_database_url: str, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    if engine_name(database_url) != "postgresql":
        pytest.skip("SQLite has no row-level security (ADR 0011)")
    conn = await asyncpg.connect(
        owner_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    )
    yield conn
    await conn.close()


async def test_the_catalogue_is_what_the_template_generates(owner: asyncpg.Connection) -> None:
    rules = rls.rules(KINDS)
    assert set(rules) == {*KINDS.tables(), "record_versions", "label_change_requests"}
    for table, rule in rules.items():
        before = [dict(r) for r in await owner.fetch(POLICY, table)]
        assert [p["policyname"] for p in before] == sorted(rls.POLICIES), table
        transaction = owner.transaction()
        await transaction.start()
        try:
            dropping: list[str] = []
            rls.drop(dropping.append, table)  # a migration passes op.execute
            for statement in dropping:
                await owner.execute(statement)
            assert await owner.fetch(POLICY, table) == []
            for statement in rls.statements(table, rule):
                await owner.execute(statement)
            after = [dict(r) for r in await owner.fetch(POLICY, table)]
        finally:
            await transaction.rollback()
        assert after == before, table
