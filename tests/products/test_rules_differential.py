"""Differential test of stewards' rules (issue 17, SECURITY.md 33): for generated rule trees,
rows and readers, the Python check (``row_allows``), the SQL filter (``row_filter``) run on the
engine under test and — on PostgreSQL — row-level security alone (a policy made from
``rls_predicate`` on a typed scratch table, read as the application's role with the reader's
signed context and no filter) give the same verdict on every (tree, row, reader) triple.

Each example is one tree, its rows and its readers: one SQL query per (tree, reader) and, on
PostgreSQL, one policy per tree. Same harness as the label policy's differential test: a
Hypothesis search in a worker thread, on an event loop of its own, so a failing example is
shrunk against the real database.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from hypervision.config import Settings
from hypervision.db import UTCDateTime, create_engine
from hypervision.policy import rls
from hypervision.products.rules import CTX_ROLES_FUNCTION, Reader, RuleSet
from tests import dbutil

MIN_TRIPLES = 100_000
EXAMPLES = 200
# make test: a quarter of the search per engine; the 10^5 triples in make test-deep (CI).
QUICK_EXAMPLES = 50
ROWS = (25, 30)  # rows per tree (min, max)
READERS = (20, 24)  # readers per tree (min, max): 200 x 25 x 20 = 100,000 triples at the least

LEVELS = ("NP", "R", "DR")
WEIRD = 'l\'unité "A" %s:x'  # a field name that needs quoting everywhere
FIELDS: Mapping[str, str] = {
    "dept": "string",
    WEIRD: "string",
    "org": "string",
    "level": "string",
    "n": "integer",
    "m": "integer",
    "x": "number",
    "flag": "boolean",
    "day": "date",
    "at": "datetime",
    "shape": "geometry",  # in the schema, never in a condition
}
SCALARS = [name for name, kind in FIELDS.items() if kind != "geometry"]

# organisation -> parent: O1 ─ O2 ─ O3, and O4 alone
ORGS = (
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "00000000-0000-4000-8000-00000000000a",
    "00000000-0000-4000-8000-00000000000b",
)
PARENT: Mapping[str, str | None] = {
    ORGS[0]: None,
    ORGS[1]: ORGS[0],
    ORGS[2]: ORGS[1],
    ORGS[3]: None,
}
GROUPS = ("75", "13", "MEDICAL", "o'k", "é", "x:y", "")
ROLES = ("officer", "data_steward", "MEDICAL", "75")
STRINGS = ("", "75", "13", "MEDICAL", "o'k", "é", "e\u0301", "x:y", ":name", "50%", "a\\b", "  ")
T0 = datetime(2026, 7, 26, 12, tzinfo=UTC)
POOLS: Mapping[str, tuple[Any, ...]] = {
    "dept": STRINGS,
    WEIRD: (*STRINGS, "日本", "😀"),
    "org": (*ORGS, ORGS[2].upper(), "", "not-an-id"),
    "level": (*LEVELS, "ZZ", "", "np"),
    "n": (-(2**63), -3, 0, 1, 2, 5, 2**62, 2**63 - 1),
    "m": (-3, 0, 1, 2, 5),
    "x": (-1.5, -0.0, 0.0, 0.1, 0.30000000000000004, 2.0, 2.5, 1e300, 5e-324),
    "flag": (True, False),
    "day": (date(2026, 7, 26), date(2026, 7, 27), date(1999, 12, 31), date(999, 1, 1)),
    "at": (
        T0,
        T0 + timedelta(microseconds=1),
        T0 - timedelta(microseconds=1),
        T0 + timedelta(hours=1),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ),
}
# JSON literals for each field (dates and datetimes as ISO text, some with other offsets)
LITERALS: Mapping[str, tuple[Any, ...]] = {
    **{name: POOLS[name] for name in ("dept", WEIRD, "org", "level", "n", "m", "flag")},
    "x": (*POOLS["x"], 2, -3),
    "day": ("2026-07-26", "2026-07-27", "1999-12-31", "0999-01-01"),
    "at": (
        "2026-07-26T12:00:00+00:00",
        "2026-07-26T14:00:00+02:00",
        "2026-07-26T12:00:00.000001Z",
        "2026-07-26T11:59:59.999999+00:00",
        "2026-07-26T13:00:00+00:00",
    ),
}
EQ_OPS = ("eq", "ne")
ORDER_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
ORDERED = {"integer", "number", "date", "datetime"}

Tree = dict[str, Any]


def rec(name: str) -> dict[str, Any]:
    return {"rec": name}


def user(attr: str) -> dict[str, Any]:
    return {"user": attr}


def value(literal: Any) -> dict[str, Any]:
    return {"value": literal}


def atom(op: str, left: dict[str, Any], right: dict[str, Any]) -> Tree:
    return {"op": op, "left": left, "right": right}


@st.composite
def compared(draw: st.DrawFn) -> Tree:
    """eq … ge between a field and a literal, two fields, or the reader and either."""
    kind = draw(st.sampled_from(("literal", "fields", "organisation", "clearance")))
    if kind == "literal":
        name = draw(st.sampled_from(SCALARS))
        ops = ORDER_OPS if FIELDS[name] in ORDERED else EQ_OPS
        sides = [rec(name), value(draw(st.sampled_from(LITERALS[name])))]
    elif kind == "fields":
        pair = draw(st.sampled_from((("n", "m"), ("n", "n"), ("dept", WEIRD), ("dept", "org"))))
        ops = ORDER_OPS if FIELDS[pair[0]] in ORDERED else EQ_OPS
        sides = [rec(pair[0]), rec(pair[1])]
    elif kind == "organisation":
        other = draw(st.sampled_from((rec("org"), value(ORGS[0]), value(ORGS[2].upper()))))
        ops, sides = EQ_OPS, [user("organisation"), other]
    else:
        other = draw(st.sampled_from((rec("level"), *(value(n) for n in LEVELS))))
        ops, sides = ORDER_OPS, [user("clearance"), other]
    left, right = draw(st.permutations(sides))
    return atom(draw(st.sampled_from(ops)), left, right)


@st.composite
def membership(draw: st.DrawFn) -> Tree:
    """in, not_in, contains: over the reader's sets or a list of literals."""
    kind = draw(st.sampled_from(("text", "ancestry", "list", "reader", "literal")))
    if kind == "text":
        item, within = (
            rec(draw(st.sampled_from(("dept", WEIRD)))),
            user(draw(st.sampled_from(("groups", "roles")))),
        )
    elif kind == "ancestry":
        item = draw(st.sampled_from((rec("org"), user("organisation"))))
        within = user("organisation_ancestors")
    elif kind == "list":
        name = draw(st.sampled_from(SCALARS))
        item = rec(name)
        within = value(draw(st.lists(st.sampled_from(LITERALS[name]), max_size=3)))
    elif kind == "reader":
        attr, pool = draw(st.sampled_from((("clearance", LEVELS), ("organisation", ORGS))))
        item, within = user(attr), value(draw(st.lists(st.sampled_from(pool), max_size=3)))
    else:
        attr = draw(st.sampled_from(("groups", "roles", "organisation_ancestors")))
        pool = ORGS if attr == "organisation_ancestors" else GROUPS
        item, within = value(draw(st.sampled_from(pool))), user(attr)
    op = draw(st.sampled_from(("in", "not_in", "contains")))
    return atom(op, within, item) if op == "contains" else atom(op, item, within)


