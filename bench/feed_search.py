# ruff: noqa: T201 - benchmarks print their figures
"""Feed and search latency: the feed page (50 newest visible entries) and full-text search,
through the ASGI app with bearer tokens, as a restricted user and as the broadest reader, plus
the feed query run directly with and without the policy filter (policy overhead).

    python bench/feed_search.py --engine sqlite|postgresql --rows 100000 [--requests 200]

Seeding is bulk SQL: on PostgreSQL ``INSERT … SELECT`` from ``generate_series`` (secondary
indexes of ``entries`` dropped during the load and rebuilt after, then ``VACUUM ANALYZE``);
on SQLite ``executemany`` in chunks, the FTS5 rows written as ``logbook.fulltext`` would write
them. Labels vary with modulo expressions (see ``label_of``): 30 % DR, 20 % with need-to-know
groups, 60 % released to the owner organisation only (the default label), 25 % to everyone,
15 % to the owner and another organisation or a parent ministry.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import LATENCY_HEADERS, Latency, fmt, note, show

PARENTS = ("MIN-1", "MIN-2")
CHILDREN = ("ORG-A", "ORG-B", "ORG-C", "ORG-D", "ORG-E", "ORG-F", "ORG-G", "ORG-H")
GROUPS = ("VIP", "RENS", "MED")
RESTRICTED_ORG = "ORG-C"  # under MIN-1
BROAD_ORG = "ORG-A"
SPAN = timedelta(days=30)  # recorded_at spread
SEVERITIES = ("info", "minor", "major", "critical")
STATUSES = ("open", "in_progress", "closed")
TAGS = ("jo2024", "trafic", "foule", "colis", "incendie", "malaise", "manifestation", "meteo")
TITLES = (
    "Colis suspect signalé porte de la Chapelle",
    "Affluence importante aux abords du stade",
    "Malaise d'un spectateur, secours engagés",
    "Fermeture temporaire de la station Concorde",
    "Manifestation non déclarée place de la République",
    "Départ de feu de poubelle rue de Rivoli",
    "Embouteillage sur le boulevard périphérique",
    "Orage annoncé en fin d'après-midi",
    "Accident de la circulation quai de Bercy",
    "Rixe signalée aux abords de la fan zone",
    "Coupure d'électricité dans le secteur Bastille",
    "Intervention des secours pour une chute",
    "Panne de signalisation sur la ligne 1",
    "Délégation officielle attendue à l'Hôtel de Ville",
    "Perte d'un enfant près du Trocadéro",
    "Alerte canicule : points d'eau renforcés",
)
BODY_A = (
    "Périmètre de sécurité établi, équipes de secours sur place.",
    "Situation stable, pas de blessé signalé à ce stade.",
    "Forces de l'ordre engagées pour canaliser la foule.",
    "Les sapeurs-pompiers ont été prévenus et se rendent sur les lieux.",
    "Circulation déviée par les rues adjacentes.",
    "Un poste médical avancé est installé par les secours.",
    "La préfecture demande un point de situation toutes les heures.",
    "Renforts demandés auprès du centre opérationnel départemental.",
    "Le public est invité à éviter le secteur.",
    "Vidéoprotection mobilisée, images transmises au centre de commandement.",
    "Les transports en commun sont perturbés dans le quartier.",
    "Aucune conséquence sur le déroulement de l'épreuve.",
)
BODY_B = (
    "Prochain point dans trente minutes.",
    "Fin d'intervention prévue en soirée.",
    "Information transmise à la cellule interministérielle de crise.",
    "Message relayé aux partenaires concernés.",
    "Évolution à suivre par la salle.",
    "Moyens de secours maintenus en alerte.",
    "Communication presse en préparation.",
    "Bilan provisoire en attente.",
    "Demande de concours des services techniques de la ville.",
    "Situation suivie par le chef de salle.",
)
RARE = " Démineurs requis sur place."  # every 199th entry
COMMENTS = (
    "Point de situation : les secours confirment la prise en charge.",
    "Renforts arrivés sur place, situation maîtrisée.",
    "Information confirmée par la préfecture.",
    "Levée du périmètre prévue dans l'heure.",
    "Nouvel appel reçu, vérification en cours.",
)
N_COMMENTS = 300


def level_of(i: int) -> str:
    return "DR" if i % 10 < 3 else "NP"


def ntk_of(i: int) -> list[str]:
    return {0: ["VIP"], 1: ["RENS"], 2: ["MED"], 3: ["MED", "RENS"]}.get((i // 3) % 20, [])


def audience_of(i: int, child_ids: list[str], parent_ids: list[str]) -> list[str]:
    owner = child_ids[i % 8]
    a = (i // 7) % 20
    if a < 12:
        return [owner]
    if a < 17:
        return []
    if a == 17:
        return sorted([owner, child_ids[(i + 3) % 8]])
    return sorted([owner, parent_ids[a - 18]])


# Where entry i lies (lon, lat), or None when it has no location.
Position = Callable[[int], tuple[float, float] | None]


def grid_position(i: int) -> tuple[float, float] | None:
    """The default: two entries out of three located, on a regular grid over central Paris."""
    if i % 3 == 0:
        return None
    return 2.20 + (i % 2000) * 0.0001, 48.80 + ((i // 2000) % 1000) * 0.0001


def body_of(i: int) -> str:
    text = f"{BODY_A[(i // 2) % len(BODY_A)]} {BODY_B[(i // 13) % len(BODY_B)]} Réf. {i}."
    return text + RARE if i % 199 == 0 else text


# The same rows in SQL (PostgreSQL): $1 child org ids, $2 author ids, $3 categories, $4 base
# time, $5 seconds between rows, $6/$7 first/last i, $8/$9 parent ids, $10 titles, $11 body A,
# $12 body B, $13 tags, $14 rare sentence; {position} sets lon and lat (both NULL: no location).
PG_INSERT_TEMPLATE = """
INSERT INTO entries (id, occurred_at, recorded_at, updated_at, author_id, category, severity,
    status, title, body, location, min_lon, min_lat, max_lon, max_lat, tags, version,
    label_level, need_to_know, audience, organisation_id)
