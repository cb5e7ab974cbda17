"""The map cells (``logbook/cells.py``), on both engines: over generated entries, created and then
moved, relabelled, re-qualified and unlocated through the real write paths, the clusters the
cells give two readers of different clearance, organisation and need-to-know are exactly the
per-entry path's (policy-filtered) clusters: count, severity and centre, cell by cell, at
every stored zoom and for every filter the cells answer. On PostgreSQL the writes and reads
run under each person's own row-level-security identity, and the cells still answer alike with
the application's SQL filter switched off (row-level security alone)."""

from __future__ import annotations

import importlib
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import AuditRecord
from hypervision.db import transaction
from hypervision.geo import mapdata
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import Principal
from hypervision.kinds import SUPPORT_TABLES
from hypervision.logbook import cells, entries, triage
from hypervision.logbook.models import Entry, LabelChangeRequest, MapCell, Severity, Status
from hypervision.logbook.query import EntryQuery
from hypervision.logbook.schemas import EntryCreate, EntryUpdate
from hypervision.policy import rls, rules
from hypervision.policy.roles import Role
from hypervision.policy.rules import Subject
from hypervision.records import rls as record_rls
from hypervision.records.etags import etag
from hypervision.records.schemas import LabelIn
from tests.factories import make_group, make_org, make_user, owner_tx, sign_in, tx
from tests.queries import count_queries

VIEW = (2.2, 48.8, 2.45, 48.95)  # every generated entry lies well inside
FINE = cells.cell_degrees(cells.CELLS_MAX_ZOOM)
WRITERS = {"w.a": "ORG-A", "w.b": "ORG-B", "w.c": "ORG-C"}
READERS = {  # username: (organisation, clearance, groups)
    "r.restricted": ("ORG-A", "NP", ()),
    "r.cleared": ("ORG-B", "DR", ("MED",)),
}
LEVELS = ("NP", "DR")
GROUPS = ((), ("VIP",), ("MED",), ("MED", "VIP"))
AUDIENCES = ((), ("own",), ("own", "ORG-C"), ("MIN",))
SEVERITIES = ("info", "minor", "major", "critical")
STATUSES = ("open", "in_progress", "closed")
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
POLICY = (
    "SELECT policyname, cmd, permissive, roles, qual, with_check FROM pg_policies "
    "WHERE schemaname = 'public' AND tablename = $1 ORDER BY policyname"
)


def spot(rnd: random.Random) -> tuple[float, float]:
    """Near the centre of a cell of the finest stored grid: at least 0.3 of that cell from any
    cell border at any zoom (the grids nest), so a cluster's centre, rounded to the
    micro-degree, names its cell unambiguously on both paths."""
    lon = (math.floor(2.25 / FINE) + rnd.randrange(0, 25) + 0.5 + rnd.uniform(-0.2, 0.2)) * FINE
    lat = (math.floor(48.83 / FINE) + rnd.randrange(0, 18) + 0.5 + rnd.uniform(-0.2, 0.2)) * FINE
    return round(lon, 7), round(lat, 7)


def place(rnd: random.Random) -> dict[str, Any]:
    lon, lat = spot(rnd)
    if rnd.random() < 0.15:  # a short line, centred on the spot
        d = FINE / 8
        return {"type": "LineString", "coordinates": [[lon - d, lat - d], [lon + d, lat + d]]}
    return {"type": "Point", "coordinates": [lon, lat]}


def label(rnd: random.Random, own: str) -> LabelIn:
    audience = [own if code == "own" else code for code in rnd.choice(AUDIENCES)]
    return LabelIn(
        level=rnd.choice(LEVELS), need_to_know=list(rnd.choice(GROUPS)), audience=audience
    )


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "MIN")
    for code in ("ORG-A", "ORG-B"):
        await make_org(app, code, "MIN")
    await make_org(app, "ORG-C")
    for group in ("VIP", "MED"):
        await make_group(app, group)
    for username, org in WRITERS.items():
        await make_user(
            app, username, org, roles=[Role.WATCH_OFFICER], clearance="DR", groups=["VIP", "MED"]
        )
    for username, (org, clearance, groups) in READERS.items():
        await make_user(app, username, org, clearance=clearance, groups=groups)


async def principal(app: FastAPI, username: str) -> Principal:
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return await build_principal(
            session=session, user=user, scopes=None, client=Client(address=None, request_id=None)
        )


@asynccontextmanager
async def as_person(app: FastAPI, person: Principal) -> AsyncIterator[AsyncSession]:
    """A transaction under ``person``'s identity (row-level security on PostgreSQL)."""
    async with transaction(app.state.sessions) as session:
        await rls.bind(session, app.state.settings, person)
        yield session


