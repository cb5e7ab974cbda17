"""Differential test of the query specification (ADR 0016): for generated entries, situations
(with generated labels), readers and queries, the SQL compilation run on the engine under test
selects exactly the entries that the Python compilation accepts — every criterion: categories,
severities, statuses, organisation, since/until, tags, situations (visible ones only), bbox,
zone area and duplicates left out.

The Python side reads the generated values, never what the database returned; the situations
the reader sees come from the policy's Python side (``can_see``). A zone is the one criterion
SQL only narrows: the SQL candidates must hold every entry Python accepts, and the query's
``residual`` on the rows returned must give exactly Python's answer. Same harness as the
policy's differential test (a Hypothesis run in a worker thread, on an event loop of its own).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hypervision.config import Settings
from hypervision.core.shapes import Area, check_geometry
from hypervision.logbook.models import Entry, Situation
from hypervision.logbook.query import EntryQuery
from hypervision.policy import rls
from hypervision.policy.rules import can_see
from tests.factories import make_user
from tests.policy.world import Orgs, Reader, Record, readers, records, search, subject

EXAMPLES = 60
QUICK_EXAMPLES = 20  # make test; the 12,000 verdicts per engine in make test-deep (CI)
ENTRIES = (25, 35)  # entries per example (min, max)
PROBES = (8, 12)  # (reader, query) pairs per example (min, max)
MIN_PAIRS = EXAMPLES * ENTRIES[0] * PROBES[0]  # 12,000 (entry, query) verdicts per engine

CATEGORIES = ("security", "health", "traffic")
SEVERITIES = ("info", "minor", "major", "critical")
STATUSES = ("open", "in_progress", "closed")
TAGS = ("a", "b", "é", "o'k")
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
# Instants around each other, a microsecond apart at the edges.
TIMES = tuple(
    T0 + delta
    for delta in (
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(minutes=30),
        timedelta(hours=1, microseconds=-1),
        timedelta(hours=1),
        timedelta(hours=2),
    )
)
PARIS = timezone(timedelta(hours=2))


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


PLACES: tuple[dict[str, Any] | None, ...] = (
    None,
    {"type": "Point", "coordinates": [0.0, 0.0]},
    {"type": "Point", "coordinates": [1.0, 1.0]},
    {"type": "Point", "coordinates": [1.5, 1.5]},  # in the hole of the ring below
    {"type": "Point", "coordinates": [2.5, 0.5]},
    {"type": "Point", "coordinates": [-0.5, 2.75]},
    {"type": "LineString", "coordinates": [[-1.0, -1.0], [0.5, 0.25]]},
    {"type": "Polygon", "coordinates": [square(2.0, 2.0, 2.5, 2.5)]},
)
BOXES: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 1.0, 1.0),
    (1.5, 1.5, 1.5, 1.5),  # a point: border cases
    (-2.0, -2.0, 0.0, 0.0),
    (2.25, 0.0, 3.0, 3.0),
)
AREAS: tuple[Area, ...] = (
    Area.of({"type": "Polygon", "coordinates": [square(0.0, 0.0, 1.0, 1.0)]}),
    Area.of({"type": "Polygon", "coordinates": [square(0.0, 0.0, 3.0, 3.0), square(1, 1, 2, 2)]}),
    Area.of({"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [0, 3], [0, 0]]]}),
)
SITUATIONS = tuple(uuid.UUID(int=1000 + n) for n in range(4))
UNKNOWN = uuid.UUID(int=999)  # no such situation


@dataclass(frozen=True)
class Fact:
    """One generated entry (indexes into the pools above)."""

    category: str
    severity: str
    status: str
    owner: int
    time: int
    tags: frozenset[str]
    situation: int | None
    place: int
    duplicate: bool


@dataclass(frozen=True)
class Probe:
    reader: Reader
    query: EntryQuery


@dataclass(frozen=True)
class Batch:
    facts: list[Fact]
    situations: list[Record]  # the labels of SITUATIONS, in order
    probes: list[Probe]


@dataclass
class Tally:
    examples: int = 0
    pairs: int = 0
    matched: int = 0
    unmatched: int = 0
    hidden_situations: int = 0
    narrowed: int = 0  # candidates SQL returned that the zone's exact test then refused
    dialects: set[str] = field(default_factory=set)


def subsets(pool: tuple[Any, ...], most: int = 2) -> st.SearchStrategy[tuple[Any, ...]]:
    """Often no constraint at all, else one or a few values."""
    some = st.lists(st.sampled_from(pool), min_size=1, max_size=most, unique=True).map(tuple)
    return st.one_of(st.just(()), st.just(()), some)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.none(), strategy)


def instants() -> st.SearchStrategy[datetime]:
    """A pool instant, given in UTC or in another offset (the same instant)."""
    return st.builds(
        lambda moment, paris: moment.astimezone(PARIS) if paris else moment,
        st.sampled_from(TIMES),
        st.booleans(),
    )


def queries(orgs: Orgs) -> st.SearchStrategy[EntryQuery]:
    return st.builds(
        EntryQuery,
        categories=subsets(CATEGORIES),
        severities=subsets(SEVERITIES, 3),
        statuses=subsets(STATUSES),
        organisation_id=maybe(st.sampled_from(orgs.all[:3])),
        since=maybe(instants()),
        until=maybe(instants()),
        tags=subsets(TAGS),
        situations=subsets((*SITUATIONS, UNKNOWN)),
        bbox=maybe(st.sampled_from(BOXES)),
        area=maybe(st.sampled_from(AREAS)),
        originals_only=st.booleans(),
    )


def facts() -> st.SearchStrategy[Fact]:
    return st.builds(
        Fact,
        category=st.sampled_from(CATEGORIES),
        severity=st.sampled_from(SEVERITIES),
        status=st.sampled_from(STATUSES),
        owner=st.integers(0, 2),
        time=st.integers(0, len(TIMES) - 1),
        tags=st.frozensets(st.sampled_from(TAGS), max_size=3),
        situation=maybe(st.integers(0, len(SITUATIONS) - 1)),
        place=st.integers(0, len(PLACES) - 1),
        duplicate=st.booleans(),
    )


def batches(orgs: Orgs) -> st.SearchStrategy[Batch]:
    return st.builds(
        Batch,
        facts=st.lists(facts(), min_size=ENTRIES[0], max_size=ENTRIES[1]),
        situations=st.lists(records(orgs), min_size=len(SITUATIONS), max_size=len(SITUATIONS)),
        probes=st.lists(
            st.builds(Probe, reader=readers(orgs), query=queries(orgs)),
            min_size=PROBES[0],
            max_size=PROBES[1],
        ),
    )


def entry_values(fact: Fact, row_id: uuid.UUID, orgs: Orgs, author: uuid.UUID) -> dict[str, Any]:
    """The entry as the Python side sees it, and as it is stored (label: irrelevant here)."""
    location = PLACES[fact.place]
    box = check_geometry(location)[1] if location else (None, None, None, None)
    return {
        "id": row_id,
        "occurred_at": TIMES[fact.time],
        "author_id": author,
        "category": fact.category,
        "severity": fact.severity,
        "status": fact.status,
        "title": "query probe",
        "tags": sorted(fact.tags),
        "situation_id": SITUATIONS[fact.situation] if fact.situation is not None else None,
        "location": location,
        "min_lon": box[0],
        "min_lat": box[1],
        "max_lon": box[2],
        "max_lat": box[3],
        "duplicate_of_id": uuid.UUID(int=1) if fact.duplicate and row_id.int != 1 else None,
        "label_level": "NP",
        "need_to_know": [],
        "audience": [],
        "organisation_id": orgs.all[fact.owner],
    }


def situation_values(label: Record, row_id: uuid.UUID, author: uuid.UUID) -> dict[str, Any]:
    return {
        "id": row_id,
        "title": "situation probe",
        "severity": "major",
        "status": "open",
        "started_at": T0,
        "author_id": author,
        **label.columns(),
    }


async def check_batch(
    engine: AsyncEngine,
    settings: Settings,
    orgs: Orgs,
    author: uuid.UUID,
    batch: Batch,
    tally: Tally,
) -> None:
    """Store the batch, run each probe's query in SQL and in Python, compare, roll back."""
    dialect = engine.dialect.name
    values = [
        entry_values(f, uuid.UUID(int=n + 1), orgs, author) for n, f in enumerate(batch.facts)
    ]
    in_hand = {v["id"]: SimpleNamespace(**v) for v in values}
    async with AsyncSession(engine) as session:
        try:
            if dialect == "postgresql":  # the application's role: the system context sees all
                await rls.set_context(session, rls.sign(settings, rls.SYSTEM_CONTEXT))
            await session.execute(
                insert(Situation),
                [
                    situation_values(r, i, author)
                    for r, i in zip(batch.situations, SITUATIONS, strict=True)
                ],
            )
            await session.execute(insert(Entry), values[:1])  # the original of the duplicates
            await session.execute(insert(Entry), values[1:])
            stored = {e.id: e for e in await session.scalars(select(Entry))}
            assert set(stored) == set(in_hand), "the entries table should hold only this batch"
            for probe in batch.probes:
                reader = subject(settings, orgs, probe.reader)
                shown = {
                    i for i, r in zip(SITUATIONS, batch.situations, strict=True)
                    if can_see(reader, r.label)
                }  # fmt: skip
                query = probe.query
                sql = select(Entry.id).where(*query.where(subject=reader, dialect=dialect))
                candidates = set(await session.scalars(sql))
                by_sql = {i for i in candidates if query.residual(stored[i])}
                by_python = {
                    i for i, e in in_hand.items() if query.matches(e, shown_situations=shown)
                }
                assert by_python <= candidates, (dialect, query, by_python - candidates)
                assert by_sql == by_python, (
                    f"{dialect}: sql only {sorted(by_sql - by_python)}, "
                    f"python only {sorted(by_python - by_sql)}\n  query={query}\n"
                    f"  shown situations={shown}"
                )
                tally.pairs += len(in_hand)
                tally.matched += len(by_python)
                tally.unmatched += len(in_hand) - len(by_python)
                tally.narrowed += len(candidates - by_sql)
                tally.hidden_situations += len(set(query.situations) & set(SITUATIONS) - shown)
        finally:
            await session.rollback()
    tally.examples += 1
    tally.dialects.add(dialect)


