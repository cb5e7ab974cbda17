"""The stewards' open data section (ADR 0035): the publications of the products they see,
a form to propose one, and the decisions (approve, refresh, acknowledge a schema change,
withdraw) — the same service functions as ``/api/v1/publications``."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid, NotFound
from hypervision.identity.principal import Principal
from hypervision.opendata import service
from hypervision.opendata.schemas import PublicationCreate
from hypervision.products import service as products
from hypervision.web.render import in_words, render
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
ACTIONS = ("approve", "refresh", "acknowledge", "withdraw")


async def _page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    error: str = "",
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    found = await service.list_publications(
        session=session, settings=settings, actor=actor, state=None
    )
    mine = [p for p in await products.catalogue(session=session, settings=settings, actor=actor)
            if products.is_steward(actor, p)]  # fmt: skip
    context = {
        "publications": found,
        "products": mine,
        "actor": actor,
        "error": error,
        "form": form or {},
        "done": request.query_params.get("fait", ""),
    }
    return render(request, "publications.html", context, status_code=status_code)


@router.get("/donnees/publications", response_class=HTMLResponse)
async def publications_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    return await _page(request, session, settings, actor)


@router.post("/donnees/publications", response_class=HTMLResponse)
async def propose(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    posted = await request.form(max_files=0, max_fields=20)
    form = {k: str(v)[:10_000] for k, v in posted.items() if isinstance(v, str)}
    try:
        data = PublicationCreate(
            product_id=form.get("product_id", ""),
            slug=form.get("slug", ""),
            title=form.get("title", ""),
            description=form.get("description", ""),
            keywords=[k.strip() for k in form.get("keywords", "").split(",") if k.strip()],
            columns=[c.strip() for c in form.get("columns", "").split(",") if c.strip()],
            licence=form.get("licence", "etalab-2.0"),
            schedule=form.get("schedule", "manual"),
        )
    except ValidationError as exc:
        names = ", ".join(str(e["loc"][0]) for e in exc.errors())
        error = Invalid(f"Champs à revoir : {names}.", f"Fields to correct: {names}.")
        return await _page(request, session, settings, actor, in_words(request, error), form, 422)
    try:
        async with session.begin_nested():
            await service.propose(session=session, settings=settings, actor=actor, data=data)
    except AppError as exc:
        status = exc.status if exc.status != 404 else 422
        return await _page(request, session, settings, actor, in_words(request, exc), form, status)
    return RedirectResponse("/donnees/publications?fait=propose", status_code=303)


@router.post("/donnees/publications/{publication_id}/{action}", response_class=HTMLResponse)
async def decide(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    publication_id: uuid.UUID,
    action: str,
) -> Response:
    if action not in ACTIONS:
        raise NotFound()
    posted = await request.form(max_files=0, max_fields=5)
    reason = str(posted.get("reason", ""))[:2000]
    ids: dict[str, Any] = {"session": session, "settings": settings, "actor": actor}
    try:
        async with session.begin_nested():
            if action == "approve":
                await service.approve(**ids, publication_id=publication_id)
            elif action == "refresh":
                await service.refresh(**ids, publication_id=publication_id)
            elif action == "acknowledge":
                await service.acknowledge(**ids, publication_id=publication_id)
            else:
                if len(reason.strip()) < 3:
                    raise Invalid("Donnez la raison du retrait.", "Give the withdrawal's reason.")
                await service.withdraw(**ids, publication_id=publication_id, reason=reason)
    except AppError as exc:
        if exc.status == 404:
            raise
        return await _page(
            request, session, settings, actor, in_words(request, exc), status_code=exc.status
        )
    return RedirectResponse(f"/donnees/publications?fait={action}", status_code=303)
