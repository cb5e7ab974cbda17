"""The hub (``/accueil``, docs/adr/0042): the platform's home — the announcements of the CNCS,
who is on duty in each room, the latest shared documents, and the person's spaces (filled in
by the spaces domain; empty for now). And the announcements' page, where the CNCS publishes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.i18n import N_
from hypervision.core.timezone import PARIS
from hypervision.db import utcnow
from hypervision.hub import announcements, documents, duty
from hypervision.hub.present import announcement_read, document_read, duty_read, names_for
from hypervision.hub.schemas import AnnouncementCreate
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, allowed
from hypervision.records.schemas import LabelIn
from hypervision.spaces import service as spaces
from hypervision.spaces.api import space_reads
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
LATEST_DOCUMENTS = 6
LATEST_SPACES = 8
IMPORTANCE_NAMES = {
    "info": N_("Information"),
    "important": N_("Important"),
    "urgent": N_("Urgent"),
}


def paris_input(value: datetime | None) -> str:
    """A ``datetime-local`` field's value: Paris time, to the minute."""
    return value.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M") if value else ""


def parse_paris(raw: str) -> datetime | None:
    """A ``datetime-local`` field (Paris time) as an aware instant; None when empty."""
    text = raw.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(text) from None
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else value


def label_of(form: FormData, own_code: str | None, levels: tuple[str, ...]) -> LabelIn:
    """The label a form's "who can read it" fields describe (``_hub_label.html``)."""
    everyone = form.get("audience") == "all"
    also = [str(code) for code in form.getlist("also") if code]
    audience = [] if everyone else sorted({*([own_code] if own_code else []), *also})
    return LabelIn(
        level=str(form.get("level") or levels[0]),
        need_to_know=[str(code) for code in form.getlist("need_to_know") if code],
        audience=audience,
    )


async def label_choices(
    session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, Any]:
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    return {
        "levels": settings.label_levels,
        "organisations": await identity.organisation_choices(session=session),
        "groups": await identity.group_names(session=session, codes=sorted(actor.groups)),
        "own_code": own.code if own else None,
    }


def first_error(request: Request, exc: ValidationError | Invalid) -> str:
    if isinstance(exc, Invalid):
        return in_words(request, exc)
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "?"
    return translator(request).gettext("Check the field “%(name)s”.", name=where)


# --- the hub -----------------------------------------------------------------------------------


@router.get("/accueil", response_class=HTMLResponse)
async def hub(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """The signed-in person's home (the site's root and the "Hypervision" link lead here)."""
    now = utcnow()
    context: dict[str, Any] = {
        "now": now,
        "importance_names": IMPORTANCE_NAMES,
        "spaces": [],  # dicts of title, url, owner, updated_at
        "rooms": [],
        "notices": [],
        "documents": [],
        "reads": allowed(actor, Action.READ),
        "keeps_directory": duty.may_keep(actor),
        "publishes": await announcements.may_publish(session, settings, actor),
    }
    if context["reads"]:
        shown, _ = await announcements.list_announcements(
            session=session, settings=settings, actor=actor, limit=20
        )
        docs, _ = await documents.list_documents(
            session=session, settings=settings, actor=actor, limit=LATEST_DOCUMENTS
        )
        shows(request, [r.label_level for r in shown] + [r.label_level for r in docs])
        names = await names_for(session, [*shown, *docs])
        context["notices"] = [announcement_read(r, names, now) for r in shown]
        context["documents"] = [document_read(r, names) for r in docs]
        context["spaces"] = await _spaces(request, session, settings, actor)
    if context["reads"] or context["keeps_directory"]:
        rooms = await duty.board(session=session, actor=actor, at=now)
        people = [d for room in rooms for d in (*room.now, *([room.next] if room.next else []))]
        names = await names_for(session, people)
        context["rooms"] = [
            {
                "name": room.name,
                "now": [duty_read(d, names, now) for d in room.now],
                "next": duty_read(room.next, names, now) if room.next else None,
            }
            for room in rooms
        ]
    return render(request, "hub.html", context)


async def _spaces(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> list[dict[str, Any]]:
    """The spaces the person may open, theirs and their organisation's first."""
    rows, _ = await spaces.list_spaces(
        session=session, settings=settings, actor=actor, limit=LATEST_SPACES
    )
    shows(request, [s.label_level for s in rows])
    mine = {actor.user_id}, {actor.organisation_id}
    rows.sort(key=lambda s: (s.owner_user_id not in mine[0], s.organisation_id not in mine[1]))
    t = translator(request).gettext
    return [
        {
            "title": read.title,
            "url": f"/espaces/{read.id}",
            "owner": t("Personal space of %(name)s", name=read.owner)
            if read.owner
            else t("Space of %(org)s", org=read.organisation),
            "updated_at": read.updated_at,
        }
        for read in await space_reads(session, actor, rows)
    ]


# --- announcements -------------------------------------------------------------------------


async def _announcements_context(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, Any]:
    rows, _ = await announcements.list_announcements(
        session=session, settings=settings, actor=actor, shown_only=False, limit=100
    )
    shows(request, [r.label_level for r in rows])
    names = await names_for(session, rows)
    publishes = await announcements.may_publish(session, settings, actor)
    context: dict[str, Any] = {
        "items": [announcement_read(r, names) for r in rows],
        "importance_names": IMPORTANCE_NAMES,
        "publishes": publishes,
        "values": {"importance": "info", "audience": "all", "starts_at": paris_input(utcnow())},
        "error": None,
    }
    if publishes:
        context |= await label_choices(session, settings, actor)
    return context


@router.get("/accueil/annonces", response_class=HTMLResponse)
async def announcement_list(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    context = await _announcements_context(request, session, settings, actor)
    return render(request, "hub_announcements.html", context)


@router.post("/accueil/annonces", response_class=HTMLResponse)
async def announcement_create(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    form = await request.form(max_files=0, max_fields=100)
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    try:
        data = AnnouncementCreate(
            title=str(form.get("title") or ""),
            body=str(form.get("body") or ""),
            importance=str(form.get("importance") or "info"),
            starts_at=parse_paris(str(form.get("starts_at") or "")),
            ends_at=parse_paris(str(form.get("ends_at") or "")),
            label=label_of(form, own.code if own else None, settings.label_levels),
        )
        async with session.begin_nested():
            await announcements.create_announcement(
                session=session, settings=settings, actor=actor, data=data
            )
    except (ValidationError, Invalid, ValueError) as exc:
        context = await _announcements_context(request, session, settings, actor)
        context["values"] = {key: form.get(key) for key in form} | {
            "also": form.getlist("also"),
            "need_to_know": form.getlist("need_to_know"),
        }
        context["error"] = (
            first_error(request, exc)
            if isinstance(exc, ValidationError | Invalid)
            else translator(request).gettext("Dates are written day, month, year and time.")
        )
        return render(request, "hub_announcements.html", context, status_code=422)
    return RedirectResponse("/accueil?annonce=1", status_code=303)


@router.post("/accueil/annonces/{announcement_id}/retirer")
async def announcement_withdraw(
    session: DbSession, settings: SettingsDep, actor: Officer, announcement_id: uuid.UUID
) -> Response:
    await announcements.withdraw_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    return RedirectResponse("/accueil/annonces", status_code=303)