@functools.cache
def null_test() -> st.SearchStrategy[Tree]:
    operands = [rec(name) for name in SCALARS] + [user("organisation"), user("clearance")]
    return st.builds(
        lambda op, left: {"op": op, "left": left},
        st.sampled_from(("is_null", "not_null")),
        st.sampled_from(operands),
    )


@functools.cache  # built once: Hypothesis validates a strategy on first use
def conditions() -> st.SearchStrategy[Tree]:
    atoms = st.one_of(compared(), membership(), null_test())
    return st.recursive(
        atoms,
        lambda kids: st.one_of(
            st.lists(kids, max_size=3).map(lambda parts: {"all": parts}),
            st.lists(kids, max_size=3).map(lambda parts: {"any": parts}),
            kids.map(lambda part: {"not": part}),
        ),
        max_leaves=6,
    )


@functools.cache
def trees() -> st.SearchStrategy[Tree]:
    rule = st.fixed_dictionaries(
        {"effect": st.sampled_from(("allow", "deny")), "when": conditions()},
        optional={"note": st.sampled_from(("", "SAMU : santé seulement"))},
    )
    return st.fixed_dictionaries(
        {"rows": st.lists(rule, max_size=4), "rows_default": st.sampled_from(("allow", "deny"))}
    )


@functools.cache
def rows() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({name: st.sampled_from((None, *POOLS[name])) for name in SCALARS})


