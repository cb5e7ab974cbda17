"""Spaces' pages (``/espaces``, docs/adr/0041): the list with templates, one space (its modules
load each on their own and refresh live), one module's fragment, a module's form, the JSON
export and import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid, NotFound
from hypervision.identity.principal import Principal
from hypervision.logbook import entries
from hypervision.logbook.schemas import EntryCreate
from hypervision.products import editing
from hypervision.spaces import modules, service
from hypervision.spaces.api import space_reads
from hypervision.spaces.cache import ModuleCache
from hypervision.spaces.models import Space
from hypervision.spaces.schemas import ModuleData, SpaceCreate, SpaceImport
from hypervision.spaces.templates import TEMPLATES
from hypervision.web.choices import display_names
from hypervision.web.render import (
    html_response,
    in_words,
    render,
    render_text,
    shows,
    translator,
)
from hypervision.web.session import Officer, Reader

router = APIRouter(include_in_schema=False)
ModuleId = Annotated[str, Path(max_length=32)]
IMPORT_MAX = 512 * 1024


async def _list_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, **extra: Any
) -> Response:
    rows, total = await service.list_spaces(
        session=session, settings=settings, actor=actor, limit=200
    )
    shows(request, [s.label_level for s in rows])
    reads = await space_reads(session, actor, rows)
    status = 422 if extra.get("error") else 200
    context = {"spaces": reads, "total": total, "templates": list(TEMPLATES.values()), **extra}
    return render(request, "spaces.html", context, status_code=status)


@router.get("/espaces", response_class=HTMLResponse)
async def space_list(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    return await _list_page(request, session, settings, actor)


@router.post("/espaces", response_class=HTMLResponse)
async def create_space(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    title: Annotated[str, Form(max_length=200)] = "",
    template: Annotated[str, Form(max_length=64)] = "",
    personal: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        data = SpaceCreate(title=title, template=template or None, personal=bool(personal))
        space = await service.create_space(
            session=session, settings=settings, actor=actor, data=data
        )
    except ValidationError:
        return await _list_page(
            request,
            session,
            settings,
            actor,
            error=translator(request).gettext("Give the space a title."),
        )
    except Invalid as refused:
        return await _list_page(request, session, settings, actor, error=in_words(request, refused))
    return RedirectResponse(f"/espaces/{space.id}/modifier", status_code=303)


@router.post("/espaces/importer", response_class=HTMLResponse)
async def import_space(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    fichier: UploadFile,
) -> Response:
    raw = await fichier.read(IMPORT_MAX + 1)
    try:
        if len(raw) > IMPORT_MAX:
            raise ValueError("too large")
        data = SpaceImport.model_validate(json.loads(raw.decode("utf-8")))
    except (ValueError, ValidationError):
        message = translator(request).gettext(
            "This file is not a space exported by Hypervision (JSON, at most 512 KB)."
        )
        return await _list_page(request, session, settings, actor, error=message)
    try:
        space = await service.import_space(
            session=session, settings=settings, actor=actor, data=data
        )
    except Invalid as refused:
        return await _list_page(request, session, settings, actor, error=in_words(request, refused))
    return RedirectResponse(f"/espaces/{space.id}", status_code=303)


MAX_PRODUCT_TOPICS = 8  # the stream takes 16 topics; the page has 5 of its own


def page_topics(live: Iterable[str]) -> list[str]:
    """The topics a space's page asks its stream for beyond app.js's own: each product its
    modules show (``product:<id>``), or every product when they are too many."""
    found = list(dict.fromkeys(t for one in live for t in one.split() if t.startswith("product:")))
    return found if len(found) <= MAX_PRODUCT_TOPICS else ["product"]


@router.get("/espaces/{space_id}", response_class=HTMLResponse)
async def space_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    space_id: uuid.UUID,
) -> Response:
    space = await service.get_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    shows(request, [space.label_level])
    read = (await space_reads(session, actor, [space]))[0]
    ordered = sorted(space.modules, key=lambda m: (m.get("y", 0), m.get("x", 0)))
    live = {m["id"]: " ".join(modules.topics(m)) for m in ordered}
    return render(
        request,
        "space.html",
        {
            "space": read,
            "modules": ordered,
            "live": live,
            "topics": " ".join(page_topics(live.values())),
            "templates": TEMPLATES,
        },
    )


async def _module(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Principal,
    space_id: uuid.UUID,
    module_id: str,
) -> tuple[Space, dict[str, Any]]:
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    module = modules.find_module(space, module_id)
    if module is None:
        raise NotFound("Module introuvable dans cet espace.", "No such module in this space.")
    return space, module


@router.get("/espaces/{space_id}/modules/{module_id}", response_class=HTMLResponse)
async def module_fragment(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Reader,
    space_id: uuid.UUID,
    module_id: ModuleId,
) -> Response:
    """One module's content (an HTMX fragment): loaded by the page when it opens."""
    space, module = await _module(request, session, settings, actor, space_id, module_id)
    shared = request.app.state.module_cache
    found = await modules.answers(
        session=session,
        settings=settings,
        actor=actor,
        space=space,
        wanted=[module],
        french=translator(request).locale == "fr",
        shared=shared,
    )
    return html_response(request, fragment(request, shared, space.id, module, found[0]))


