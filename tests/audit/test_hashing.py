"""Raw-row hashing (``audit.hashing``, ``audit.parallel``): the canonical bytes equal
``audit.chain.canonical`` over tricky values, and a parallel walk names the first problem."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hypervision.audit import chain, hashing, parallel
from hypervision.audit import service as audit
from hypervision.audit.parallel import RawReader
from tests.audit.tamper import RECORDS, owner, recompute_chain
from tests.factories import ADMIN, sequenced, tx

TRICKY_DETAILS: list[dict[str, Any]] = [
    {},
    {"zeta": 1, "alpha": {"b": [1, 2.5, None, True], "a": "é"}, "Ä": False, "a": None},
    {"note": 'line\r\nbreak \x1b[31mred\x1b[0m "quoted" } \\ \t \x01 \x7f'},
    {"unicode": "Fête à Paris — 東京 🚒 \u2028 \u200f", "float": 0.1, "tiny": 1e-7, "big": 2**62},
    {"nested": [{"y": 1, "x": [[], {}]}, "", [None]]},
]
TRICKY_IDS = [
    [],
    [str(uuid.uuid4()) for _ in range(50)],
    ["é", "a, b", 'with "quotes"', 'a", "b', "back\\slash", "tab\there", "🚒"],
]
TRICKY_TIMES = [
    datetime(2024, 7, 26, 19, 30, 0, 0, tzinfo=UTC),
    datetime(2024, 7, 26, 19, 30, 0, 1, tzinfo=UTC),
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
]


async def _tricky_trail(app: FastAPI, owner_url: str) -> None:
    async with tx(app) as session:
        await audit.record(session=session, actor=None, action="system.start")
        for i, detail in enumerate(TRICKY_DETAILS):
            await audit.record(
                session=session,
                actor=ADMIN,
                action="test.tricky",
                resource_type="entry",
                resource_ids=TRICKY_IDS[i % len(TRICKY_IDS)],
                labels=["DR", "NP"] if i % 2 else [],
                detail=detail,
            )
        await audit.record(
            session=session,
            actor=None,
            action="système.événement",
            surface="cli",
            actor_name='Éric « l\'ancien » \\ "x"',
            request_id="",
            client_address="::1",
            detail={"k": "v"},
        )
    await sequenced(app)
    async with owner(owner_url) as conn:
        for seq, moment in enumerate(TRICKY_TIMES, start=1):
            await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(at=moment))
        await recompute_chain(conn)  # with chain.canonical


async def test_raw_canonical_equals_service_canonical(
    app: FastAPI, owner_database_url: str
) -> None:
    await _tricky_trail(app, owner_database_url)
    async with tx(app) as session:
        orm_rows = (await session.execute(select(RECORDS).order_by(RECORDS.c.seq))).all()
        reader = RawReader(session)
        await reader.open()
        seqs, rows = await reader.read(0, 1000)
    assert reader.query is not None
    layout = reader.query.layout
    assert seqs == [row.seq for row in orm_rows] and len(seqs) == len(TRICKY_DETAILS) + 2
    for row, values in zip(orm_rows, rows, strict=True):
        assert tuple(values[:2]) == (row.prev_hash, row.row_hash)
        assert layout.canonical(values[2:]).encode() == chain.canonical(row)
    prevs, hashes, clean, altered, undecoded = hashing.check_batch(layout, rows, full=True)
    assert (clean, altered, undecoded) == (True, None, [])
    assert prevs == [row.prev_hash for row in orm_rows]
    assert hashes == [row.row_hash for row in orm_rows]
    compact = hashing.check_batch(layout, rows)
    assert compact == ([orm_rows[0].prev_hash], [orm_rows[-1].row_hash], True, None, [])


async def test_tricky_trail_verifies_in_parallel(app: FastAPI, owner_database_url: str) -> None:
    await _tricky_trail(app, owner_database_url)
    async with tx(app) as session:
        result = await audit.verify(session=session, batch=2, workers=2)
    assert result.ok and result.checked == len(TRICKY_DETAILS) + 2


@given(st.lists(st.text()), st.booleans())
def test_a_json_column_reads_as_its_canonical_form(items: list[str], ascii_only: bool) -> None:
    """The shortcuts of ``_json_piece`` (lists of plain strings) give json.loads + encode."""
    stored = json.dumps(items, ensure_ascii=ascii_only)
    assert hashing._json_piece(stored) == hashing.ENCODE(json.loads(stored))


@pytest.mark.parametrize(
    "stored",
    [
        '["]',
        '["", ""]',
        '["a", "b"]',
        '["a",  "b"]',
        '["a", "", "b"]',
        '["\\u00e9", "x"]',
        '[" ", " "]',
        '["a", "b", "c"]',
        '["a"]',
        '["a\\"", "b"]',
    ],
)
def test_near_plain_lists(stored: str) -> None:
    try:
        expected = hashing.ENCODE(json.loads(stored))
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):
            hashing._json_piece(stored)
        return
    assert hashing._json_piece(stored) == expected


def test_unreadable_rows_are_left_to_the_orm() -> None:
    layout = hashing.Layout.build([("seq", hashing.PLAIN), ("detail", "json")])
    good = ("p", "h", "{}", 1)  # prev_hash, row_hash, detail's text, seq
    rows = [good, ("p", "h", "{}", 1.5), good]
    prevs, _hashes, clean, altered, undecoded = hashing.check_batch(layout, rows)
    assert (clean, altered, undecoded, prevs) == (False, 0, [], ["p"])  # "h" is not the hash
    body = layout.canonical(["{}", 1])
    digest = hashlib.sha256(("p" + body).encode()).hexdigest()
    assert body == '{"detail":{},"seq":1}'
    ok = ("p", digest, "{}", 1)
    float_seq = ("p", digest, "{}", 1.0)
    assert hashing.check_batch(layout, [ok, float_seq, ok])[2:] == (False, None, [1])


async def _long_trail(app: FastAPI, n: int) -> None:
    async with tx(app) as session:
        for i in range(n):
            await audit.record(
                session=session,
                actor=ADMIN,
                action="entry.list",
                resource_type="entry",
                resource_ids=[str(uuid.uuid4()) for _ in range(i % 4)],
                labels=["NP"],
                detail={"page": i},
            )
    await sequenced(app)


async def test_workers_read_what_the_walk_sees(app: FastAPI) -> None:
    """Records chained before the walk are read by the workers in its exported snapshot;
    those ``drain`` chains in the walk's own transaction are read by the walk."""
    await _long_trail(app, 100)
    async with tx(app) as session:  # queued, not chained: verify's drain chains them
        for i in range(30):
            await audit.record(session=session, actor=ADMIN, action="entry.read", detail={"i": i})
    async with tx(app) as session:
        reader = RawReader(session)
        await reader.open()
        assert reader.query is not None
        source = await parallel.export_snapshot(session, reader.query)
        if source is not None:  # PostgreSQL: a worker sees the 100 committed records
            assert source.query is reader.query  # the walk's own query, not a second reader's
            try:
                assert await asyncio.to_thread(parallel.snapshot_head, source) == 100
                seqs, checked = await asyncio.to_thread(
                    parallel.read_and_check, source, 0, 100, False
                )
                assert seqs == list(range(1, 101)) and checked[2:] == (True, None, [])
            finally:
                await asyncio.to_thread(parallel.release, source.snapshot)
    async with tx(app) as session:
        result = await audit.verify(session=session, batch=12, workers=2)
    assert result.ok and result.checked == 130


