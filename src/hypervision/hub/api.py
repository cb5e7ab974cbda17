"""Hub API: the crisis directory (``/api/v1/hub/duty``) and the announcements
(``/api/v1/hub/announcements``); the documents are in ``documents_api``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.core.schemas import Instant
from hypervision.hub import announcements, duty
from hypervision.hub.models import Importance
from hypervision.hub.present import announcement_read, duty_read, names_for
from hypervision.hub.schemas import (
    AnnouncementCreate,
    AnnouncementPage,
    AnnouncementRead,
    AnnouncementUpdate,
    DutyCreate,
    DutyPage,
    DutyRead,
    DutyUpdate,
)
from hypervision.identity.deps import CurrentPrincipal
from hypervision.records.schemas import Code

router = APIRouter(
    prefix="/api/v1/hub", tags=["hub"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
Offset = Annotated[int, Query(ge=0, le=100_000, description="rows to skip (next_offset)")]


# --- the crisis directory ----------------------------------------------------------------------


@router.get("/duty", response_model=DutyPage)
async def list_duty(
    session: DbSession,
    actor: CurrentPrincipal,
    room: Annotated[str | None, Query(max_length=120)] = None,
    organisation: Annotated[Code | None, Query(description="organisation code")] = None,
    on_duty_at: Annotated[Instant | None, Query(description="on duty at that instant")] = None,
    q: Annotated[str | None, Query(max_length=120, description="words of a name, room")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=duty.PAGE_MAX)] = 100,
) -> DutyPage:
    """The crisis directory: duty assignments by start time (every signed-in officer)."""
    filters = duty.DutyFilters(room=room, organisation=organisation, on_duty_at=on_duty_at, q=q)
    rows, after = await duty.list_duties(
        session=session, actor=actor, filters=filters, offset=offset, limit=limit
    )
    names = await names_for(session, rows)
    return DutyPage(items=[duty_read(r, names) for r in rows], next_offset=after)


@router.post("/duty", response_model=DutyRead, status_code=201)
async def create_duty(
    session: DbSession, actor: CurrentPrincipal, data: DutyCreate, response: Response
) -> DutyRead:
    """Put someone on duty (watch officers and administrators): an account (``username``)
    or a name typed in (``person_name``), the organisation represented, the room, how to
    reach them and the shift (RFC 3339 instants; seven days at most)."""
    row = await duty.create_duty(session=session, actor=actor, data=data)
    response.headers["Location"] = f"/api/v1/hub/duty/{row.id}"
    return duty_read(row, await names_for(session, [row]))


@router.get("/duty/{duty_id}", response_model=DutyRead, responses=NOT_FOUND)
async def get_duty(session: DbSession, actor: CurrentPrincipal, duty_id: uuid.UUID) -> DutyRead:
    row = await duty.get_duty(session=session, actor=actor, duty_id=duty_id)
    return duty_read(row, await names_for(session, [row]))


@router.patch("/duty/{duty_id}", response_model=DutyRead, responses=NOT_FOUND)
async def update_duty(
    session: DbSession, actor: CurrentPrincipal, duty_id: uuid.UUID, data: DutyUpdate
) -> DutyRead:
    row = await duty.update_duty(session=session, actor=actor, duty_id=duty_id, data=data)
    return duty_read(row, await names_for(session, [row]))


@router.post("/duty/{duty_id}/end", response_model=DutyRead, responses=NOT_FOUND | CONFLICT)
async def end_duty(session: DbSession, actor: CurrentPrincipal, duty_id: uuid.UUID) -> DutyRead:
    """End the shift now (a shift not started yet is cancelled)."""
    row = await duty.end_shift(session=session, actor=actor, duty_id=duty_id)
    return duty_read(row, await names_for(session, [row]))


# --- announcements ---------------------------------------------------------------------------


@router.get("/announcements", response_model=AnnouncementPage)
async def list_announcements(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    all: Annotated[bool, Query(description="also those not displayed now")] = False,
    importance: Importance | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=announcements.PAGE_MAX)] = 50,
) -> AnnouncementPage:
    """The announcements you may see: those displayed now (most important first), or all."""
    rows, after = await announcements.list_announcements(
        session=session,
        settings=settings,
        actor=actor,
        shown_only=not all,
        importance=importance,
        offset=offset,
        limit=limit,
    )
    names = await names_for(session, rows)
    return AnnouncementPage(items=[announcement_read(r, names) for r in rows], next_offset=after)


@router.post("/announcements", response_model=AnnouncementRead, status_code=201)
async def create_announcement(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: AnnouncementCreate,
    response: Response,
) -> AnnouncementRead:
    """Publish an announcement (watch officers and authorities of the CNCS, see
    ``HYPERVISION_HUB_ANNOUNCERS``). The body is Markdown, sanitised when shown; the label's
    audience targets organisations (none: the author's organisation only)."""
    row = await announcements.create_announcement(
        session=session, settings=settings, actor=actor, data=data
    )
    response.headers["Location"] = f"/api/v1/hub/announcements/{row.id}"
    return announcement_read(row, await names_for(session, [row]))


@router.get(
    "/announcements/{announcement_id}", response_model=AnnouncementRead, responses=NOT_FOUND
)
async def get_announcement(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, announcement_id: uuid.UUID
) -> AnnouncementRead:
    row = await announcements.read_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    return announcement_read(row, await names_for(session, [row]))


@router.patch(
    "/announcements/{announcement_id}", response_model=AnnouncementRead, responses=NOT_FOUND
)
async def update_announcement(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    announcement_id: uuid.UUID,
    data: AnnouncementUpdate,
) -> AnnouncementRead:
    row = await announcements.update_announcement(
        session=session,
        settings=settings,
        actor=actor,
        announcement_id=announcement_id,
        data=data,
    )
    return announcement_read(row, await names_for(session, [row]))


@router.post(
    "/announcements/{announcement_id}/withdraw",
    response_model=AnnouncementRead,
    responses=NOT_FOUND | CONFLICT,
)
async def withdraw_announcement(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, announcement_id: uuid.UUID
) -> AnnouncementRead:
    """Stop displaying the announcement now."""
    row = await announcements.withdraw_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    return announcement_read(row, await names_for(session, [row]))
