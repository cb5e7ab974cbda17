"""Syntheses API: draft, edit, submit, validate, send, supersede, PDF, inbox, schedules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Request, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, PRECONDITION, SIGNED_IN
from hypervision.core.openapi import errors as error_responses
from hypervision.identity import throttle
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import present
from hypervision.records.etags import etag
from hypervision.synthesis import mail, rendering, schedules, service
from hypervision.synthesis.models import Synthesis
from hypervision.synthesis.schemas import (
    InboxItem,
    Recipients,
    ScheduleCreate,
    ScheduleRead,
    SynthesisDraft,
    SynthesisFull,
    SynthesisRead,
    SynthesisUpdate,
)

router = APIRouter(
    prefix="/api/v1", tags=["syntheses"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]
THROTTLED = error_responses(429)  # bulk exports (SECURITY.md item 13)


async def _read(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, synthesis: Synthesis,
    response: Response,
) -> SynthesisRead:  # fmt: skip
    response.headers["ETag"] = etag(synthesis)
    (read,) = await rendering.reads_for(session, settings, actor, [synthesis])
    return read


@router.get("/syntheses", response_model=list[SynthesisRead])
async def list_syntheses(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> list[SynthesisRead]:
    rows = await service.list_syntheses(session=session, settings=settings, actor=actor)
    return await rendering.reads_for(session, settings, actor, rows)


@router.post(
    "/syntheses", response_model=SynthesisRead, status_code=201, responses=CONFLICT | NOT_FOUND
)
async def draft(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: SynthesisDraft,
    response: Response,
) -> SynthesisRead:
    """A draft from a scope (watch officers): the entries in scope, key figures, label."""
    synthesis = await service.draft(session=session, settings=settings, actor=actor, data=data)
    return await _read(session, settings, actor, synthesis, response)


@router.get("/syntheses/{synthesis_id}", response_model=SynthesisFull, responses=NOT_FOUND)
async def get_synthesis(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    synthesis_id: uuid.UUID,
    response: Response,
) -> SynthesisFull:
    synthesis, seen = await service.read(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    response.headers["ETag"] = etag(synthesis)
    names = await rendering.names_for(session, [synthesis])
    base = rendering.synthesis_read(settings, synthesis, names, seen)
    entries = await present.entries_read(session, seen.entries, settings=settings, actor=actor)
    return SynthesisFull(**base.model_dump(), entries=entries)


@router.patch(
    "/syntheses/{synthesis_id}", response_model=SynthesisRead, responses=PRECONDITION | NOT_FOUND
)
async def update(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    synthesis_id: uuid.UUID,
    data: SynthesisUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> SynthesisRead:
    """Edit a draft: title, narrative, chosen entries (figures and label follow), or raise
    the label. A sent synthesis never changes."""
    synthesis = await service.update(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id,
        data=data, if_match=if_match,
    )  # fmt: skip
    return await _read(session, settings, actor, synthesis, response)


async def _transition(
    name: str, session: DbSession, settings: SettingsDep, actor: CurrentPrincipal,
    synthesis_id: uuid.UUID, response: Response, if_match: str | None,
) -> SynthesisRead:  # fmt: skip
    steps = {
        "submit": service.submit,
        "validate": service.validate,
        "return": service.return_to_draft,
    }
    synthesis = await steps[name](
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id,
        if_match=if_match,
    )  # fmt: skip
    return await _read(session, settings, actor, synthesis, response)


@router.post(
    "/syntheses/{synthesis_id}/submit",
    response_model=SynthesisRead,
    responses=PRECONDITION | NOT_FOUND,
)
async def submit(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal,
    synthesis_id: uuid.UUID, response: Response, if_match: IfMatch = None,
) -> SynthesisRead:  # fmt: skip
    return await _transition("submit", session, settings, actor, synthesis_id, response, if_match)


@router.post(
    "/syntheses/{synthesis_id}/validate",
    response_model=SynthesisRead,
    responses=PRECONDITION | NOT_FOUND,
)
async def validate(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal,
    synthesis_id: uuid.UUID, response: Response, if_match: IfMatch = None,
) -> SynthesisRead:  # fmt: skip
    """Validation by another watch officer than the author (four eyes)."""
    return await _transition("validate", session, settings, actor, synthesis_id, response, if_match)


@router.post(
    "/syntheses/{synthesis_id}/return",
    response_model=SynthesisRead,
    responses=PRECONDITION | NOT_FOUND,
)
async def return_to_draft(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal,
    synthesis_id: uuid.UUID, response: Response, if_match: IfMatch = None,
) -> SynthesisRead:  # fmt: skip
    """Back to draft for corrections (from submitted or validated)."""
    return await _transition("return", session, settings, actor, synthesis_id, response, if_match)


@router.post(
    "/syntheses/{synthesis_id}/send",
    response_model=SynthesisRead,
    responses=PRECONDITION | NOT_FOUND,
)
async def send(
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    synthesis_id: uuid.UUID,
    recipients: Recipients,
    response: Response,
    if_match: IfMatch = None,
) -> SynthesisRead:
    """Send a validated synthesis to users and organisations cleared for it (an uncleared
    recipient refuses the whole sending, with their name). E-mails follow the commit."""
    synthesis, _ = await service.send(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id,
        recipients=recipients, if_match=if_match,
    )  # fmt: skip
    background.add_task(
        mail.send_pending, request.app.state.system_sessions, settings, synthesis.id
    )
    return await _read(session, settings, actor, synthesis, response)


@router.post(
    "/syntheses/{synthesis_id}/supersede",
    response_model=SynthesisRead,
    status_code=201,
    responses=CONFLICT | NOT_FOUND,
)
async def supersede(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal,
    synthesis_id: uuid.UUID, response: Response,
) -> SynthesisRead:  # fmt: skip
    """A correction of a sent synthesis: a new draft that replaces it once sent."""
    copy = await service.supersede(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    return await _read(session, settings, actor, copy, response)


@router.get(
    "/syntheses/{synthesis_id}/pdf",
    response_class=Response,
    responses=NOT_FOUND
    | THROTTLED
    | {200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def synthesis_pdf(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, synthesis_id: uuid.UUID
) -> Response:
    """The PDF, marked on every page and watermarked with the reader's name and the date.
    Throttled per user (``export_max_per_window``): 429 with Retry-After."""
    from hypervision.identity.service import get_user

    await throttle.reserve_export(session=session, settings=settings, actor=actor)

    assert actor.user_id is not None
    user = await get_user(session=session, user_id=actor.user_id)
    synthesis, data = await rendering.pdf_for(
        session, settings, actor, synthesis_id, user.full_name
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="synthese-{synthesis.id}.pdf"'},
    )


@router.get("/inbox", response_model=list[InboxItem])
async def inbox(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> list[InboxItem]:
    """Syntheses sent to me, newest first, with when I acknowledged them."""
    rows = await service.inbox(session=session, settings=settings, actor=actor)
    reads = await rendering.reads_for(session, settings, actor, [s for s, _ in rows])
    return [
        InboxItem(synthesis=read, delivered_at=r.delivered_at, acknowledged_at=r.acknowledged_at)
        for read, (_, r) in zip(reads, rows, strict=True)
    ]


@router.post(
    "/syntheses/{synthesis_id}/acknowledge", status_code=204, responses=CONFLICT | NOT_FOUND
)
async def acknowledge(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, synthesis_id: uuid.UUID
) -> None:
    await service.acknowledge(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )


@router.post(
    "/synthesis-schedules", response_model=ScheduleRead, status_code=201, responses=CONFLICT
)
async def create_schedule(
    session: DbSession, actor: CurrentPrincipal, data: ScheduleCreate
) -> ScheduleRead:
    """Recurring points de situation (e.g. 07:00 and 19:00, Paris time) drafted automatically."""
    row = await schedules.create_schedule(session=session, actor=actor, data=data)
    return ScheduleRead.model_validate(row, from_attributes=True)