Tamper = Callable[[AsyncConnection, int], Awaitable[None]]


async def _alter(conn: AsyncConnection, seq: int) -> None:
    await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(labels=["DR"]))


async def _delete(conn: AsyncConnection, seq: int) -> None:
    await conn.execute(delete(RECORDS).where(RECORDS.c.seq == seq))


async def _unlink(conn: AsyncConnection, seq: int) -> None:
    await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(prev_hash="f" * 64))


async def _delete_and_rechain(conn: AsyncConnection, seq: int) -> None:
    await _delete(conn, seq)
    await recompute_chain(conn)  # every link and hash right again: only the gap is left


@pytest.mark.parametrize(
    ("first", "later", "named", "problem"),
    [
        (_alter, _alter, 137, "record 137 was altered"),
        (_delete, _alter, 137, "record 137 is missing"),
        (_unlink, _delete, 137, "record 137 does not follow record 136"),
        (_alter, _unlink, 137, "record 137 was altered"),
        (_delete_and_rechain, _alter, 137, "record 137 is missing"),
    ],
)
@pytest.mark.parametrize("later_seq", [139, 151, 290])  # same batch, next batch, far later
async def test_first_problem_is_named_in_parallel(
    app: FastAPI,
    owner_database_url: str,
    first: Tamper,
    later: Tamper,
    named: int,
    problem: str,
    later_seq: int,
) -> None:
    await _long_trail(app, 300)
    async with owner(owner_database_url) as conn:
        await first(conn, 137)
        await later(conn, later_seq)
    async with tx(app) as session:
        result = await audit.verify(session=session, batch=12, workers=2)
    assert not result.ok
    assert (result.seq, result.problem, result.checked) == (named, problem, 136)
