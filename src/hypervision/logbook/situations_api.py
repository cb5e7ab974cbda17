"""Situations API: list, create, read, update, timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, PRECONDITION, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.principal import Principal
from hypervision.logbook import present, situations
from hypervision.logbook.models import Situation, Status
from hypervision.logbook.schemas import (
    SituationCreate,
    SituationRead,
    SituationUpdate,
    TimelineItem,
)
from hypervision.records.etags import etag

router = APIRouter(
    prefix="/api/v1", tags=["situations"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


async def _one(
    session: DbSession,
    settings: Settings,
    actor: Principal,
    situation: Situation,
    response: Response,
) -> SituationRead:
    response.headers["ETag"] = etag(situation)
    names = await present.directory_for(session, [situation], settings=settings, actor=actor)
    return present.situation_read(situation, names)


@router.get("/situations", response_model=list[SituationRead])
async def list_situations(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SituationRead]:
    rows = await situations.list_situations(
        session=session,
        settings=settings,
        actor=actor,
        status=status.value if status else None,
        limit=limit,
    )
    names = await present.directory_for(session, rows, settings=settings, actor=actor)
    return [present.situation_read(s, names) for s in rows]


@router.post("/situations", response_model=SituationRead, status_code=201, responses=CONFLICT)
async def create_situation(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: SituationCreate,
    response: Response,
) -> SituationRead:
    situation = await situations.create_situation(
        session=session, settings=settings, actor=actor, data=data
    )
    return await _one(session, settings, actor, situation, response)


@router.get("/situations/{situation_id}", response_model=SituationRead, responses=NOT_FOUND)
async def get_situation(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    situation_id: uuid.UUID,
    response: Response,
) -> SituationRead:
    situation = await situations.get_situation(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    return await _one(session, settings, actor, situation, response)


@router.patch(
    "/situations/{situation_id}", response_model=SituationRead, responses=PRECONDITION | NOT_FOUND
)
async def update_situation(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    situation_id: uuid.UUID,
    data: SituationUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> SituationRead:
    situation = await situations.update_situation(
        session=session,
        settings=settings,
        actor=actor,
        situation_id=situation_id,
        data=data,
        if_match=if_match,
    )
    return await _one(session, settings, actor, situation, response)


@router.get(
    "/situations/{situation_id}/timeline", response_model=list[TimelineItem], responses=NOT_FOUND
)
async def situation_timeline(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    situation_id: uuid.UUID,
) -> list[TimelineItem]:
    """Newest first: the situation's visible entries and its own changes, merged."""
    _, entries, versions = await situations.timeline(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    names = await present.directory_for(
        session, [*entries, *versions], settings=settings, actor=actor
    )
    items = [
        TimelineItem(at=e.occurred_at, kind="entry", entry=present.entry_read(e, names))
        for e in entries
    ]
    items += [
        TimelineItem(at=v.at, kind="situation_version", version=present.version_read(v, names))
        for v in versions
    ]
    return sorted(items, key=lambda item: item.at, reverse=True)