def explore(settings: Settings, orgs: Orgs, author: uuid.UUID, examples: int) -> Tally:
    tally = Tally()

    async def check(engine: AsyncEngine, batch: Batch) -> None:
        await check_batch(engine, settings, orgs, author, batch, tally)

    search(settings, batches(orgs), check, examples)
    return tally


@pytest.mark.parametrize(
    "examples",
    [
        pytest.param(QUICK_EXAMPLES, id="quick"),
        pytest.param(EXAMPLES, id="12000-verdicts", marks=pytest.mark.deep),
    ],
)
async def test_query_sql_and_python_compilations_agree(
    app: FastAPI, settings: Settings, examples: int
) -> None:
    orgs = await Orgs.create(app, prefix="QRY")
    author = await make_user(app, "query.author", "QRY-OTHER")
    tally = await asyncio.to_thread(explore, settings, orgs, author.id, examples)

    assert tally.dialects == {app.state.engine.dialect.name}
    assert tally.examples >= examples, tally
    assert tally.pairs >= examples * ENTRIES[0] * PROBES[0], tally
    # Both verdicts are frequent, hidden situations are asked for, and zones do narrow.
    assert tally.matched >= tally.pairs // 50, tally
    assert tally.unmatched >= tally.pairs // 20, tally
    assert tally.hidden_situations > 0, tally
    assert tally.narrowed > 0, tally
    print(f"{sorted(tally.dialects)}: {tally}")  # noqa: T201 - shown with -s, for the record
