"""The crisis directory's pages (``/accueil/annuaire``, docs/adr/0042): every shift not over
yet, by room, with filters; the form with which watch officers and administrators put someone
on duty, change a shift or end it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from hypervision.core.deps import DbSession
from hypervision.core.errors import Invalid
from hypervision.db import utcnow
from hypervision.hub import duty
from hypervision.hub.models import DutyAssignment
from hypervision.hub.present import duty_read, names_for
from hypervision.hub.schemas import DutyCreate, DutyUpdate
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.web.hub_pages import first_error, paris_input, parse_paris
from hypervision.web.render import render, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
FIELDS = ("username", "person_name", "organisation", "room", "function", "phone", "radio",
          "email", "starts_at", "ends_at", "note")  # fmt: skip


def _values(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in FIELDS}


def _data(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {k: v for k, v in values.items() if k not in ("starts_at", "ends_at")}
    data["username"] = data["username"] or None
    data["email"] = data["email"] or None
    data["starts_at"] = parse_paris(values["starts_at"])
    data["ends_at"] = parse_paris(values["ends_at"])
    return data


async def _context(
    request: Request, session: AsyncSession, actor: Principal, salle: str, organisation: str
) -> dict[str, Any]:
    now = utcnow()
    filters = duty.DutyFilters(room=salle or None, organisation=organisation or None)
    rows, _ = await duty.list_duties(
        session=session, actor=actor, filters=filters, limit=duty.PAGE_MAX
    )
    rows = [r for r in rows if r.ends_at > now]
    names = await names_for(session, rows)
    return {
        "items": [duty_read(r, names, now) for r in rows],
        "keeps": duty.may_keep(actor),
        "organisations": await identity.organisation_choices(session=session),
        "rooms": sorted({r.room for r in rows}, key=str.casefold),
        "salle": salle,
        "organisation": organisation,
        "values": {},
        "error": None,
    }


@router.get("/accueil/annuaire", response_class=HTMLResponse)
async def directory(
    request: Request,
    session: DbSession,
    actor: Officer,
    salle: str = "",
    organisation: str = "",
) -> Response:
    context = await _context(request, session, actor, salle[:120], organisation[:32])
    return render(request, "hub_duty.html", context)


@router.post("/accueil/annuaire", response_class=HTMLResponse)
async def duty_create(request: Request, session: DbSession, actor: Officer) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    values = _values(form)
    try:
        data = DutyCreate(**_data(values))
        async with session.begin_nested():
            await duty.create_duty(session=session, actor=actor, data=data)
    except (ValidationError, Invalid, ValueError) as exc:
        context = await _context(request, session, actor, "", "")
        context["values"], context["error"] = values, _message(request, exc)
        return render(request, "hub_duty.html", context, status_code=422)
    return RedirectResponse("/accueil/annuaire?enregistree=1", status_code=303)


def _message(request: Request, exc: Exception) -> str:
    if isinstance(exc, ValidationError | Invalid):
        return first_error(request, exc)
    return translator(request).gettext("Dates are written day, month, year and time.")


def _form_values(row: DutyAssignment, read: dict[str, Any]) -> dict[str, str]:
    return {
        **{k: str(read.get(k) or "") for k in FIELDS},
        "starts_at": paris_input(row.starts_at),
        "ends_at": paris_input(row.ends_at),
    }


@router.get("/accueil/annuaire/{duty_id}", response_class=HTMLResponse)
async def duty_page(
    request: Request, session: DbSession, actor: Officer, duty_id: uuid.UUID
) -> Response:
    row = await duty.get_duty(session=session, actor=actor, duty_id=duty_id)
    read = duty_read(row, await names_for(session, [row]))
    context = {
        "duty": read,
        "keeps": duty.may_keep(actor),
        "values": _form_values(row, read.model_dump()),
        "organisations": await identity.organisation_choices(session=session),
        "error": None,
    }
    return render(request, "hub_duty_edit.html", context)


@router.post("/accueil/annuaire/{duty_id}", response_class=HTMLResponse)
async def duty_update(
    request: Request, session: DbSession, actor: Officer, duty_id: uuid.UUID
) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    values = _values(form)
    try:
        changes = _data(values)
        changes.pop("username")
        async with session.begin_nested():
            await duty.update_duty(
                session=session, actor=actor, duty_id=duty_id, data=DutyUpdate(**changes)
            )
    except (ValidationError, Invalid, ValueError) as exc:
        row = await duty.get_duty(session=session, actor=actor, duty_id=duty_id)
        context = {
            "duty": duty_read(row, await names_for(session, [row])),
            "keeps": duty.may_keep(actor),
            "values": values,
            "organisations": await identity.organisation_choices(session=session),
            "error": _message(request, exc),
        }
        return render(request, "hub_duty_edit.html", context, status_code=422)
    return RedirectResponse("/accueil/annuaire?enregistree=1", status_code=303)


@router.post("/accueil/annuaire/{duty_id}/fin")
async def duty_end(session: DbSession, actor: Officer, duty_id: uuid.UUID) -> Response:
    await duty.end_shift(session=session, actor=actor, duty_id=duty_id)
    return RedirectResponse("/accueil/annuaire?terminee=1", status_code=303)
