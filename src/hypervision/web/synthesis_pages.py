"""Syntheses in the browser: list and drafting (watch officers), the synthesis page with its
workflow, and the authorities' inbox with acknowledgement."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from babel.dates import format_datetime
from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError
from hypervision.core.i18n import CATEGORY_NAMES, N_, SEVERITY_NAMES
from hypervision.core.markdown import render as markdown
from hypervision.core.timezone import PARIS
from hypervision.db import utcnow
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.logbook import present
from hypervision.policy.rules import Action, allowed
from hypervision.records.etags import PreconditionFailed, etag
from hypervision.reports import service as reports
from hypervision.reports.mail import report_path
from hypervision.synthesis import mail, rendering, service
from hypervision.synthesis.figure import map_svg
from hypervision.synthesis.schemas import Recipients, SynthesisDraft, SynthesisUpdate
from hypervision.web.choices import display_names, situation_titles
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
STATUS_NAMES = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "validated": N_("Validated"),
    "sent": N_("Sent"),
    "superseded": N_("Superseded"),
}


async def _list_context(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, Any]:
    rows = await service.list_syntheses(session=session, settings=settings, actor=actor)
    shows(request, [s.label_level for s in rows])
    return {
        "syntheses": await rendering.reads_for(session, settings, actor, rows),
        "status_names": STATUS_NAMES,
        "can_draft": allowed(actor, Action.TRIAGE),
        "situations": await situation_titles(request, session, settings, actor),
        "categories": CATEGORY_NAMES,
        "severities": SEVERITY_NAMES,
    }


@router.get("/syntheses", response_class=HTMLResponse)
async def list_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    context = await _list_context(request, session, settings, actor)
    return render(request, "syntheses.html", context)


@router.post("/syntheses", response_class=HTMLResponse)
async def draft(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    title: Annotated[str, Form(max_length=300)] = "",
    hours: Annotated[str, Form(max_length=6)] = "24",
    min_severity: Annotated[str, Form(max_length=16)] = "info",
    situation: Annotated[str, Form(max_length=40)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        data = SynthesisDraft.model_validate(
            {
                "title": title,
                "scope": {
                    "hours": int(hours) if hours.strip().isdigit() else 24,
                    "min_severity": min_severity or "info",
                    "situations": [situation] if situation else [],
                    "categories": [category] if category else [],
                },
            }
        )
    except ValidationError:
        context = await _list_context(request, session, settings, actor)
        context["draft_error"] = translator(request).gettext(
            "Give the synthesis a title (at most 200 characters)."
        )
        context["draft_title"] = title
        return render(request, "syntheses.html", context, status_code=422)
    synthesis = await service.draft(session=session, settings=settings, actor=actor, data=data)
    return RedirectResponse(f"/syntheses/{synthesis.id}", status_code=303)


async def _page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    synthesis_id: uuid.UUID,
    typed: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The synthesis page; ``typed``: what the drafting form held when it could not be saved,
    shown again instead of the stored draft."""
    synthesis, seen = await service.read(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    shows(request, [synthesis.label_level, *(e.label_level for e in seen.entries)])
    names = await rendering.names_for(session, [synthesis])
    reads = await present.entries_read(session, seen.entries, settings=settings, actor=actor)
    located = [(n, e.severity.value, e.location) for n, e in enumerate(reads, 1) if e.location]
    mine = await service.delivery(session=session, synthesis=synthesis, actor=actor)
    candidates: list[Any] = []
    pool: list[Any] = []
    is_watch = allowed(actor, Action.TRIAGE)
    if is_watch and synthesis.status == "draft":
        rows = await service.in_scope(session, settings, actor, synthesis.scope)
        chosen = set(typed["entries"]) if typed is not None else set(synthesis.entry_ids)
        pool = [
            (e, str(e.id) in chosen)
            for e in await present.entries_read(session, rows, settings=settings, actor=actor)
        ]
        shows(request, [e.label_level for e in rows])
    if is_watch and synthesis.status == "validated":
        candidates = await identity.list_authorities(session=session)
    return {
        "s": rendering.synthesis_read(settings, synthesis, names, seen),
        "entries": reads,
        "figure": map_svg(located),
        "status_names": STATUS_NAMES,
        "categories": CATEGORY_NAMES,
        "severities": SEVERITY_NAMES,
        "names": display_names(),
        "is_watch": is_watch,
        "is_author": actor.user_id in (synthesis.author_id, synthesis.submitted_by),
        "recipient": mine,
        "pool": pool,
        "candidates": candidates,
        "etag": etag(synthesis),
        "draft_title": typed["title"] if typed is not None else synthesis.title,
        "draft_narrative": typed["narrative"] if typed is not None else synthesis.narrative,
        **extra,
    }


@router.get("/syntheses/{synthesis_id}", response_class=HTMLResponse)
async def synthesis_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer,
    synthesis_id: uuid.UUID,
) -> Response:  # fmt: skip
    context = await _page(request, session, settings, actor, synthesis_id)
    return render(request, "synthesis.html", context)