@router.get("/espaces/{space_id}/modules", response_class=HTMLResponse)
async def module_fragments(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Reader,
    space_id: uuid.UUID,
    listed: Annotated[str, Query(alias="modules", max_length=modules.MODULE_LIST_MAX)] = "",
) -> Response:
    """Several modules' contents in one answer (``modules=a,b,c``): the page's live refresh
    of the modules an event concerns (spaces.js, ADR 0051) — one request, one policy
    context, one audit append for them all (``modules.answers``). A module removed from the
    space since the page was opened gets a notice asking to reload the page, and the others
    their content: an open page keeps refreshing its other modules."""
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    wanted, removed = modules.listed(space, listed)
    shared = request.app.state.module_cache
    found = await modules.answers(
        session=session,
        settings=settings,
        actor=actor,
        space=space,
        wanted=wanted,
        french=translator(request).locale == "fr",
        shared=shared,
    )
    items = [
        {"id": module["id"], "html": fragment(request, shared, space.id, module, one)}
        for module, one in zip(wanted, found, strict=True)
    ]
    return render(request, "_space_modules.html", {"items": items, "removed": removed})


def fragment(
    request: Request,
    shared: ModuleCache,
    space_id: uuid.UUID,
    module: dict[str, Any],
    answer: modules.Answer,
) -> str:
    """A module's fragment for this reader: rendered once per shared result and language
    (ADR 0051) — the fragment is a function of the result, the module's definition and the
    language, all in the result's key — but a form's each time (it holds the reader's CSRF
    token)."""
    locale = translator(request).locale
    key = answer.key if module.get("type") != "form" else None
    if key is not None:
        html = shared.rendered(key, answer.result, locale)
        if html is not None:
            return html
    context = _context(request, space_id, module, answer.data)
    html = render_text(request, "_space_module.html", context)
    if key is not None:
        shared.keep_rendered(key, answer.result, locale, html)
    return html


def _context(
    request: Request, space_id: uuid.UUID, module: dict[str, Any], found: ModuleData
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {
        "space_id": space_id,
        "module": module,
        "found": found,
        "marking": settings.marking([found.label]) if found.label else None,
        "rank": settings.level_rank(found.label) if found.label else 0,
        "categories": settings.categories,
        "names": display_names(),
    }


def module_html(
    request: Request, space_id: uuid.UUID, module: dict[str, Any], found: ModuleData
) -> Response:
    """A module's fragment (the editor's preview): its content, its level for the page's
    marking."""
    return render(request, "_space_module.html", _context(request, space_id, module, found))


@router.post("/espaces/{space_id}/modules/{module_id}/ajouter", response_class=HTMLResponse)
async def module_form(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    space_id: uuid.UUID,
    module_id: ModuleId,
) -> Response:
    """A form module's submission: an entry, or a row of a product, with the module's preset
    fields (the officer's typed values cannot override them)."""
    _, module = await _module(request, session, settings, actor, space_id, module_id)
    if module.get("type") != "form":
        raise NotFound("Ce module n'a pas de formulaire.", "This module has no form.")
    form = await request.form()
    config = module.get("config") or {}
    preset: dict[str, str] = dict(config.get("preset") or {})
    typed = {k: str(v)[:2000] for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    try:
        if config.get("target") == "product":
            await editing.save_row(
                session=session,
                settings=settings,
                actor=actor,
                product_id=uuid.UUID(str(config.get("product_id"))),
                values={**typed, **preset},
                new=True,
            )
        else:
            tags = [t.strip() for t in preset.pop("tags", "").split(",") if t.strip()]
            data = EntryCreate.model_validate(
                {
                    "title": typed.get("title", ""),
                    "body": typed.get("body", ""),
                    "category": preset.get("category") or typed.get("category", ""),
                    "severity": preset.get("severity") or typed.get("severity") or "info",
                    "tags": tags,
                }
            )
            await entries.create_entry(session=session, settings=settings, actor=actor, data=data)
    except ValidationError:
        message, ok = translator(request).gettext("Fill in the required fields."), False
    except (AppError, ValueError) as refused:
        message = in_words(request, refused) if isinstance(refused, AppError) else str(refused)
        ok = False
    else:
        message, ok = translator(request).gettext("Saved."), True
    return render(
        request,
        "_space_form_result.html",
        {"message": message, "ok": ok},
        status_code=200 if ok else 422,
    )
