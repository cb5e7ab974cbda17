"""Derived products (ADR 0028): what a derived product costs an import of its source, and a
version diff's first page.

    python bench/derived_products.py --engine sqlite|postgresql --rows 100000 [--rounds 2]

1. Import: ``service.import_data`` of ``product_import_read``'s CSV (``replace``) into a source
   without any derived product, then into a source with one derived product (beds summed
   per department, its sources read whole, recomputed in the import's transaction): the
   difference is the recomputation's cost.
2. Diff: ``diff.diff`` between the two versions of the second source (every row replaced by
   the same values: no change, the whole join scanned) for a reader under a row rule and a
   column rule, first page of 100, ``--requests`` times.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import LATENCY_HEADERS, Latency, fmt, note, show
from product_import_read import make_csv

from products import import_once

PER_DEPARTMENT = {
    "group_by": ["departement"],
    "measures": [
        {"fn": "sum", "field": "lits", "name": "lits"},
        {"fn": "count", "name": "lignes"},
    ],
}


async def reimport(app: Any, steward: Any, product: Any, path: Path) -> float:
    from hypervision.db import transaction
    from hypervision.products import service

    started = time.perf_counter()
    async with transaction(app.state.sessions) as session:
        await service.import_data(
            session=session, settings=app.state.settings, actor=steward, product_id=product.id,
            source=path, filename="lits.csv", media_type="text/csv", mode="replace",
        )  # fmt: skip
    return time.perf_counter() - started


async def derive(app: Any, steward: Any, product: Any, n: int) -> None:
    from hypervision.db import transaction
    from hypervision.products import derived_create
    from hypervision.records.schemas import LabelIn

    async with transaction(app.state.sessions) as session:
        await derived_create.create_derived(
            session=session, settings=app.state.settings, actor=steward,
            slug=f"lits-dep-{n}", name=f"Lits par département {n}", description="bench",
            tags=[], definition={"sources": [{"product": str(product.id)}], **PER_DEPARTMENT},
            rules=None, label=LabelIn(level="NP"),
        )  # fmt: skip


async def measure_diff(app: Any, product: Any, reader: Any, requests: int) -> Latency:
    from hypervision.db import transaction
    from hypervision.products import diff

    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        async with transaction(app.state.sessions) as session:
            await diff.diff(
                session=session, settings=app.state.settings, actor=reader,
                product_id=product.id, old=1, new=2, limit=100,
            )  # fmt: skip
        seconds.append(time.perf_counter() - started)
    return Latency.of(seconds)


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from hypervision.app import create_app
    from hypervision.policy.roles import Role

    await benchlib.header("derived products", db, args.rows, f", {args.rounds} rounds")
    settings = benchlib.bench_settings(db, product_max_bytes=2_000_000_000)
    app = create_app(settings)
    sessions, passwords = app.state.sessions, app.state.passwords
    path = db.data_dir / "lits.csv"
    await asyncio.to_thread(path.write_bytes, make_csv(args.rows))
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
    plain: list[float] = []
    with_derived: list[float] = []
    last = None
    for n in range(1, args.rounds + 1):
        alone, _ = await import_once(app, steward, health, path, 100 + n)
        plain.append(await reimport(app, steward, alone, path))
        source, _ = await import_once(app, steward, health, path, 200 + n)
        await derive(app, steward, source, n)
        with_derived.append(await reimport(app, steward, source, path))
        last = source
        note(
            f"round {n}: import {plain[-1]:.2f} s, with a derived product {with_derived[-1]:.2f} s"
        )
    a, b = statistics.median(plain), statistics.median(with_derived)
    show(
        f"Import of {args.rows:,} rows (replace), with and without a derived product",
        ["path", "median s", "recomputation s", "with / without"],
        [
            ["import_data, no derived product", fmt(a, 3), "—", "1.00"],
            ["import_data + recompute (group by, sum, count)", fmt(b, 3), fmt(b - a, 3),
             fmt(b / a)],
        ],
    )  # fmt: skip
    latency = await measure_diff(app, last, prefet, args.requests)
    show(
        f"Diff of two versions at {args.rows:,} rows (first page of 100, reader under rules)",
        ["case", *LATENCY_HEADERS],
        [["diff.diff", *latency.cells()]],
    )
    await app.state.engine.dispose()


def main() -> None:
    p = benchlib.parser(__doc__.split("\n\n")[0], default_rows=100_000)
    p.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    p.add_argument("--requests", type=int, default=20, help="diffs timed (default 20)")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