SELECT gen_random_uuid(), rec - make_interval(mins => i % 90), rec, rec,
    ($2::text[])[1 + i % 8]::uuid,
    ($3::text[])[1 + i % cardinality($3::text[])],
    (ARRAY['info','minor','major','critical'])[1 + i % 4],
    (ARRAY['open','in_progress','closed'])[1 + (i / 5) % 3],
    ($10::text[])[1 + i % cardinality($10::text[])],
    ($11::text[])[1 + (i / 2) % cardinality($11::text[])] || ' '
        || ($12::text[])[1 + (i / 13) % cardinality($12::text[])] || ' Réf. ' || i || '.'
        || CASE WHEN i % 199 = 0 THEN $14::text ELSE '' END,
    CASE WHEN lon IS NOT NULL THEN json_build_object('type', 'Point',
        'coordinates', json_build_array(lon, lat)) END,
    lon, lat, lon, lat,
    jsonb_build_array(($13::text[])[1 + i % cardinality($13::text[])]),
    1,
    CASE WHEN i % 10 < 3 THEN 'DR' ELSE 'NP' END,
    CASE (i / 3) % 20 WHEN 0 THEN '["VIP"]'::jsonb WHEN 1 THEN '["RENS"]'::jsonb
        WHEN 2 THEN '["MED"]'::jsonb WHEN 3 THEN '["MED", "RENS"]'::jsonb
        ELSE '[]'::jsonb END,
    CASE WHEN (i / 7) % 20 < 12 THEN jsonb_build_array(owner)
        WHEN (i / 7) % 20 < 17 THEN '[]'::jsonb
        WHEN (i / 7) % 20 = 17 THEN jsonb_build_array(owner, ($1::text[])[1 + (i + 3) % 8])
        WHEN (i / 7) % 20 = 18 THEN jsonb_build_array(owner, $8::text)
        ELSE jsonb_build_array(owner, $9::text) END,
    owner::uuid
