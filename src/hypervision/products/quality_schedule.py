"""Quality checks on schedule (ADR 0027): every ``quality_check_seconds`` one replica checks
every product that has quality rules, and keeps a run when something changed since the last
one (another data version, a rule's result, staleness). At most one round runs at a time
across replicas: on PostgreSQL the round's transaction takes an advisory lock
(``pg_try_advisory_xact_lock``, released with the transaction or the connection, like the audit
sequencer's lease) and a replica that does not get it skips the round; SQLite serves one
process, whose writer lock serialises rounds anyway."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.config import Settings
from hypervision.db import transaction
from hypervision.products import quality
from hypervision.products.models import DataProduct
from hypervision.products.quality_models import QualityRun

log = logging.getLogger("hypervision.products.quality")

# pg_try_advisory_xact_lock key: "hv-quality" read as an integer.
LEASE_KEY = int.from_bytes(b"hv-qual", "big") & 0x7FFF_FFFF_FFFF_FFFF


def _changed(last: QualityRun | None, checked: quality.Checked) -> bool:
    if last is None or last.data_version != checked.data_version or last.stale != checked.stale:
        return True
    before = {r["rule"]: (r["passed"], r["failing"]) for r in last.results}
    after = {r.rule.id: (r.passed, r.failing) for r in checked.results}
    return before != after


async def run_round(
    sessions: async_sessionmaker[AsyncSession], now: datetime | None = None
) -> int | None:
    """One round (system context): the number of runs kept, or None when another replica
    holds the lease."""
    kept = 0
    async with transaction(sessions) as session:
        if session.get_bind().dialect.name == "postgresql" and not await session.scalar(
            select(func.pg_try_advisory_xact_lock(LEASE_KEY))
        ):
            return None
        products = [p for p in await session.scalars(select(DataProduct)) if p.quality_rules]
        last = {r.product_id: r for r in await session.scalars(
            quality.latest_runs([p.id for p in products]))}  # fmt: skip
        for product in products:
            try:
                async with session.begin_nested():
                    checked = await quality.evaluate(session, product, now=now)
                    if _changed(last.get(product.id), checked):
                        await quality.record(session, product, checked, "schedule")
                        kept += 1
            except Exception:
                log.exception("quality check of product %s failed", product.id)
    return kept


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The scheduled checks of one replica (every ``quality_check_seconds``)."""
    while True:
        await asyncio.sleep(settings.quality_check_seconds)
        try:
            kept = await run_round(sessions)
            if kept:
                log.info("scheduled quality checks: %d run(s) kept", kept)
        except Exception:
            log.exception("scheduled quality checks: round failed")