def chain(org: str | None) -> frozenset[str]:
    found: set[str] = set()
    while org is not None:
        found.add(org)
        org = PARENT[org]
    return frozenset(found)


def reader_pool() -> list[Reader]:
    """Every mix of organisation, clearance, and a few sets of groups and of roles (800
    readers): an example draws its readers from here, one draw each."""
    group_sets = [(), ("75",), ("MEDICAL",), ("o'k", "é"), ("13", "x:y", ""), tuple(GROUPS)]
    role_sets = [(), ("officer",), ("data_steward", "MEDICAL"), ("75", "officer")]
    return [
        Reader(org, chain(org), frozenset(groups), rank, frozenset(roles))
        for org in (None, *ORGS)
        for rank in range(-1, len(LEVELS))
        for groups in group_sets
        for roles in role_sets
    ]


READER_POOL = reader_pool()


@dataclass(frozen=True)
class Example:
    tree: Tree
    rows: list[dict[str, Any]]
    readers: list[Reader]


def examples() -> st.SearchStrategy[Example]:
    return st.builds(
        Example,
        tree=trees(),
        rows=st.lists(rows(), min_size=ROWS[0], max_size=ROWS[1]),
        readers=st.lists(st.sampled_from(READER_POOL), min_size=READERS[0], max_size=READERS[1]),
    )


def context(reader: Reader) -> dict[str, Any]:
    """The reader's signed context, as ``policy.rls.reader_context`` makes it."""
    return {
        "levels": list(LEVELS[: reader.clearance_rank + 1]),
        "groups": sorted(reader.groups),
        "org": reader.organisation,
        "ancestry": sorted(reader.ancestors),
        "roles": sorted(reader.roles),
        "audit": False,
    }


def scratch_table(name: str) -> Table:
    """A product's typed table, as the storage keeps one."""
    types = {
        "string": Text,
        "integer": BigInteger,
        "number": Double,
        "boolean": Boolean,
        "date": Date,
        "datetime": UTCDateTime,
    }
    columns = [Column(n, types[FIELDS[n]]()) for n in SCALARS]
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), *columns)


@dataclass
class Tally:
    examples: int = 0
    triples: int = 0
    allowed: int = 0
    denied: int = 0
    queries: int = 0
    rls_triples: int = 0
    dialects: set[str] = field(default_factory=set)


@dataclass
class World:
    settings: Settings
    engine: AsyncEngine  # the application's role
    owner: AsyncEngine  # set-up (PostgreSQL: policies; bypasses RLS)
    table: Table
    tally: Tally

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


async def ensure_roles_function(conn: AsyncConnection) -> None:
    """hv_ctx_roles from its constant, as the migration that adds it does (owner)."""
    found = await conn.exec_driver_sql("SELECT to_regprocedure('hv_ctx_roles()')")
    if found.scalar() is None:
        await conn.exec_driver_sql(CTX_ROLES_FUNCTION)


