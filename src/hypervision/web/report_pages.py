"""A space's report schedules for its editors (``/espaces/{id}/rapports``, docs/adr/0045):
the schedules that run, a form to add one (times, modules, organisations and people), and a
button to stop one. Everything goes through ``reports.service``, as the API does."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.reports import service
from hypervision.reports.schemas import ReportScheduleCreate
from hypervision.spaces import service as spaces
from hypervision.synthesis.schemas import Recipients
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
SEPARATORS = re.compile(r"[\s,;]+")


def _typed(form: FormData) -> dict[str, Any]:
    """What the form held, kept when it is shown again with an error."""
    return {
        "name": str(form.get("name") or "")[:120],
        "times": str(form.get("times") or "")[:200],
        "modules": [str(v)[:32] for v in form.getlist("modules")][:60],
        "organisations": [str(v)[:32] for v in form.getlist("organisations")][:50],
        "users": str(form.get("users") or "")[:2000],
    }


async def _page(
    request: Request,
    session: DbSession,
    settings: Settings,
    actor: Principal,
    space_id: uuid.UUID,
    *,
    typed: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    schedules = await service.list_schedules(
        session=session, settings=settings, actor=actor, space_id=space_id
    )  # the space's editors only: 404 / 403 otherwise
    space = await spaces.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    shows(request, [space.label_level])
    ordered = sorted(space.modules, key=lambda m: (m.get("y", 0), m.get("x", 0)))
    titles = {str(m.get("id")): m.get("title") or "" for m in ordered}
    context = {
        "space": space,
        "modules": ordered,
        "titles": titles,
        "schedules": schedules,
        "organisations": await identity.organisation_choices(session=session),
        "typed": typed or {"name": "", "times": "08:00, 18:00", "modules": [],
                           "organisations": [], "users": ""},
        "error": error,
    }  # fmt: skip
    return render(request, "space_reports.html", context, status_code=status_code)


@router.get("/espaces/{space_id}/rapports", response_class=HTMLResponse)
async def schedules_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer,
    space_id: uuid.UUID,
) -> Response:  # fmt: skip
    return await _page(request, session, settings, actor, space_id)


@router.post("/espaces/{space_id}/rapports", response_class=HTMLResponse)
async def create_schedule(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer,
    space_id: uuid.UUID,
) -> Response:  # fmt: skip
    form = await request.form(max_files=0, max_fields=200)
    typed = _typed(form)
    try:
        data = ReportScheduleCreate(
            name=typed["name"],
            times=[t for t in SEPARATORS.split(typed["times"]) if t],
            modules=typed["modules"],
            recipients=Recipients(
                users=[u for u in SEPARATORS.split(typed["users"]) if u][:200],
                organisations=typed["organisations"],
            ),
        )
    except ValidationError:
        message = translator(request).gettext(
            "Give the schedule a name and one to twelve times of day written HH:MM (Paris time)."
        )
        return await _page(
            request, session, settings, actor, space_id,
            typed=typed, error=message, status_code=422,
        )  # fmt: skip
    try:
        async with session.begin_nested():
            await service.create_schedule(
                session=session, settings=settings, actor=actor, space_id=space_id, data=data
            )
    except AppError as refused:
        if refused.status in (403, 404):
            raise
        return await _page(
            request, session, settings, actor, space_id,
            typed=typed, error=in_words(request, refused), status_code=refused.status,
        )  # fmt: skip
    return RedirectResponse(f"/espaces/{space_id}/rapports", status_code=303)


@router.post("/espaces/{space_id}/rapports/{schedule_id}/arreter")
async def stop_schedule(
    session: DbSession, settings: SettingsDep, actor: Officer,
    space_id: uuid.UUID, schedule_id: uuid.UUID,
) -> Response:  # fmt: skip
    await service.stop_schedule(
        session=session, settings=settings, actor=actor, space_id=space_id,
        schedule_id=schedule_id,
    )  # fmt: skip
    return RedirectResponse(f"/espaces/{space_id}/rapports", status_code=303)
