# ruff: noqa: T201 - benchmarks print their figures
"""Data products (issue 17): import against the engine's bulk load, grouped aggregates under
rules, row pages.

    python bench/products.py --engine sqlite|postgresql --rows 1000000 [--rounds 2] [--quality]

1. Import: ``products.service.import_data`` (read, type, check, write a data version, with its
   audit and outbox) of ``product_import_read``'s 12-column French CSV, written to a file, into
   a new product per round, against the engine's native bulk load of the same file into a plain
   table of the same columns with a primary key (PostgreSQL ``COPY … FROM`` the file, CSV, ``;``,
   WIN1252, DMY dates; SQLite the file parsed by ``csv`` and ``executemany`` in one
   transaction). Columns whose French notation the engine cannot parse (decimal commas,
   oui/non) stay text in the plain table. Ratio native / import (target ≥ 0.5).
2. Reads of the first product (a row rule and a column rule; the reader is a prefect of
   another organisation, outside the MEDICAL group): ``service.aggregate`` grouped by
   department (count, sum, avg) and ``service.read_rows`` (50 rows, filtered, sorted), each in
   its own transaction with its audit record as a request would, interleaved ``--requests``
   times; the same calls with the application's rule filter off (what the system reads: no
   row rule; the superuser connection bypasses row-level security) as the baseline of the
   rules overhead (target ≤ 1.3), aggregate p95 < 300 ms and row page p95 < 50 ms at 1M rows
   on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import LATENCY_HEADERS, Latency, fmt, note, ratio, show
from product_import_read import SCHEMA, make_csv

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
PLAIN_PG = """CREATE TABLE {name} (
    id bigint PRIMARY KEY, etablissement text, departement text, lits bigint,
    lits_occupes bigint, taux text, temperature text, jour date, mis_a_jour timestamptz,
    urgences_saturees text, niveau text, commentaire text)"""
PLAIN_SQLITE = """CREATE TABLE {name} (
    id INTEGER PRIMARY KEY, etablissement TEXT, departement TEXT, lits INTEGER,
    lits_occupes INTEGER, taux TEXT, temperature TEXT, jour TEXT, mis_a_jour TEXT,
    urgences_saturees TEXT, niveau TEXT, commentaire TEXT)"""


def rules(health_org: str) -> dict[str, Any]:
    """Red-level rows for health organisations only; occupied beds for MEDICAL only."""
    return {
        "rows": [
            {
                "effect": "allow",
                "when": {"op": "ne", "left": {"rec": "niveau"}, "right": {"value": "rouge"}},
            },
            {
                "effect": "allow",
                "when": {
                    "op": "in",
                    "left": {"value": health_org},
                    "right": {"user": "organisation_ancestors"},
                },
            },
        ],
        "rows_default": "deny",
        "columns": [
            {
                "columns": ["lits_occupes"],
                "effect": "deny",
                "when": {
                    "not": {
                        "op": "contains",
                        "left": {"user": "groups"},
                        "right": {"value": "MEDICAL"},
                    }
                },
            }
        ],
    }


# ``--quality``: the stewards' quality rules (ADR 0027), checked in each import's transaction.
QUALITY = [
    {"kind": "required", "field": "etablissement", "severity": "blocking"},
    {"kind": "range", "field": "lits", "min": 0, "max": 5000, "severity": "blocking"},
    {"kind": "allowed", "field": "niveau", "values": ["vert", "jaune", "orange", "rouge"]},
    {"kind": "pattern", "field": "departement", "pattern": "[0-9][0-9AB][0-9]?"},
    {"kind": "unique", "field": "id"},
    {"kind": "row_count", "min": 1, "severity": "blocking"},
    {"kind": "freshness", "max_age_minutes": 60},
]


async def import_once(
    app: Any, steward: Any, health: str, path: Path, n: int, quality_on: bool = False
) -> tuple[Any, float]:
    from hypervision.db import transaction
    from hypervision.products import quality, service
    from hypervision.records.schemas import LabelIn

    sessions, settings = app.state.sessions, app.state.settings
    async with transaction(sessions) as session:
        product = await service.create_product(
            session=session, settings=settings, actor=steward, slug=f"lits-{n}",
            name=f"Lits {n}", description="bench", tags=["bench"], table_schema=SCHEMA,
            rules=rules(health), label=LabelIn(**PUBLIC),
        )  # fmt: skip
        if quality_on:
            await quality.set_rules(
                session=session, settings=settings, actor=steward, product_id=product.id,
                items=QUALITY,
            )  # fmt: skip
    started = time.perf_counter()
    async with transaction(sessions) as session:
        imported = await service.import_data(
            session=session, settings=settings, actor=steward, product_id=product.id,
            source=path, filename="lits.csv", media_type="text/csv", mode="replace",
        )  # fmt: skip
    seconds = time.perf_counter() - started
    return imported.product, seconds


async def native_pg(db: benchlib.BenchDb, path: Path, n: int) -> float:
    import asyncpg

    name = f"plain_{n}"
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute(PLAIN_PG.format(name=name))
        await conn.execute("SET datestyle = 'ISO, DMY'")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_to_table(
                name, source=path, format="csv", delimiter=";", header=True, encoding="WIN1252"
            )
        seconds = time.perf_counter() - started
        assert await conn.fetchval(f"SELECT count(*) FROM {name}") > 0  # noqa: S608
        await conn.execute(f"DROP TABLE {name}")
    finally:
        await conn.close()
    return seconds


def native_sqlite(db: benchlib.BenchDb, path: Path, n: int) -> float:
    name = f"plain_{n}"
    conn = sqlite3.connect(db.dsn, isolation_level=None)
    try:
        conn.execute(PLAIN_SQLITE.format(name=name))
        started = time.perf_counter()
        with path.open(encoding="cp1252", newline="") as handle:
            reader = csv.reader(handle, delimiter=";")
            next(reader)
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * 12)})", reader)  # noqa: S608
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {name}")
    finally:
        conn.close()
    return seconds


async def measure_import(
    db: benchlib.BenchDb, app: Any, steward: Any, health: str, path: Path, args: Any
) -> Any:
    ours: list[float] = []
    native: list[float] = []
    first = None
    for n in range(1, args.rounds + 1):
        if db.engine == "postgresql":
            native.append(await native_pg(db, path, n))
        else:
            native.append(await asyncio.to_thread(native_sqlite, db, path, n))
        product, seconds = await import_once(app, steward, health, path, n, args.quality)
        ours.append(seconds)
        first = first or product
        note(f"round {n}: native {native[-1]:.2f} s, import_data {seconds:.2f} s")
    a, b = statistics.median(ours), statistics.median(native)
    native_name = (
        "COPY FROM the file (plain table)"
        if db.engine == "postgresql"
        else "csv + executemany, one transaction"
    )
    show(
        f"Import of {args.rows:,} rows × 12 columns ({args.csv_mb:.0f} MB)",
        ["path", "median s", "best s", "rows/s (median)", "native / import (median)",
         "(best)"],
        [
            [f"service.import_data (checks on{', 7 quality rules' if args.quality else ''})",
             fmt(a, 3), fmt(min(ours), 3),
             fmt(args.rows / a), ratio(b, a), ratio(min(native), min(ours))],
            [native_name, fmt(b, 3), fmt(min(native), 3), fmt(args.rows / b), "1.00", "1.00"],
        ],
    )  # fmt: skip
    return first


async def time_cases(
    cases: dict[str, Callable[[], Awaitable[Any]]], requests: int, warmup: int, budget: float
) -> dict[str, Latency]:
    for call in cases.values():
        for _ in range(warmup):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    spent: dict[str, float] = dict.fromkeys(cases, 0.0)
    for _ in range(requests):
        for name, call in cases.items():
            if spent[name] > budget:
                continue
            started = time.perf_counter()
            await call()
            seconds = time.perf_counter() - started
            samples[name].append(seconds)
            spent[name] += seconds
    return {name: Latency.of(values) for name, values in samples.items()}


async def measure_reads(
    db: benchlib.BenchDb, app: Any, product: Any, reader: Any, steward: Any, args: Any
) -> None:
    from sqlalchemy import text

    from hypervision.db import transaction
    from hypervision.policy import rules as policy_rules
    from hypervision.products import service
    from hypervision.products.models import storage_table_name

    sessions, settings = app.state.sessions, app.state.settings
    table = storage_table_name(product.id)
    if db.engine == "postgresql":  # what autovacuum does within a minute of the import
        async with app.state.engine.begin() as conn:
            await conn.execute(text(f'ANALYZE "{table}"'))
        note(f"ANALYZE {table}")
    filters = [service.parse_condition("departement:in:75,92,93,94")]

    def under(
        rules_on: bool, call: Callable[[Any], Awaitable[Any]]
    ) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            policy_rules.SQL_FILTER_ENABLED = rules_on
            try:
                async with transaction(sessions) as session:
                    return await call(session)
            finally:
                policy_rules.SQL_FILTER_ENABLED = True

        return run

    def agg(session: Any) -> Awaitable[Any]:
        return service.aggregate(
            session=session, settings=settings, actor=reader, product_id=product.id,
            group_by=["departement"], measures=["count", "sum:lits", "avg:taux"],
        )  # fmt: skip

    def page(sort: str | None) -> Callable[[Any], Awaitable[Any]]:
        def call(session: Any) -> Awaitable[Any]:
            return service.read_rows(
                session=session, settings=settings, actor=reader, product_id=product.id,
                conditions=filters, sort=sort, limit=50,
            )  # fmt: skip

        return call

    cases = {
        "aggregate — rules": under(True, agg),
        "aggregate — no rules": under(False, agg),
        "rows, sort=-taux — rules": under(True, page("-taux")),
        "rows, sort=-taux — no rules": under(False, page("-taux")),
        "rows, sort=jour — rules": under(True, page("jour")),
        "rows, row order — rules": under(True, page(None)),
        "rows, row order — no rules": under(False, page(None)),
    }
    check = await cases["aggregate — rules"]()
    base = await cases["aggregate — no rules"]()
    seen, total = (sum(r["count"] for r in a.rows) for a in (check, base))
    note(f"the reader's aggregate counts {seen} rows of {total}")
    lat = await time_cases(cases, args.requests, args.warmup, args.budget)
    show(
        f"Reads of {args.rows:,} rows as a reader under a row rule and a column rule",
        ["case", *LATENCY_HEADERS],
        [[name, *value.cells()] for name, value in lat.items()],
    )
    agg_on, agg_off = lat["aggregate — rules"], lat["aggregate — no rules"]
    taux_on, taux_off = lat["rows, sort=-taux — rules"], lat["rows, sort=-taux — no rules"]
    page_target = "< 50 ms at 1M"
    show(
        "Ratios and targets",
        ["figure", "value", "target"],
        [
            ["aggregate p95", fmt(agg_on.p95) + " ms", "< 300 ms at 1M (PostgreSQL)"],
            ["aggregate rules overhead, p50", ratio(agg_on.p50, agg_off.p50), "≤ 1.3"],
            ["aggregate rules overhead, p95", ratio(agg_on.p95, agg_off.p95), "≤ 1.3"],
            ["row page p95, sort=-taux", fmt(taux_on.p95) + " ms", page_target],
            ["row page p95, sort=jour", fmt(lat["rows, sort=jour — rules"].p95) + " ms",
             page_target],
            ["row page p95, row order", fmt(lat["rows, row order — rules"].p95) + " ms",
             page_target],
            ["row page rules overhead p50, sort=-taux", ratio(taux_on.p50, taux_off.p50), ""],
        ],
    )  # fmt: skip
    # The steward indexes the sorted fields ("index": true): built over the stored rows.
    indexed = {
        **product.table_schema,
        "fields": [
            {**f, "index": f["name"] in ("taux", "jour")} for f in product.table_schema["fields"]
        ],
    }
    started = time.perf_counter()
    async with transaction(sessions) as session:
        await service.change_schema(
            session=session,
            settings=settings,
            actor=steward,
            product_id=product.id,
            table_schema=indexed,
        )
    note(f"indexes on taux and jour built in {time.perf_counter() - started:.1f} s")
    if db.engine == "postgresql":
        async with app.state.engine.begin() as conn:
            await conn.execute(text(f'ANALYZE "{table}"'))
    sorted_cases = {
        "rows, sort=-taux — rules, indexed": under(True, page("-taux")),
        "rows, sort=-taux — no rules, indexed": under(False, page("-taux")),
        "rows, sort=jour — rules, indexed": under(True, page("jour")),
    }
    fast = await time_cases(sorted_cases, args.requests, args.warmup, args.budget)
    show(
        "Sorted row pages once the steward indexed taux and jour",
        ["case", *LATENCY_HEADERS],
        [[name, *value.cells()] for name, value in fast.items()],
    )
    on = fast["rows, sort=-taux — rules, indexed"]
    show(
        "Ratios and targets, indexed",
        ["figure", "value", "target"],
        [
            ["row page p95, sort=-taux", fmt(on.p95) + " ms", page_target],
            ["row page p95, sort=jour", fmt(fast["rows, sort=jour — rules, indexed"].p95)
             + " ms", page_target],
            ["row page rules overhead p50, sort=-taux",
             ratio(on.p50, fast["rows, sort=-taux — no rules, indexed"].p50), ""],
            ["sort=-taux p50, before / after the index", ratio(taux_on.p50, on.p50), ""],
        ],
    )  # fmt: skip
    if args.plans:
        await plans(app, product, reader, settings)


async def plans(app: Any, product: Any, reader: Any, settings: Any) -> None:
    """EXPLAIN of the statements the reads send (captured with an engine event)."""
    from sqlalchemy import event

    from hypervision.db import transaction
    from hypervision.products import service

    captured: list[tuple[str, Any]] = []

    def grab(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if "dp_" in statement and statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    sync = app.state.engine.sync_engine
    event.listen(sync, "before_cursor_execute", grab)
    try:
        async with transaction(app.state.sessions) as session:
            await service.aggregate(
                session=session, settings=settings, actor=reader, product_id=product.id,
                group_by=["departement"], measures=["count", "sum:lits", "avg:taux"],
            )  # fmt: skip
            await service.read_rows(
                session=session, settings=settings, actor=reader, product_id=product.id,
                conditions=[service.parse_condition("departement:in:75,92,93,94")],
                sort="-taux", limit=50,
            )  # fmt: skip
    finally:
        event.remove(sync, "before_cursor_execute", grab)
    postgres = app.state.engine.dialect.name == "postgresql"
    for statement, parameters in captured:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        async with app.state.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            if postgres:
                rows = await driver.fetch(prefix + statement, *parameters)
                lines = [r[0] for r in rows]
            else:
                cursor = await driver.execute(prefix + statement, parameters)
                lines = [str(tuple(r)) for r in await cursor.fetchall()]
        print(f"\n### Plan\n\n```\n{statement}\n\n" + "\n".join(lines) + "\n```", flush=True)


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from hypervision.app import create_app
    from hypervision.policy.roles import Role

    await benchlib.header("products", db, args.rows, f", {args.rounds} import rounds")
    settings = benchlib.bench_settings(db, product_max_bytes=2_000_000_000)
    app = create_app(settings)
    sessions, passwords = app.state.sessions, app.state.passwords
    note(f"generating {args.rows} rows")
    path = db.data_dir / "lits.csv"
    data = make_csv(args.rows)
    args.csv_mb = len(data) / 1e6
    await asyncio.to_thread(path.write_bytes, data)
    health = str((await benchlib.make_org(sessions, "SANTE")).id)
    await benchlib.make_org(sessions, "PREF")
    await benchlib.make_group(sessions, "MEDICAL")
    steward_user = await benchlib.make_user(
        sessions, settings, passwords, "steward", "SANTE", roles=[Role.DATA_STEWARD],
        clearance="DR", groups=["MEDICAL"],
    )  # fmt: skip
    prefet_user = await benchlib.make_user(
        sessions, settings, passwords, "prefet", "PREF", clearance="DR"
    )
    steward = await benchlib.principal_of(sessions, steward_user.id)
    prefet = await benchlib.principal_of(sessions, prefet_user.id)
    product = await measure_import(db, app, steward, health, path, args)
    await measure_reads(db, app, product, prefet, steward, args)
    await app.state.engine.dispose()


def main() -> None:
    p = benchlib.parser(__doc__.split("\n\n")[0], default_rows=1_000_000)
    p.add_argument("--rounds", type=int, default=2, help="import rounds (default 2)")
    p.add_argument("--requests", type=int, default=100, help="reads per case (default 100)")
    p.add_argument("--warmup", type=int, default=3, help="untimed reads per case (default 3)")
    p.add_argument(
        "--budget", type=float, default=60, help="stop a read case after this many seconds"
    )
    p.add_argument("--plans", action="store_true", help="print the plans of the reads")
    p.add_argument(
        "--quality", action="store_true", help="seven quality rules checked at each import"
    )
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