def _typed(form: FormData) -> dict[str, Any]:
    """What the drafting form holds, to show it again when it cannot be saved."""
    return {
        "title": str(form.get("title") or ""),
        "narrative": str(form.get("narrative") or ""),
        "entries": {str(v) for v in form.getlist("entry")},
    }


def _update_of(form: FormData) -> SynthesisUpdate:
    """The drafting form as an update (ValidationError, ValueError when it is not one)."""
    return SynthesisUpdate(
        title=str(form.get("title") or "")[:200] or None,
        narrative=str(form.get("narrative") or "").replace("\r\n", "\n")[:50_000],
        entry_ids=[uuid.UUID(str(v)) for v in form.getlist("entry")][:300],
    )


def _draft_message(request: Request, error: AppError) -> str:
    if isinstance(error, PreconditionFailed):
        return translator(request).gettext(
            "Someone else saved this draft in the meantime. Your text is kept in the form, "
            "the version they saved is shown above it: compare, then save again."
        )
    return in_words(request, error)


@router.post("/syntheses/{synthesis_id}/modifier", response_class=HTMLResponse)
async def edit(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer,
    synthesis_id: uuid.UUID,
) -> Response:  # fmt: skip
    form = await request.form(max_files=0, max_fields=400)
    try:
        data = _update_of(form)
        async with session.begin_nested():
            await service.update(
                session=session, settings=settings, actor=actor, synthesis_id=synthesis_id,
                data=data, if_match=str(form.get("etag") or "") or None,
            )  # fmt: skip
    except (ValidationError, ValueError):
        context = await _page(
            request, session, settings, actor, synthesis_id,
            error=translator(request).gettext("Check the title and the entries."),
            typed=_typed(form),
        )  # fmt: skip
        return render(request, "synthesis.html", context, status_code=422)
    except AppError as error:
        if error.status == 404:
            raise
        context = await _page(
            request, session, settings, actor, synthesis_id,
            error=_draft_message(request, error), typed=_typed(form),
            conflict=isinstance(error, PreconditionFailed),
        )  # fmt: skip
        return render(request, "synthesis.html", context, status_code=error.status)
    return RedirectResponse(f"/syntheses/{synthesis_id}", status_code=303)