async def prepare(world: World, app_role: str | None) -> None:
    async with world.owner.begin() as conn:
        await conn.run_sync(world.table.create)
        if world.postgres:
            name = rls.quote_ident(world.table.name)
            await ensure_roles_function(conn)
            await conn.exec_driver_sql(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            await conn.exec_driver_sql(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
            assert app_role is not None
            await conn.exec_driver_sql(f"GRANT SELECT ON {name} TO {rls.quote_ident(app_role)}")


async def check_example(world: World, example: Example) -> None:
    rules = RuleSet.parse(example.tree, FIELDS, LEVELS)
    assert RuleSet.parse(rules.to_tree(), FIELDS, LEVELS).fingerprint() == rules.fingerprint()
    table, tally = world.table, world.tally
    stored = [{"id": i + 1, **row} for i, row in enumerate(example.rows)]
    # Python reads a null field as absent: the same thing.
    recs = {r["id"]: {k: v for k, v in r.items() if v is not None} for r in stored}
    predicate = rules.rls_predicate(rls.quote_ident)
    if world.postgres:  # this tree's policy, and its rows, set up by the owner
        name = rls.quote_ident(table.name)
        async with world.owner.begin() as conn:
            # Scratch data: no need to wait for the disk at each tree's commit.
            await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            await conn.exec_driver_sql(f"DROP POLICY IF EXISTS hv_rules ON {name}")
            await conn.exec_driver_sql(
                f"CREATE POLICY hv_rules ON {name} FOR SELECT "
                f"USING ((SELECT hv_ctx_system()) OR {predicate})"
            )
            await conn.execute(delete(table))
            await conn.execute(insert(table), stored)
    dialect = world.engine.dialect.name
    columns = {n: table.c[n] for n in SCALARS}
    async with AsyncSession(world.engine) as session:
        try:
            by_sql: list[set[int]]
            by_rls: list[set[int] | None] = []
            if world.postgres:  # every row, for the filter alone
                await rls.set_context(session, rls.sign(world.settings, rls.SYSTEM_CONTEXT))
            else:
                await session.execute(insert(table), stored)
            # One query per tree: each reader's filter is one arm of a UNION ALL.
            arms = [
                select(literal(i).label("reader"), table.c.id).where(
                    rules.row_filter(reader, columns, dialect)
                )
                for i, reader in enumerate(example.readers)
            ]
            by_sql = [set() for _ in example.readers]
            for i, row_id in await session.execute(union_all(*arms)):
                by_sql[i].add(row_id)
            tally.queries += len(arms)
            for reader in example.readers:
                if world.postgres:  # no filter: what the policy alone lets the context see
                    signed = rls.sign(world.settings, context(reader))
                    await rls.set_context(session, signed)
                    by_rls.append(set(await session.scalars(select(table.c.id))))
                else:
                    by_rls.append(None)
            for reader, sql_seen, rls_seen in zip(example.readers, by_sql, by_rls, strict=True):
                for row_id, rec in recs.items():
                    python = rules.row_allows(reader, rec)
                    sql = row_id in sql_seen
                    policy = python if rls_seen is None else row_id in rls_seen
                    assert python == sql == policy, (
                        f"{dialect}: python={python} sql={sql} rls={policy}\n"
                        f"  tree={example.tree}\n  reader={reader}\n  row={rec}\n"
                        f"  rls={predicate}"
                    )
                    tally.triples += 1
                    tally.allowed += python
                    tally.denied += not python
                if rls_seen is not None:
                    tally.rls_triples += len(recs)
        finally:
            await session.rollback()
    tally.examples += 1
    tally.dialects.add(dialect)


def explore(settings: Settings, owner_url: str, examples_wanted: int) -> Tally:
    """Run the Hypothesis search in this (worker) thread, on an event loop of its own."""
    tally = Tally()
    table = scratch_table(f"hv_rules_diff_{secrets.token_hex(4)}")
    postgres = owner_url.startswith("postgresql")
    with asyncio.Runner() as runner:
        engine = create_engine(settings)
        owner = create_async_engine(owner_url) if postgres else engine
        world = World(settings, engine, owner, table, tally)
        app_role = dbutil.app_role_name(owner_url) if postgres else None
        try:
            runner.run(prepare(world, app_role))

            @hypothesis_settings(
                max_examples=examples_wanted,
                deadline=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.large_base_example,
                    HealthCheck.data_too_large,
                ],
            )
            @given(example=examples())
            def agree(example: Example) -> None:
                runner.run(check_example(world, example))

            agree()
        finally:

            async def drop() -> None:
                async with owner.begin() as conn:
                    await conn.run_sync(table.drop, checkfirst=True)
                await engine.dispose()
                if owner is not engine:
                    await owner.dispose()

            runner.run(drop())
    return tally


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param(QUICK_EXAMPLES, id="quick"),
        pytest.param(EXAMPLES, id="1e5-triples", marks=pytest.mark.deep),
    ],
)
async def test_python_sql_and_rls_agree(
    settings: Settings, owner_database_url: str, wanted: int
) -> None:
    tally = await asyncio.to_thread(explore, settings, owner_database_url, wanted)

    engine = "postgresql" if owner_database_url.startswith("postgresql") else "sqlite"
    assert tally.dialects == {engine}
    assert tally.triples >= wanted * ROWS[0] * READERS[0], tally
    if wanted == EXAMPLES:
        assert tally.triples >= MIN_TRIPLES, tally
    if engine == "postgresql":
        assert tally.rls_triples == tally.triples, tally
    assert tally.queries >= wanted * READERS[0], tally
    # Both verdicts are frequent, so neither side of the rules is tested only vacuously.
    assert tally.allowed >= tally.triples // 20, tally
    assert tally.denied >= tally.triples // 20, tally
    print(f"{engine}: {tally.triples} (tree, row, reader) triples checked: {tally}")  # noqa: T201