FROM (
    SELECT i, $4::timestamptz + make_interval(secs => i * $5::float8) AS rec,
        ($1::text[])[1 + i % 8] AS owner, {position}
    FROM generate_series($6::int, $7::int) AS i
) AS s
"""
# The default positions (``grid_position``) in SQL.
PG_GRID_POSITION = """
        CASE WHEN i % 3 <> 0 THEN 2.20 + (i % 2000) * 0.0001 END AS lon,
        CASE WHEN i % 3 <> 0 THEN 48.80 + ((i / 2000) % 1000) * 0.0001 END AS lat"""
# Positions computed in Python (``seed_postgres(positions=…)``): $15 longitudes and $16
# latitudes of the batch, NULL when not located.
PG_ARRAY_POSITION = "($15::float8[])[i - $6 + 1] AS lon, ($16::float8[])[i - $6 + 1] AS lat"
PG_INSERT_ENTRIES = PG_INSERT_TEMPLATE.format(position=PG_GRID_POSITION)
PG_INSERT_ENTRIES_AT = PG_INSERT_TEMPLATE.format(position=PG_ARRAY_POSITION)

PG_INSERT_COMMENTS = """
INSERT INTO comments (id, entry_id, author_id, body, created_at, label_level, need_to_know,
    audience, organisation_id)
SELECT gen_random_uuid(), e.id, e.author_id,
    ($2::text[])[1 + (e.rn / 7) % cardinality($2::text[])],
    e.recorded_at + interval '5 minutes', e.label_level, e.need_to_know, e.audience,
    e.organisation_id