async def generate(app: FastAPI, seed: int = 15, per_writer: int = 60) -> list[uuid.UUID]:
    """Entries by three writers, then every kind of change the map cells must follow."""
    rnd = random.Random(seed)
    settings = app.state.settings
    writers = {name: await principal(app, name) for name in WRITERS}
    made: dict[str, list[uuid.UUID]] = {}
    for name, writer in writers.items():
        async with as_person(app, writer) as session:
            for i in range(per_writer):
                entry = await entries.create_entry(
                    session=session,
                    settings=settings,
                    actor=writer,
                    data=EntryCreate(
                        title=f"{name} {i}",
                        category="security",
                        severity=Severity(rnd.choice(SEVERITIES)),
                        status=Status(rnd.choice(STATUSES)),
                        location=place(rnd) if i % 10 else None,
                        label=label(rnd, WRITERS[name]),
                    ),
                )
                made.setdefault(name, []).append(entry.id)
    for name, writer in writers.items():
        ids = made[name]
        async with as_person(app, writer) as session:
            for n, entry_id in enumerate(ids[:20]):
                current = await session.get_one(Entry, entry_id)
                tag = etag(current)
                change = n % 5
                if change == 0:  # moved (sometimes to nowhere, sometimes from nowhere)
                    where = None if n % 10 == 0 else place(rnd)
                    await entries.update_entry(
                        session=session,
                        settings=settings,
                        actor=writer,
                        entry_id=entry_id,
                        if_match=tag,
                        data=EntryUpdate.model_validate({"location": where}),
                    )
                elif change == 1:
                    await entries.update_entry(
                        session=session,
                        settings=settings,
                        actor=writer,
                        entry_id=entry_id,
                        if_match=tag,
                        data=EntryUpdate(status=Status(rnd.choice(STATUSES))),
                    )
                elif change == 2:
                    await triage.set_severity(
                        session=session,
                        settings=settings,
                        actor=writer,
                        entry_id=entry_id,
                        severity=Severity(rnd.choice(SEVERITIES)),
                    )
                elif change == 3:  # raised (one more group, owner only): applies at once
                    if set(current.audience) - {str(current.organisation_id)}:
                        continue
                    groups = sorted({*current.need_to_know, "VIP"})
                    raised = LabelIn(level="DR", need_to_know=groups, audience=[WRITERS[name]])
                    await triage.change_label(
                        session=session,
                        settings=settings,
                        actor=writer,
                        entry_id=entry_id,
                        data=raised,
                        reason="test",
                    )
                elif current.label.as_dict() != {**PUBLIC, "owner": str(current.organisation_id)}:
                    # lowered: a request, approved below by another watch officer
                    await triage.change_label(
                        session=session,
                        settings=settings,
                        actor=writer,
                        entry_id=entry_id,
                        data=LabelIn(level="NP"),
                        reason="test",
                    )
    async with tx(app) as session:
        pending = list(await session.scalars(select(LabelChangeRequest)))
    for request in pending:  # by another watch officer who may see the entry
        for approver in writers.values():
            if approver.user_id == request.requested_by:
                continue
            async with as_person(app, approver) as session:
                shown = entries.visible(session, settings, approver)
                if await session.scalar(shown.where(Entry.id == request.resource_id)) is None:
                    continue
                await triage.decide_label_request(
                    session=session,
                    settings=settings,
                    actor=approver,
                    request_id=request.id,
                    approve=True,
                )
            break
    return [i for ids in made.values() for i in ids]


Cluster = tuple[int, str, float, float]  # count, severity, lon, lat


def keyed(found: list[dict[str, Any]], zoom: int) -> dict[tuple[int, int], Cluster]:
    cell = cells.cell_degrees(zoom)
    return {
        (math.floor(c["lon"] / cell), math.floor(c["lat"] / cell)): (
            c["count"],
            c["severity"],
            c["lon"],
            c["lat"],
        )
        for c in found
    }


async def both_paths(
    app: FastAPI, reader: Principal, query: EntryQuery, zoom: int
) -> tuple[dict[tuple[int, int], Cluster], dict[tuple[int, int], Cluster]]:
    """The clusters of the cells and of the per-entry path, for ``reader``."""
    settings = app.state.settings
    async with as_person(app, reader) as session:
        dialect = session.get_bind().dialect.name
        subject = Subject.of(settings, reader)
        signatures = cells.visible_signatures(subject, query, dialect)
        from_cells = await cells.clusters(session, signatures, query, zoom, VIEW)
        base = query.apply(
            entries.visible(session, settings, reader), subject=subject, dialect=dialect
        ).where(mapdata.in_view(VIEW, dialect), Entry.min_lon.is_not(None))
        exact = await mapdata._clusters(session, base, zoom, mapdata.cell_for(zoom, VIEW))
    assert from_cells.total == exact.total
    return keyed(from_cells.clusters, zoom), keyed(exact.clusters, zoom)


