"""Reports API: a space's report as a PDF (read as the caller), its report schedules, and
the reports delivered to me. docs/adr/0045."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.core.openapi import errors as error_responses
from hypervision.identity import throttle
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.service import get_user
from hypervision.reports import render, service
from hypervision.reports.mail import report_link
from hypervision.reports.models import ReportSchedule
from hypervision.reports.schemas import (
    ModuleId,
    ReportDeliveryRead,
    ReportScheduleCreate,
    ReportScheduleRead,
)
from hypervision.synthesis.schemas import Recipients

router = APIRouter(
    prefix="/api/v1", tags=["reports"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
THROTTLED = error_responses(429)  # like every export
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get(
    "/spaces/{space_id}/report.pdf", response_class=Response, responses=NOT_FOUND | THROTTLED | PDF
)
async def space_report(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    module: Annotated[list[ModuleId] | None, Query(max_length=60)] = None,
) -> Response:
    """The space (or the modules named by ``module``, repeated) as a PDF read as the caller:
    each module as on the page (a hidden source is the same neutral placeholder), the
    protection marking of the highest level it holds on every page, the caller's name as a
    watermark. Throttled like every export (429 with Retry-After)."""
    await throttle.reserve_export(session=session, settings=settings, actor=actor)
    assert actor.user_id is not None
    user = await get_user(session=session, user_id=actor.user_id)
    report = await render.report_for(
        session=session, settings=settings, actor=actor, space_id=space_id,
        module_ids=module, reader=user.full_name,
    )  # fmt: skip
    return Response(
        report.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="rapport-{report.space.id}.pdf"'},
    )


def _read(row: ReportSchedule) -> ReportScheduleRead:
    return ReportScheduleRead(
        id=row.id, space_id=row.space_id, name=row.name, times=row.times,
        modules=row.module_ids, recipients=Recipients(**row.recipients), active=row.active,
        last_run_at=row.last_run_at, created_at=row.created_at,
    )  # fmt: skip


@router.post(
    "/spaces/{space_id}/report-schedules",
    response_model=ReportScheduleRead,
    status_code=201,
    responses=NOT_FOUND,
)
async def create_schedule(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    data: ReportScheduleCreate,
) -> ReportScheduleRead:
    """Send the space's report at fixed times (HH:MM, Paris time) to users and organisations
    (their members of the day): each recipient gets it rendered as themselves; one who may
    not read the space gets nothing, and that is recorded. The space's editors only."""
    row = await service.create_schedule(
        session=session, settings=settings, actor=actor, space_id=space_id, data=data
    )
    return _read(row)


@router.get(
    "/spaces/{space_id}/report-schedules",
    response_model=list[ReportScheduleRead],
    responses=NOT_FOUND,
)
async def list_schedules(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, space_id: uuid.UUID
) -> list[ReportScheduleRead]:
    rows = await service.list_schedules(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    return [_read(r) for r in rows]


@router.delete(
    "/spaces/{space_id}/report-schedules/{schedule_id}", status_code=204, responses=NOT_FOUND
)
async def stop_schedule(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    schedule_id: uuid.UUID,
) -> Response:
    await service.stop_schedule(
        session=session, settings=settings, actor=actor, space_id=space_id,
        schedule_id=schedule_id,
    )  # fmt: skip
    return Response(status_code=204)


@router.get("/report-deliveries", response_model=list[ReportDeliveryRead])
async def my_deliveries(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> list[ReportDeliveryRead]:
    """Reports delivered to me, newest first (of spaces I may still read); each link renders
    the report again as me."""
    rows = await service.my_deliveries(session=session, settings=settings, actor=actor)
    return [
        ReportDeliveryRead(
            id=r.id,
            space_id=r.space_id,
            schedule=s.name,
            due_at=r.due_at,
            level=r.level,
            link=report_link(settings, s),
        )
        for r, s in rows
    ]
