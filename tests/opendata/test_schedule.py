"""Scheduled releases (ADR 0035): a daily publication gets its next release when due, once;
a manual one never does."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.audit.models import AuditRecord
from hypervision.db import utcnow
from hypervision.opendata import schedule
from hypervision.opendata.models import Publication
from tests.factories import tx
from tests.opendata.test_publications import published
from tests.products.test_products_api import health

__all__ = ["health"]


async def test_due_publications_are_released_on_schedule(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    settings = app.state.settings
    await published(app, client, health, schedule="daily")
    sessions = app.state.system_sessions
    assert await schedule.run_round(sessions, settings) == 0  # not due yet
    later = utcnow() + timedelta(days=1, minutes=1)
    assert await schedule.run_round(sessions, settings, later) == 1
    assert await schedule.run_round(sessions, settings, later) == 0  # next one tomorrow
    async with tx(app) as session:
        publication = await session.scalar(select(Publication))
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "opendata.release", AuditRecord.surface == "schedule")
        )
    assert publication is not None and publication.release_count == 2
    assert audited == 1
