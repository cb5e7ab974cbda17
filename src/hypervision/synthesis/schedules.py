"""Recurring points de situation: at each scheduled local time (e.g. 07:00 and 19:00, Paris
time) a draft is made for the watch officers, covering the time since the previous one. Safe
with several replicas: a run is claimed by one conditional UPDATE."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.timezone import PARIS
from hypervision.db import transaction, utcnow
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, authorize
from hypervision.synthesis import service
from hypervision.synthesis.models import Synthesis, SynthesisSchedule
from hypervision.synthesis.schemas import ScheduleCreate, Scope, SynthesisDraft

log = logging.getLogger("hypervision.schedules")


def last_due(times: list[str], now: datetime) -> tuple[datetime, datetime]:
    """The latest scheduled moment at or before ``now`` and the one before it (UTC)."""
    local = now.astimezone(PARIS)
    moments = []
    for days_back in (0, 1, 2):
        day = (local - timedelta(days=days_back)).date()
        for text in times:
            hour, minute = (int(x) for x in text.split(":"))
            moments.append(datetime.combine(day, time(hour, minute), tzinfo=PARIS))
    past = sorted(m for m in moments if m <= local)
    return past[-1].astimezone(now.tzinfo), past[-2].astimezone(now.tzinfo)


async def create_schedule(
    *, session: AsyncSession, actor: Principal, data: ScheduleCreate
) -> SynthesisSchedule:
    authorize(actor, Action.TRIAGE)
    assert actor.user_id is not None and actor.organisation_id is not None
    row = SynthesisSchedule(
        name=data.name,
        times=sorted(set(data.times)),
        scope=data.scope.model_dump(mode="json", exclude_none=True),
        organisation_id=actor.organisation_id,
        created_by=actor.user_id,
        active=True,
        last_run_at=utcnow(),  # the first draft comes at the next scheduled time
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session, actor=actor, action="schedule.create", resource_type="schedule",
        resource_ids=[row.id], detail={"times": row.times},
    )  # fmt: skip
    return row


async def run_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> list[uuid.UUID]:
    """Make the drafts that are due; returns their ids."""
    now = now or utcnow()
    made: list[uuid.UUID] = []
    async with transaction(sessions) as session:
        schedules = list(
            await session.scalars(select(SynthesisSchedule).where(SynthesisSchedule.active))
        )
    for schedule in schedules:
        due, previous = last_due(schedule.times, now)
        async with transaction(sessions) as session:
            claimed = await session.execute(
                update(SynthesisSchedule)
                .where(
                    SynthesisSchedule.id == schedule.id,
                    or_(
                        SynthesisSchedule.last_run_at.is_(None), SynthesisSchedule.last_run_at < due
                    ),
                )
                .values(last_run_at=due)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # not due, or another replica took it
            author = await session.get(User, schedule.created_by)
            if author is None or not author.is_active:
                log.warning("schedule %s: its author can no longer write", schedule.id)
                continue
            actor = await build_principal(
                session=session, user=author, scopes=None, client=Client(None, None),
                surface="schedule",
            )  # fmt: skip
            scope = Scope.model_validate(
                {**schedule.scope, "since": previous.isoformat(), "until": due.isoformat()}
            )
            title = f"{schedule.name} — {due.astimezone(PARIS).strftime('%d/%m/%Y %H:%M')}"
            draft: Synthesis = await service.draft(
                session=session, settings=settings, actor=actor,
                data=SynthesisDraft(title=title[:200], scope=scope), schedule_id=schedule.id,
            )  # fmt: skip
            made.append(draft.id)
    return made


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The scheduler of one replica (every ``schedule_poll_seconds``)."""
    while True:
        try:
            made = await run_due(sessions, settings)
            if made:
                log.info("scheduled syntheses drafted: %d", len(made))
        except Exception:
            log.exception("scheduled syntheses: round failed")
        await asyncio.sleep(settings.schedule_poll_seconds)