FROM (
    SELECT id, author_id, recorded_at, label_level, need_to_know, audience, organisation_id,
        row_number() OVER (ORDER BY recorded_at DESC) AS rn
    FROM entries ORDER BY recorded_at DESC LIMIT $1::int * 7
) AS e
WHERE e.rn % 7 = 0
"""


class World:
    """Ids of the organisations and users the seeded rows refer to."""

    def __init__(self) -> None:
        self.org_ids: dict[str, uuid.UUID] = {}
        self.authors: list[uuid.UUID] = []  # one per child organisation, same order
        self.users: dict[str, Any] = {}

    @property
    def child_ids(self) -> list[str]:
        return [str(self.org_ids[c]) for c in CHILDREN]

    @property
    def parent_ids(self) -> list[str]:
        return [str(self.org_ids[p]) for p in PARENTS]


async def build_world(app: Any) -> World:
    sessions, settings, passwords = app.state.sessions, app.state.settings, app.state.passwords
    world = World()
    for parent in PARENTS:
        world.org_ids[parent] = (await benchlib.make_org(sessions, parent)).id
    for n, child in enumerate(CHILDREN):
        world.org_ids[child] = (await benchlib.make_org(sessions, child, PARENTS[n // 4])).id
    for group in GROUPS:
        await benchlib.make_group(sessions, group)
    for child in CHILDREN:
        user = await benchlib.make_user(
            sessions, settings, passwords, f"author.{child[-1].lower()}", child,
            clearance="DR", groups=GROUPS,
        )  # fmt: skip
        world.authors.append(user.id)
    specs = {
        # NP clearance, one organisation among several, no need-to-know group.
        "restricted": ("bench.restricted", RESTRICTED_ORG, ("officer",), "NP", ()),
        # The broadest reader: DR, every group, watch officer.
        "broad": ("bench.broad", BROAD_ORG, ("watch_officer",), "DR", GROUPS),
        # Administrators have no read action in the policy (expected 403 on the feed).
        "admin": ("bench.admin", PARENTS[0], ("administrator",), "DR", ()),
    }
    for key, (username, org, roles, clearance, groups) in specs.items():
        world.users[key] = await benchlib.make_user(
            sessions, settings, passwords, username, org,
            roles=roles, clearance=clearance, groups=groups,
        )  # fmt: skip
    return world


# --- seeding ---------------------------------------------------------------------------------


async def seed_postgres(
    db: benchlib.BenchDb,
    world: World,
    rows: int,
    categories: Any,
    positions: Position | None = None,
) -> None:
    """``positions``: where each entry lies (default: ``grid_position``, computed in SQL)."""
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'entries' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        base = datetime.now(UTC) - SPAN
        step = SPAN.total_seconds() / rows
        batch = 100_000
        watch = benchlib.Stopwatch()
        for lo in range(1, rows + 1, batch):
            hi = min(rows, lo + batch - 1)
            located: list[Any] = []
            if positions is not None:
                points = [positions(i) for i in range(lo, hi + 1)]
                located = [
                    [p[0] if p else None for p in points],
                    [p[1] if p else None for p in points],
                ]
            await conn.execute(
                PG_INSERT_ENTRIES if positions is None else PG_INSERT_ENTRIES_AT,
                world.child_ids,
                [str(a) for a in world.authors],
                list(categories),
                base,
                step,
                lo,
                hi,
                world.parent_ids[0],
                world.parent_ids[1],
                list(TITLES),
                list(BODY_A),
                list(BODY_B),
                list(TAGS),
                RARE,
                *located,
            )
            note(f"seeded {hi:,}/{rows:,} entries ({hi / watch.seconds:,.0f}/s)")
        loaded = watch.seconds
        watch = benchlib.Stopwatch()
        for row in indexes:
            await conn.execute(row["indexdef"])
        note(f"rebuilt {len(indexes)} indexes on entries in {watch.seconds:.1f} s")
        await conn.execute(PG_INSERT_COMMENTS, N_COMMENTS, list(COMMENTS))
        watch2 = benchlib.Stopwatch()
        await conn.execute("VACUUM ANALYZE entries")
        await conn.execute("VACUUM ANALYZE comments")
        note(f"VACUUM ANALYZE in {watch2.seconds:.1f} s (load {loaded:.1f} s)")
    finally:
        await conn.close()


def seed_sqlite(
    db: benchlib.BenchDb,
    world: World,
    rows: int,
    categories: Any,
    positions: Position = grid_position,
) -> None:
    """``positions``: where each entry lies (default: ``grid_position``)."""
    from sqlalchemy import create_engine, insert, text

    from hypervision.db import new_id
    from hypervision.logbook.models import Comment, Entry

    try:
        from hypervision.core.text import stems
        from hypervision.logbook.fulltext import rowid_of, search_fts
    except ImportError as exc:  # search not built: the feed is still measured
        note(f"search index module not importable ({exc}); FTS rows not written")
        search_fts = None

    engine = create_engine(f"sqlite:///{db.dsn}")
    base = datetime.now(UTC) - SPAN
    step = SPAN.total_seconds() / rows
    child_ids, parent_ids = world.child_ids, world.parent_ids
    org_uuids = [uuid.UUID(c) for c in child_ids]
    chunk = 20_000
    first_comment_i = rows - 7 * N_COMMENTS
    watch = benchlib.Stopwatch()
    with engine.begin() as conn:
        conn.execute(text("PRAGMA synchronous=OFF"))
        for lo in range(1, rows + 1, chunk):
            hi = min(rows, lo + chunk - 1)
            entries, fts, comments = [], [], []
            for i in range(lo, hi + 1):
                rec = base + timedelta(seconds=i * step)
                point = positions(i)
                lon, lat = point or (None, None)
                row = {
                    "id": new_id(),
                    "occurred_at": rec - timedelta(minutes=i % 90),
                    "recorded_at": rec,
                    "updated_at": rec,
                    "author_id": world.authors[i % 8],
                    "category": categories[i % len(categories)],
                    "severity": SEVERITIES[i % 4],
                    "status": STATUSES[(i // 5) % 3],
                    "title": TITLES[i % len(TITLES)],
                    "body": body_of(i),
                    "location": {"type": "Point", "coordinates": [lon, lat]} if point else None,
                    "min_lon": lon if point else None,
                    "min_lat": lat if point else None,
                    "max_lon": lon if point else None,
                    "max_lat": lat if point else None,
                    "tags": [TAGS[i % len(TAGS)]],
                    "situation_id": None,
                    "duplicate_of_id": None,
                    "follow_up_of_id": None,
                    "validated_at": None,
                    "validated_by": None,
                    "version": 1,
                    "label_level": level_of(i),
                    "need_to_know": ntk_of(i),
                    "audience": audience_of(i, child_ids, parent_ids),
                    "organisation_id": org_uuids[i % 8],
                }
                entries.append(row)
                if search_fts is not None:
                    fts.append(
                        {
                            "rowid": rowid_of(row["id"]),
                            "doc_id": row["id"],
                            "entry_id": row["id"],
                            "kind": "entry",
                            "title": " ".join(stems(row["title"])),
                            "body": " ".join(stems(row["body"])),
                        }
                    )
                if i > first_comment_i and (rows - i + 1) % 7 == 0:
                    comments.append(
                        {
                            "id": new_id(),
                            "entry_id": row["id"],
                            "author_id": row["author_id"],
                            "body": COMMENTS[((rows - i + 1) // 7) % len(COMMENTS)],
                            "created_at": rec + timedelta(minutes=5),
                            "label_level": row["label_level"],
                            "need_to_know": row["need_to_know"],
                            "audience": row["audience"],
                            "organisation_id": row["organisation_id"],
                        }
                    )
            conn.execute(insert(Entry.__table__), entries)
            if comments:
                conn.execute(insert(Comment.__table__), comments)
                if search_fts is not None:
                    conn.execute(
                        insert(search_fts),
                        [
                            {
                                "rowid": rowid_of(c["id"]),
                                "doc_id": c["id"],
                                "entry_id": c["entry_id"],
                                "kind": "comment",
                                "title": "",
                                "body": " ".join(stems(c["body"])),
                            }
                            for c in comments
                        ],
                    )
            if fts:
                conn.execute(insert(search_fts), fts)
            note(f"seeded {hi:,}/{rows:,} entries ({hi / watch.seconds:,.0f}/s)")
    engine.dispose()


# --- measuring --------------------------------------------------------------------------------


class Capture:
    """Remembers the last SELECT on entries (feed) or search statement, with its parameters."""

    def __init__(self) -> None:
        self.on = False
        self.feed: tuple[str, Any] | None = None
        self.search: tuple[str, Any] | None = None

    def __call__(self, _c: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if not self.on:
            return
        if "ts_rank_cd" in statement or "bm25(" in statement:
            self.search = (statement, parameters)
        elif "FROM entries" in statement and "ORDER BY entries.recorded_at DESC" in statement:
            self.feed = (statement, parameters)


async def explain(app: Any, statement: str, parameters: Any) -> list[str]:
    engine = app.state.engine
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if engine.dialect.name == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + statement, parameters)
        rows = result.all()
        await conn.rollback()
    if engine.dialect.name == "postgresql":
        return [r[0] for r in rows]
    return [f"{r[0]:>3} {r[1]:>3}  {r[-1]}" for r in rows]  # id, parent, detail


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from httpx import ASGITransport, AsyncClient
    from sqlalchemy import event, func, select, text

    from hypervision.app import create_app
    from hypervision.logbook import entries as entries_service
    from hypervision.logbook import present
    from hypervision.logbook.models import Comment, Entry
    from hypervision.policy.rules import visible_filter

    extra = f", {args.requests} requests per case" + (", ANALYZE" if args.analyze else "")
    await benchlib.header("feed_search", db, args.rows, extra)
    settings = benchlib.bench_settings(db)
    app = create_app(settings)
    sessions = app.state.sessions
    world = await build_world(app)

    watch = benchlib.Stopwatch()
    if db.engine == "postgresql":
        await seed_postgres(db, world, args.rows, settings.categories)
    else:
        await asyncio.to_thread(seed_sqlite, db, world, args.rows, settings.categories)
        if args.analyze:  # the app never runs ANALYZE on SQLite: off by default, to compare
            async with app.state.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
            note("ANALYZE run on the SQLite database (--analyze)")
    seed_seconds = watch.seconds

    client = AsyncClient(
        transport=ASGITransport(app=app, client=("127.0.0.1", 50000)),
        base_url="https://testserver",
        timeout=120,
    )
    tokens = await benchlib.bearer_tokens(client, world.users)
    principals = {k: await benchlib.principal_of(sessions, world.users[k].id) for k in world.users}

    # What each reader may see, and how often the search words occur.
    counts: dict[str, int] = {}
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(Entry))
        n_comments = await session.scalar(select(func.count()).select_from(Comment))
        for key in ("restricted", "broad"):
            subject = entries_service.subject_of(settings, principals[key])
            counts[key] = await session.scalar(
                select(func.count())
                .select_from(Entry)
                .where(visible_filter(subject, Entry, db.engine))
            )
        matches: dict[str, int | None] = {}
        for word in args.query:
            try:
                if db.engine == "postgresql":
                    matches[word] = await session.scalar(
                        text(
                            "SELECT count(*) FROM entries WHERE search_vector @@ "
                            "plainto_tsquery('hv_french', :q)"
                        ),
                        {"q": word},
                    )
                else:
                    from hypervision.core.text import fts_match, query_terms

                    matches[word] = await session.scalar(
                        text(
                            "SELECT count(*) FROM search_fts WHERE search_fts MATCH :q "
                            "AND kind = 'entry'"
                        ),
                        {"q": fts_match(query_terms(word))},
                    )
            except Exception as exc:  # noqa: BLE001 - informational only
                note(f"could not count matches of {word!r}: {exc}")
                matches[word] = None
        await session.rollback()
    show(
        f"Data set — {db.engine}, seeded in {seed_seconds:.1f} s",
        ["what", "value"],
        [
            ["entries", f"{total:,}"],
            ["comments", f"{n_comments:,}"],
            ["visible to restricted (NP, ORG-C, no group)",
             f"{counts['restricted']:,} ({counts['restricted'] / total:.1%})"],
            ["visible to broad (DR, all groups, watch officer, ORG-A)",
             f"{counts['broad']:,} ({counts['broad'] / total:.1%})"],
            *[
                [f"entries matching {w!r}",
                 "?" if m is None else f"{m:,} ({m / total:.1%})"]
                for w, m in matches.items()
            ],
        ],
    )  # fmt: skip

    # The administrator role has no read action in this product's policy.
    admin = await client.get("/api/v1/entries", params={"limit": 50}, headers=tokens["admin"])
    note(f"administrator GET /entries: {admin.status_code} (no read action for that role)")

    search_state = "available"
    probe = await client.get("/api/v1/search", params={"q": args.query[0]}, headers=tokens["broad"])
    if probe.status_code in (404, 405):
        search_state = f"not available yet ({probe.status_code})"
    elif probe.status_code != 200:
        search_state = f"answers {probe.status_code}: {probe.text[:200]}"
    note(f"search endpoint: {search_state}")

    def http(path: str, params: dict[str, Any], who: str) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            response = await client.get(path, params=params, headers=tokens[who])
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
            body = response.json()
            return len(body.get("items", []))

        return call

    def direct(who: str | None) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            async with sessions() as session:
                if who is None:
                    query = select(Entry)
                else:
                    query = entries_service.visible(session, settings, principals[who])
                query = query.order_by(Entry.recorded_at.desc(), Entry.id.desc()).limit(51)
                rows = list(await session.scalars(query))
                await session.rollback()
            return len(rows)

        return call

    page_rows: list[Any] = []

    async def presentation() -> int:
        async with sessions() as session:
            await present.entries_read(
                session, page_rows, settings=settings, actor=principals["broad"]
            )
            await session.rollback()
        return len(page_rows)

    cases: dict[str, Callable[[], Awaitable[int]]] = {
        "GET /entries?limit=50 — restricted": http("/api/v1/entries", {"limit": 50}, "restricted"),
        "GET /entries?limit=50 — broad": http("/api/v1/entries", {"limit": 50}, "broad"),
        "feed query, policy filter — restricted": direct("restricted"),
        "feed query, policy filter — broad": direct("broad"),
        "feed query, no filter (baseline)": direct(None),
        "present 50 entries (names + markdown)": presentation,
    }
    if search_state == "available":
        for word in args.query:
            for who in ("restricted", "broad"):
                cases[f"GET /search?q={word} — {who}"] = http("/api/v1/search", {"q": word}, who)
    async with sessions() as session:
        page_rows.extend(
            await session.scalars(
                select(Entry).order_by(Entry.recorded_at.desc(), Entry.id.desc()).limit(50)
            )
        )  # closing without rollback keeps the rows loaded (they are presented detached)

    capture = Capture()
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", capture)

    async def interleaved(
        calls: dict[str, Callable[[], Awaitable[int]]], phase: str
    ) -> tuple[dict[str, Latency], dict[str, int]]:
        """Every call in turn, ``args.requests`` rounds, after ``args.warmup`` untimed ones."""
        samples: dict[str, list[float]] = {name: [] for name in calls}
        items: dict[str, int] = {}
        spent: dict[str, float] = dict.fromkeys(calls, 0.0)
        for call in calls.values():  # warm-up (caches, prepared statements, pool)
            for _ in range(args.warmup):
                await call()
        watch = benchlib.Stopwatch()
        for r in range(args.requests):
            for name, call in calls.items():
                if spent[name] > args.budget:
                    continue
                started = time.perf_counter()
                items[name] = await call()
                elapsed = time.perf_counter() - started
                samples[name].append(elapsed)
                spent[name] += elapsed
            if (r + 1) % 50 == 0:
                note(f"{phase}: {r + 1}/{args.requests} rounds ({watch.seconds:.0f} s)")
        return {name: Latency.of(s) for name, s in samples.items()}, items

    lat, items = await interleaved(cases, "requests")
    show(
        f"Latency — {db.engine}, {total:,} entries (cases interleaved; "
        f"per-case budget {args.budget:.0f} s)",
        ["case", *LATENCY_HEADERS, "items"],
        [[name, *lat[name].cells(), str(items.get(name, "—"))] for name in cases],
    )
    if search_state != "available":
        print(f"\nsearch: {search_state}", flush=True)

    # The same feed statements, SQL only: sent with the driver on one held connection, rows
    # fetched as tuples (no pool checkout, no ORM) — the database's share of the overhead.
    statements: dict[str, tuple[str, Any]] = {}
    for who in ("restricted", "broad", None):
        capture.on = True
        await direct(who)()
        capture.on = False
        assert capture.feed is not None
        statements[who or "none"] = capture.feed
    sql_names = {
        "restricted": "feed SQL only, policy filter — restricted",
        "broad": "feed SQL only, policy filter — broad",
        "none": "feed SQL only, no filter (baseline)",
    }
    async with app.state.engine.connect() as conn:

        def sql_call(statement: str, parameters: Any) -> Callable[[], Awaitable[int]]:
            async def call() -> int:
                return len((await conn.exec_driver_sql(statement, parameters)).all())

            return call

        sql_lat, sql_items = await interleaved(
            {sql_names[k]: sql_call(*v) for k, v in statements.items()}, "SQL only"
        )
        await conn.rollback()
    show(
        "Feed statement alone (driver, one connection, interleaved)",
        ["case", *LATENCY_HEADERS, "rows"],
        [[n, *sql_lat[n].cells(), str(sql_items.get(n, "—"))] for n in sql_names.values()],
    )

    base = lat["feed query, no filter (baseline)"]
    sql_base = sql_lat[sql_names["none"]]
    overhead_rows = []
    for who in ("restricted", "broad"):
        f = lat[f"feed query, policy filter — {who}"]
        q = sql_lat[sql_names[who]]
        h = lat[f"GET /entries?limit=50 — {who}"]
        overhead_rows += [
            [f"policy overhead, {who}: feed query via ORM, filtered / unfiltered p50",
             benchlib.ratio(f.p50, base.p50), "≤ 1.3"],
            [f"policy overhead, {who}: SQL only, filtered / unfiltered p50",
             benchlib.ratio(q.p50, sql_base.p50), "≤ 1.3"],
            [f"  SQL only at p95, {who}", benchlib.ratio(q.p95, sql_base.p95), ""],
            [f"  whole request / unfiltered ORM query p50, {who}",
             benchlib.ratio(h.p50, base.p50), ""],
        ]  # fmt: skip
    targets = [
        [f"feed p95, {who} (HTTP)", fmt(lat[f"GET /entries?limit=50 — {who}"].p95) + " ms",
         "< 50 ms at 1M (PostgreSQL)"]
        for who in ("restricted", "broad")
    ]  # fmt: skip
    if search_state == "available":
        targets += [
            [f"search p95, q={w}, {who} (HTTP)",
             fmt(lat[f"GET /search?q={w} — {who}"].p95) + " ms", "< 100 ms at 1M (PostgreSQL)"]
            for w in args.query
            for who in ("restricted", "broad")
        ]  # fmt: skip
    show("Ratios and targets", ["figure", "value", "target"], overhead_rows + targets)

    # The plans of the statements the app really sent.
    for who in ("restricted", "broad"):
        plans: list[tuple[str, tuple[str, Any] | None]] = []
        capture.on = True
        await cases[f"GET /entries?limit=50 — {who}"]()
        plans.append((f"feed (GET /entries?limit=50) as {who}", capture.feed))
        if search_state == "available":
            await cases[f"GET /search?q={args.query[0]} — {who}"]()
            plans.append((f"search q={args.query[0]} as {who}", capture.search))
        capture.on = False
        for title, captured in plans:
            if captured is None:
                continue
            try:
                lines = await explain(app, *captured)
            except Exception as exc:  # noqa: BLE001 - a plan is informational
                lines = [f"(EXPLAIN failed: {type(exc).__name__}: {exc})"]
            if args.show_sql:
                print(f"\n-- SQL of {title}:\n{captured[0]}\n-- parameters: {captured[1]}")
            print(f"\n### Plan: {title}\n\n```\n" + "\n".join(lines) + "\n```", flush=True)

    if args.readers:
        await concurrent_readers(args, db, sessions, settings, principals["restricted"])

    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        call = cases["GET /entries?limit=50 — restricted"]
        profiler.enable()
        for _ in range(args.profile):
            await call()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats("hypervision|markdown|nh3", 25)
        print(
            f"\n### Profile: {args.profile} × GET /entries?limit=50 as restricted "
            "(event-loop thread only; by own time, then cumulative)"
            f"\n\n```\n{out.getvalue().strip()}\n```"
        )
    await client.aclose()
    await app.state.engine.dispose()


async def concurrent_readers(
    args: Any, db: benchlib.BenchDb, sessions: Any, settings: Any, reader: Any
) -> None:
    """``--readers N`` readers at once, each reading the feed page ``--reader-requests``
    times: audited as the API reads it (``entries.list_entries``: the policy's query, then an
    audit record in the same transaction, committed) against the same query unaudited (rolled
    back). The two alternate in rounds. With the audit appended to a queue and chained later
    (ADR 0018), readers no longer wait on one another for the audit."""
    from hypervision.db import transaction
    from hypervision.logbook import entries as entries_service
    from hypervision.logbook.models import Entry
    from hypervision.logbook.query import EntryQuery

    async def audited() -> None:
        async with transaction(sessions) as session:
            await entries_service.list_entries(
                session=session, settings=settings, actor=reader, filters=EntryQuery(),
                cursor=None, limit=50,
            )  # fmt: skip

    async def unaudited() -> None:
        async with sessions() as session:
            query = entries_service.visible(session, settings, reader)
            query = query.order_by(Entry.recorded_at.desc(), Entry.id.desc()).limit(51)
            list(await session.scalars(query))
            await session.rollback()

    async def phase(call: Any) -> list[float]:
        samples: list[float] = []

        async def one_reader() -> None:
            for _ in range(args.reader_requests):
                started = time.perf_counter()
                await call()
                samples.append(time.perf_counter() - started)

        await asyncio.gather(*(one_reader() for _ in range(args.readers)))
        return samples

    await phase(unaudited)  # warm-up: the pool's connections, compiled statements
    found: dict[str, list[float]] = {"audited": [], "unaudited": []}
    for r in range(args.reader_rounds):
        for name, call in (("unaudited", unaudited), ("audited", audited))[:: 1 - 2 * (r % 2)]:
            found[name] += await phase(call)
            note(f"readers round {r + 1}/{args.reader_rounds}: {name} done")
    lat = {name: Latency.of(samples) for name, samples in found.items()}
    show(
        f"Concurrent readers — {db.engine}, {args.readers} readers × {args.reader_requests} "
        f"feed pages × {args.reader_rounds} rounds, restricted reader (pool of "
        f"{settings.db_pool_size} + {settings.db_pool_max_overflow})",
        ["case", *LATENCY_HEADERS],
        [
            ["feed page, audited (list_entries, committed)", *lat["audited"].cells()],
            ["feed page, unaudited (same query, rolled back)", *lat["unaudited"].cells()],
        ],
    )
    show(
        "Audited reads",
        ["figure", "value", "target"],
        [["audited / unaudited feed p95", benchlib.ratio(lat["audited"].p95,
                                                         lat["unaudited"].p95), "≤ 1.5"]],
    )  # fmt: skip


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=100_000)
    p.add_argument("--requests", type=int, default=200, help="requests per case (default 200)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per case (default 10)")
    p.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help="stop sampling a case after this many seconds in it (default 90)",
    )
    p.add_argument(
        "--query",
        action="append",
        help="search words (repeatable; default: 'secours' (common) and 'démineurs' (rare))",
    )
    p.add_argument(
        "--readers", type=int, default=0, help="then N concurrent readers, audited or not"
    )
    p.add_argument("--reader-requests", type=int, default=10, help="feed pages per reader")
    p.add_argument("--reader-rounds", type=int, default=4, help="alternating rounds (--readers)")
    p.add_argument("--show-sql", action="store_true", help="print the SQL of the plans shown")
    p.add_argument(
        "--analyze",
        action="store_true",
        help="SQLite: run ANALYZE after seeding (the app does not; PostgreSQL always is)",
    )
    p.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="profile N restricted feed requests with cProfile and print the top functions",
    )  # fmt: skip
    args = p.parse_args()
    args.query = args.query or ["secours", "démineurs"]
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
