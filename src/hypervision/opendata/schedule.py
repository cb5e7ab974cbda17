"""Scheduled refreshes (ADR 0035): every ``opendata_refresh_seconds`` one replica makes the
releases that are due (daily, hourly), in the system context, each in its own savepoint. At
most one round runs across replicas (PostgreSQL advisory lock, as the quality checks do)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.config import Settings
from hypervision.db import transaction, utcnow
from hypervision.opendata import service

log = logging.getLogger("hypervision.opendata")

LEASE_KEY = int.from_bytes(b"hv-odata", "big") & 0x7FFF_FFFF_FFFF_FFFF


async def run_round(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int | None:
    """One round: the number of releases made, or None when another replica holds the lease."""
    made = 0
    now = now or utcnow()
    async with transaction(sessions) as session:
        if session.get_bind().dialect.name == "postgresql" and not await session.scalar(
            select(func.pg_try_advisory_xact_lock(LEASE_KEY))
        ):
            return None
        for publication, product in await service.due(session, now):
            try:
                async with session.begin_nested():
                    release = await service.refresh_one(
                        session=session,
                        settings=settings,
                        actor=None,
                        publication=publication,
                        product=product,
                        trigger="schedule",
                        now=now,
                    )
                    made += release is not None
            except Exception:
                log.exception("scheduled release of publication %s failed", publication.id)
    return made


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.opendata_refresh_seconds)
        try:
            made = await run_round(sessions, settings)
            if made:
                log.info("scheduled open data refresh: %d release(s)", made)
        except Exception:
            log.exception("scheduled open data refresh: round failed")