def same(
    cells_: dict[tuple[int, int], Cluster],
    exact: dict[tuple[int, int], Cluster],
    exact_centres: bool,
) -> None:
    assert {k: v[:2] for k, v in cells_.items()} == {k: v[:2] for k, v in exact.items()}
    if exact_centres:
        for key, (_, _, lon, lat) in cells_.items():
            assert abs(lon - exact[key][2]) < 2e-6 and abs(lat - exact[key][3]) < 2e-6, key


async def test_cells_count_exactly_what_each_reader_may_see(
    app: FastAPI, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await generate(app)
    async with tx(app) as session:
        org_b = await session.scalar(select(Organisation.id).where(Organisation.code == "ORG-B"))
    filters = {
        "none": EntryQuery(),
        "severities": EntryQuery(severities=("major", "critical")),
        "status": EntryQuery(statuses=("open",)),
        "both": EntryQuery(severities=("minor",), statuses=("open", "closed")),
        "organisation": EntryQuery(organisation_id=org_b),
    }
    totals: dict[str, int] = {}
    for username in READERS:
        reader = await principal(app, username)
        for zoom in (6, 9, 12, 13, 14):
            for name, query in filters.items():
                from_cells, exact = await both_paths(app, reader, query, zoom)
                same(from_cells, exact, exact_centres=name in ("none", "organisation"))
                if zoom == 12 and name == "none":
                    totals[username] = sum(c[0] for c in from_cells.values())
    # Two readers who see different things, neither of them everything.
    async with tx(app) as session:
        located = await session.scalar(
            select(func.count()).select_from(Entry).where(Entry.min_lon.is_not(None))
        )
    assert 0 < totals["r.restricted"] < totals["r.cleared"] < int(located or 0)
    # Where every entry of a cell is hidden from the restricted reader, it gets no cluster.
    reader = await principal(app, "r.restricted")
    broad = await principal(app, "w.a")
    seen, _ = await both_paths(app, reader, EntryQuery(), 14)
    everything, _ = await both_paths(app, broad, EntryQuery(), 14)
    assert set(seen) < set(everything)
    # PostgreSQL: row-level security alone (the SQL filter off) gives the same counts.
    if app.state.engine.dialect.name == "postgresql":
        monkeypatch.setattr(rules, "SQL_FILTER_ENABLED", False)
        alone, _ = await both_paths(app, reader, EntryQuery(), 14)
        assert alone == seen


async def test_the_cells_kept_in_step_equal_a_rebuild(app: FastAPI, people: None) -> None:
    """What the write paths maintained is what ``rebuild`` (migration 0011, bulk loads)
    computes from the entries: the same rows and counts, and the same centre sums (added in
    another order: equal to floating-point rounding, not to the bit, so not to a fixed
    number of decimals either)."""
    await generate(app, seed=7, per_writer=30)

    async def rows() -> dict[tuple[Any, ...], tuple[tuple[int, ...], tuple[float, float]]]:
        async with owner_tx(app) as session:
            found = await session.execute(select(MapCell))
            return {
                (c.grid, c.gx, c.gy, c.signature_id): (
                    (c.n, *(getattr(c, name) for name in cells.PAIRS.values())),
                    (c.sum_lon, c.sum_lat),
                )
                for (c,) in found
            }

    kept = await rows()
    assert kept and all(counts[0] > 0 for counts, _ in kept.values())
    async with owner_tx(app) as session:
        written = await session.run_sync(lambda s: cells.rebuild(s.connection()))
    assert written == len(kept)
    rebuilt = await rows()
    assert {key: counts for key, (counts, _) in rebuilt.items()} == {
        key: counts for key, (counts, _) in kept.items()
    }
    for key, (_, (lon, lat)) in rebuilt.items():  # one entry more or less moves a sum by ~2
        kept_lon, kept_lat = kept[key][1]
        assert math.isclose(lon, kept_lon) and math.isclose(lat, kept_lat), key


def test_only_what_the_cells_hold_is_answered_from_them() -> None:
    assert cells.answers(EntryQuery(severities=("major",), statuses=("open",)), 11)
    assert cells.answers(EntryQuery(organisation_id=uuid.uuid4()), 11)
    assert not cells.answers(EntryQuery(), cells.CELLS_MAX_ZOOM + 1)  # street level
    for other in (
        EntryQuery(categories=("security",)),
        EntryQuery(tags=("colis",)),
        EntryQuery(situations=(uuid.uuid4(),)),
        EntryQuery(originals_only=True),
    ):
        assert not cells.answers(other, 11), other


def test_an_unchanged_position_label_severity_and_status_writes_nothing() -> None:
    owner = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "location": {"type": "Point", "coordinates": [2.35, 48.85]},
        "label_level": "NP",
        "need_to_know": [],
        "audience": [],
        "organisation_id": owner,
        "severity": "major",
        "status": "open",
    }
    same_entry = cells.Counted.of(fields)
    assert cells.deltas(same_entry, same_entry) == {}
    moved = cells.Counted.of({**fields, "status": "closed"})
    changed = cells.deltas(same_entry, moved)
    assert len(changed) == len(cells.GRIDS)  # one row per grid, the count moved between columns
    assert all(row["n"] == 0 and row["n_major_open"] == -1 for row in changed.values())
    assert cells.Counted.of({**fields, "location": None}) is None
    # The same label in another order is the same signature.
    a = cells.Signature.of("DR", ["VIP", "MED"], ["x", "y"], owner)
    b = cells.Signature.of("DR", ["MED", "VIP"], ["y", "x"], owner)
    assert a.id == b.id


