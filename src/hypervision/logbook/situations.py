"""Situations: ongoing events grouping entries, with their own lifecycle and timeline."""

from __future__ import annotations

import uuid

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.models import SITUATION_KIND, Entry, Situation, Status
from hypervision.logbook.schemas import SituationCreate, SituationUpdate
from hypervision.policy.rules import Action, authorize
from hypervision.records import access, versions
from hypervision.records.access import subject_of
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label
from hypervision.records.models import RecordVersion


def visible_situations(
    session: AsyncSession, settings: Settings, actor: Principal
) -> Select[Situation]:
    return access.visible(session, settings, actor, Situation)


async def create_situation(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: SituationCreate
) -> Situation:
    authorize(actor, Action.TRIAGE)
    assert actor.user_id is not None and actor.organisation_id is not None
    label = await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
    now = utcnow()
    situation = Situation(
        title=data.title,
        description=data.description,
        severity=data.severity.value,
        status=Status.OPEN.value,
        started_at=data.started_at or now,
        created_at=now,
        updated_at=now,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        version=1,
    )
    situation.set_label(label)
    session.add(situation)
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="situation",
        row=situation,
        action="create",
        before=None,
        summary={"severity": situation.severity, "status": situation.status},
    )
    return situation


async def find_situation(
    *, session: AsyncSession, settings: Settings, actor: Principal, situation_id: uuid.UUID
) -> Situation:
    query = visible_situations(session, settings, actor)
    return await access.find_in(session, query, SITUATION_KIND, situation_id)


async def get_situation(
    *, session: AsyncSession, settings: Settings, actor: Principal, situation_id: uuid.UUID
) -> Situation:
    situation = await find_situation(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    await access.delivered(
        session, actor, action="situation.read", kind="situation", rows=[situation]
    )
    return situation


async def list_situations(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    status: str | None,
    limit: int,
) -> list[Situation]:
    query = visible_situations(session, settings, actor)
    if status:
        query = query.where(Situation.status == status)
    rows = list(await session.scalars(query.order_by(Situation.started_at.desc()).limit(limit)))
    await access.delivered(session, actor, action="situation.list", kind="situation", rows=rows)
    return rows


async def situation_choices(
    *, session: AsyncSession, settings: Settings, actor: Principal, surface: str = "web"
) -> list[Situation]:
    """Every situation the actor can see, open first then newest (the choices of filters and
    forms): a read like any other, audited."""
    rows = list(
        await session.scalars(
            visible_situations(session, settings, actor).order_by(
                Situation.status == Status.CLOSED.value, Situation.started_at.desc()
            )
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="situation.list",
        surface=surface,
        resource_type="situation",
        resource_ids=[s.id for s in rows],
        labels=sorted({s.label_level for s in rows}),
        detail={"use": "choices"},
    )
    return rows


async def sees_situation(
    *, session: AsyncSession, settings: Settings, actor: Principal, situation_id: uuid.UUID
) -> bool:
    """Whether the actor can see this situation (hidden and unknown alike answer False): for
    dropping a filter on it, nothing of it is delivered."""
    shown = visible_situations(session, settings, actor).where(Situation.id == situation_id)
    return await session.scalar(shown.with_only_columns(Situation.id)) is not None


async def update_situation(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    situation_id: uuid.UUID,
    data: SituationUpdate,
    if_match: str | None,
) -> Situation:
    situation = await find_situation(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    authorize(actor, Action.TRIAGE)
    check_if_match(situation, if_match)
    before = versions.snapshot(situation)
    for name in ("title", "description"):
        value = getattr(data, name)
        if value is not None:
            setattr(situation, name, value)
    if data.severity is not None:
        situation.severity = data.severity.value
    if data.status is not None:
        situation.status = data.status.value
    if versions.diff(before, versions.snapshot(situation)):
        situation.version += 1
        situation.updated_at = utcnow()
        await versions.record_change(
            session=session,
            actor=actor,
            resource_type="situation",
            row=situation,
            action="update",
            before=before,
            summary={"severity": situation.severity, "status": situation.status},
        )
    return situation


async def timeline(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    situation_id: uuid.UUID,
    limit: int = 500,
) -> tuple[Situation, list[Entry], list[RecordVersion]]:
    """The situation's visible entries and its own versions, for a merged chronology."""
    situation = await find_situation(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    entries = list(
        await session.scalars(
            visible(session, settings, actor)
            .where(Entry.situation_id == situation.id)
            .order_by(Entry.occurred_at.desc())
            .limit(limit)
        )
    )
    own = await versions.visible_versions(
        session=session, subject=subject_of(settings, actor), resource_id=situation.id
    )
    await access.delivered(
        session, actor, action="situation.timeline", kind="entry", rows=[situation, *entries]
    )
    return situation, entries, own