async def test_ctx_roles_reads_the_signed_context_and_fails_closed(
    settings: Settings, owner_database_url: str
) -> None:
    if not owner_database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row-level security (ADR 0011)")
    owner = create_async_engine(owner_database_url)
    engine = create_engine(settings)
    roles = text("SELECT hv_ctx_roles()")
    try:
        async with owner.begin() as conn:
            await ensure_roles_function(conn)
        async with AsyncSession(engine) as session:  # the application's role
            assert await session.scalar(roles) == []  # no context
            await rls.set_context(session, rls.sign(settings, {"roles": ["officer", "o'k"]}))
            assert await session.scalar(roles) == ["officer", "o'k"]
            await rls.set_context(session, rls.sign(settings, {"roles": "officer"}))
            assert await session.scalar(roles) == []  # not a list
            await rls.set_context(session, "roles.forged")
            assert await session.scalar(roles) == []
            await session.rollback()
    finally:
        await engine.dispose()
        await owner.dispose()


@st.composite
def edits(draw: st.DrawFn) -> tuple[Tree, Tree]:
    """A tree and an edit of it: rules inserted, dropped or swapped, the default changed."""
    old = draw(trees())
    rows = list(old["rows"])
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(("deny", "any", "drop_allow", "drop", "swap")))
        if kind in ("deny", "any"):
            effect = "deny" if kind == "deny" else draw(st.sampled_from(("allow", "deny")))
            rule = {"effect": effect, "when": draw(conditions())}
            rows.insert(draw(st.integers(0, len(rows))), rule)
        elif kind == "drop_allow":
            allows = [i for i, r in enumerate(rows) if r["effect"] == "allow"]
            if allows:
                del rows[draw(st.sampled_from(allows))]
        elif rows:
            i = draw(st.integers(0, len(rows) - 1))
            if kind == "drop":
                del rows[i]
            else:
                rows[i], rows[i - 1] = rows[i - 1], rows[i]
    default = draw(st.sampled_from((old["rows_default"], "allow", "deny")))
    return old, {"rows": rows, "rows_default": default}


def test_widens_is_sound() -> None:
    """When ``widens`` says an edit is not wider, no reader sees a row the old rules hid."""
    narrower = [0]

    @hypothesis_settings(max_examples=150, deadline=None)
    @given(
        pair=edits(),
        sample=st.lists(rows(), min_size=15, max_size=15),
        people=st.lists(st.sampled_from(READER_POOL), min_size=40, max_size=40),
    )
    def sound(pair: tuple[Tree, Tree], sample: list[dict[str, Any]], people: list[Reader]) -> None:
        old, new = (RuleSet.parse(tree, FIELDS, LEVELS) for tree in pair)
        if new.widens(old):
            return
        narrower[0] += 1
        for reader in people:
            for row in sample:
                rec = {k: v for k, v in row.items() if v is not None}
                assert old.row_allows(reader, rec) or not new.row_allows(reader, rec), (
                    f"widens said no\n  old={pair[0]}\n  new={pair[1]}\n  {reader}\n  {rec}"
                )

    sound()
    assert narrower[0] >= 15, narrower  # not vacuous
