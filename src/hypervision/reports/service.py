"""Report schedules of a space: made, listed and stopped by those who may edit the space
(after reading it as themselves: a space they may not read is a 404); and the reports
delivered to me. docs/adr/0045."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.reports.models import REPORT_SCHEDULE_KIND, ReportDelivery, ReportSchedule
from hypervision.reports.render import chosen_modules
from hypervision.reports.schemas import ReportScheduleCreate
from hypervision.spaces import service as spaces
from hypervision.spaces.models import Space
from hypervision.synthesis.service import recipient_users

NO_SCHEDULE = REPORT_SCHEDULE_KIND.missing


async def _editable(
    session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> Space:
    space = await spaces.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    if not spaces.may_edit(actor, space):
        raise Forbidden(
            "Seuls les rédacteurs de cet espace en programment les rapports.",
            "Only this space's editors schedule its reports.",
        )
    return space


async def create_schedule(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID,
    data: ReportScheduleCreate,
) -> ReportSchedule:  # fmt: skip
    space = await _editable(session, settings, actor, space_id)
    chosen_modules(space, data.modules)  # each named module must be in the space (422)
    if not await recipient_users(session, data.recipients):  # unknown names: 422
        raise Invalid("Choisissez au moins un destinataire.", "Choose at least one recipient.")
    assert actor.user_id is not None
    row = ReportSchedule(
        space_id=space.id,
        name=data.name,
        times=sorted(set(data.times)),
        module_ids=list(dict.fromkeys(data.modules)),
        recipients=data.recipients.model_dump(),
        created_by=actor.user_id,
        active=True,
        last_run_at=utcnow(),  # the first report goes at the next scheduled time
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session, actor=actor, action="report_schedule.create",
        resource_type="space", resource_ids=[space.id], labels=[space.label_level],
        detail={"schedule_id": str(row.id), "times": row.times},
    )  # fmt: skip
    return row


async def list_schedules(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> list[ReportSchedule]:
    space = await _editable(session, settings, actor, space_id)
    return list(
        await session.scalars(
            select(ReportSchedule)
            .where(ReportSchedule.space_id == space.id, ReportSchedule.active)
            .order_by(ReportSchedule.created_at)
        )
    )


async def stop_schedule(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID,
    schedule_id: uuid.UUID,
) -> None:  # fmt: skip
    space = await _editable(session, settings, actor, space_id)
    row = await session.get(ReportSchedule, schedule_id)
    if row is None or row.space_id != space.id or not row.active:
        raise NotFound(*NO_SCHEDULE)
    row.active = False
    await audit.record(
        session=session, actor=actor, action="report_schedule.stop",
        resource_type="space", resource_ids=[space.id], labels=[space.label_level],
        detail={"schedule_id": str(row.id)},
    )  # fmt: skip


async def my_deliveries(
    *, session: AsyncSession, settings: Settings, actor: Principal, limit: int = 100
) -> list[tuple[ReportDelivery, ReportSchedule]]:
    """The reports delivered to ``actor`` about spaces they may still read, newest first,
    with their schedule. Only ids and levels: the content is rendered again, as the
    reader, when they open it (ADR 0012: a reference is protected like its target)."""
    readable = spaces.visible_spaces(session, settings, actor).with_only_columns(Space.id)
    result = await session.execute(
        select(ReportDelivery, ReportSchedule)
        .join(ReportSchedule, ReportSchedule.id == ReportDelivery.schedule_id)
        .where(
            ReportDelivery.user_id == actor.user_id,
            ReportDelivery.status == "delivered",
            ReportDelivery.space_id.in_(readable),
        )
        .order_by(ReportDelivery.due_at.desc())
        .limit(limit)
    )
    rows = [(row, schedule) for row, schedule in result.all()]
    await audit.record(
        session=session, actor=actor, action="report_delivery.list",
        resource_type="report_delivery", resource_ids=[r.id for r, _ in rows],
        labels=sorted({r.level for r, _ in rows if r.level}),
    )  # fmt: skip
    return rows