@router.post("/syntheses/{synthesis_id}/brouillon")
async def autosave(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer,
    synthesis_id: uuid.UUID,
) -> Response:  # fmt: skip
    """The drafting form saved in the background while it is typed (drafts.js): a new version
    when something changed, answered in JSON with the ETag the form carries from then on."""
    form = await request.form(max_files=0, max_fields=400)
    t = translator(request).gettext
    try:
        data = _update_of(form)
        async with session.begin_nested():
            synthesis = await service.update(
                session=session, settings=settings, actor=actor, synthesis_id=synthesis_id,
                data=data, if_match=str(form.get("etag") or "") or None,
            )  # fmt: skip
    except (ValidationError, ValueError):
        message = t("Draft not saved: check the title and the entries.")
        return JSONResponse({"message": message}, status_code=422)
    except AppError as error:
        if error.status == 404:
            raise
        return JSONResponse({"message": _draft_message(request, error)}, status_code=error.status)
    saved = format_datetime(utcnow(), "HH:mm", tzinfo=PARIS, locale=translator(request).locale)
    return JSONResponse(
        {
            "etag": etag(synthesis),
            "version": synthesis.version,
            "message": t("Draft saved at %(time)s", time=saved),
            "narrative_html": markdown(synthesis.narrative),  # the preview under the analysis
        }
    )


@router.post("/syntheses/{synthesis_id}/etape", response_class=HTMLResponse)
async def step(
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    synthesis_id: uuid.UUID,
) -> Response:
    """A workflow step: submit, validate, return to draft, send, supersede, acknowledge. Sent
    from the drafting form (it carries the analysis), the draft is saved first, in the same
    transaction: nothing typed is left behind."""
    form = await request.form(max_files=0, max_fields=400)
    action = str(form.get("action") or "")
    if_match = str(form.get("etag") or "") or None
    drafting = "narrative" in form
    common: dict[str, Any] = {
        "session": session, "settings": settings, "actor": actor, "synthesis_id": synthesis_id
    }  # fmt: skip
    target = synthesis_id
    try:
        async with session.begin_nested():
            if drafting and action == "submit":
                saved = await service.update(**common, data=_update_of(form), if_match=if_match)
                if_match = etag(saved)
            if action == "submit":
                await service.submit(**common, if_match=if_match)
            elif action == "validate":
                await service.validate(**common, if_match=if_match)
            elif action == "return":
                await service.return_to_draft(**common, if_match=if_match)
            elif action == "send":
                recipients = Recipients(
                    users=[str(v)[:64] for v in form.getlist("users")][:200],
                    organisations=[str(v)[:32] for v in form.getlist("organisations")][:50],
                )
                await service.send(**common, recipients=recipients, if_match=if_match)
                background.add_task(
                    mail.send_pending, request.app.state.system_sessions, settings, synthesis_id
                )
            elif action == "supersede":
                target = (await service.supersede(**common)).id
            elif action == "acknowledge":
                await service.acknowledge(**common)
            else:
                raise AppError("Action inconnue.", "Unknown action.")
    except (ValidationError, ValueError):
        context = await _page(
            request, session, settings, actor, synthesis_id,
            error=translator(request).gettext("Check the title and the entries."),
            typed=_typed(form),
        )  # fmt: skip
        return render(request, "synthesis.html", context, status_code=422)
    except AppError as error:
        if error.status == 404:
            raise
        context = await _page(
            request, session, settings, actor, synthesis_id,
            error=_draft_message(request, error) if drafting else in_words(request, error),
            typed=_typed(form) if drafting else None,
            conflict=drafting and isinstance(error, PreconditionFailed),
        )  # fmt: skip
        return render(request, "synthesis.html", context, status_code=error.status)
    return RedirectResponse(f"/syntheses/{target}", status_code=303)


@router.get("/boite", response_class=HTMLResponse)
async def inbox_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    rows = await service.inbox(session=session, settings=settings, actor=actor)
    shows(request, [s.label_level for s, _ in rows])
    reads = await rendering.reads_for(session, settings, actor, [s for s, _ in rows])
    items = [(read, r) for read, (_, r) in zip(reads, rows, strict=True)]
    delivered = await reports.my_deliveries(session=session, settings=settings, actor=actor)
    shows(request, [d.level for d, _ in delivered if d.level])
    report_items = [(d, s, report_path(s)) for d, s in delivered]
    context = {"items": items, "reports": report_items, "status_names": STATUS_NAMES}
    return render(request, "inbox.html", context)