async def test_a_wide_view_is_answered_from_the_cells_in_a_bounded_number_of_queries(
    app: FastAPI, client: AsyncClient, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mapdata, "POINTS_MAX", 5)
    writer = await sign_in(client, "w.a")
    view = ",".join(str(v) for v in VIEW)

    async def post(n: int) -> None:
        rnd = random.Random(n)
        for i in range(n):
            answer = await client.post(
                "/api/v1/entries",
                json={"title": f"e{i}", "category": "security", "location": place(rnd)},
                headers=writer,
            )
            assert answer.status_code == 201, answer.text

    async def counted(call: Callable[[], Awaitable[Response]]) -> int:
        with count_queries(app) as statements:
            answer = await call()
        assert answer.status_code == 200, answer.text
        assert answer.json()["clustered"]
        return len(statements)

    def call() -> Awaitable[Response]:
        return client.get(f"/api/v1/map/entries?view={view}&zoom=12", headers=writer)

    await post(8)
    few = await counted(call)
    await post(30)
    many = await counted(call)
    assert few == many, "no query per entry nor per cell"
    assert many <= 10, many  # sign-in 4 + the cells 1 + audit 3 (+ BEGIN)
    data = (await call()).json()
    assert data["total"] == 38 == sum(c["count"] for c in data["clusters"])
    for cluster in data["clusters"]:
        west, south, east, north = cluster["bbox"]
        assert west <= cluster["lon"] <= east and south <= cluster["lat"] <= north
    async with tx(app) as session:
        details = list(
            await session.scalars(
                select(AuditRecord.detail).where(AuditRecord.action == "map.entries")
            )
        )
    assert len(details) == 3 and {d["source"] for d in details} == {"cells"}


async def test_both_tables_have_the_row_level_security_template(
    owner_database_url: str, database_url: str
) -> None:
    """PostgreSQL: the catalogue holds, for ``map_signatures`` and ``map_cells``, exactly the
    policies the template (``records/rls.py``) generates from migration 0011's rules."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row-level security (ADR 0011)")
    migration = importlib.import_module("hypervision.migrations.versions.0011_map_cells")
    assert set(migration.RULES) == {"map_signatures", "map_cells"} <= set(SUPPORT_TABLES)
    conn = await asyncpg.connect(owner_database_url.replace("+asyncpg", "", 1))
    try:
        for table, rule in migration.RULES.items():
            flags = await conn.fetchrow(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1",
                table,
            )
            assert flags is not None and tuple(flags) == (True, True), table
            before = [dict(r) for r in await conn.fetch(POLICY, table)]
            assert [p["policyname"] for p in before] == sorted(record_rls.POLICIES), table
            transaction = conn.transaction()
            await transaction.start()
            try:
                dropping: list[str] = []
                record_rls.drop(dropping.append, table)
                for statement in [*dropping, *record_rls.statements(table, rule)]:
                    await conn.execute(statement)
                after = [dict(r) for r in await conn.fetch(POLICY, table)]
            finally:
                await transaction.rollback()
            assert after == before, table
    finally:
        await conn.close()
