"""A product's HTTP source from its page (docs/adr/0029): its stewards set it, run it now or
remove it; the section shows the source and its last runs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid, NotFound
from hypervision.products import sources
from hypervision.web import product_pages
from hypervision.web.render import in_words, render
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)


@router.post("/donnees/{product_id}/source", response_class=HTMLResponse)
async def source_action(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """``action``: ``save`` (url, format, mode, interval_minutes), ``run`` or ``remove``."""
    form = await request.form(max_files=0, max_fields=8)
    action = str(form.get("action") or "")
    error = ""
    try:
        async with session.begin_nested():
            if action == "save":
                interval = str(form.get("interval_minutes") or "")
                config = sources.SourceConfig(
                    url=str(form.get("url") or "")[:2000],
                    format=str(form.get("format") or "csv"),
                    mode=str(form.get("mode") or "replace"),
                    interval_minutes=int(interval) if interval.isdigit() else 0,
                )
                await sources.set_source(
                    session=session, settings=settings, actor=actor, product_id=product_id,
                    config=config,
                )  # fmt: skip
            elif action == "run":
                await sources.run_now(
                    session=session, settings=settings, actor=actor, product_id=product_id
                )
            elif action == "remove":
                await sources.remove_source(
                    session=session, settings=settings, actor=actor, product_id=product_id
                )
            else:
                raise Invalid("Action inconnue.", "Unknown action.")
    except (Invalid, NotFound) as exc:
        if isinstance(exc, NotFound) and action != "run" and action != "remove":
            raise
        error = in_words(request, exc)
    if not error:
        return RedirectResponse(f"/donnees/{product_id}#source", status_code=303)
    query = product_pages.RowQuery("", "", "", "", "")
    context = await product_pages.page_context(request, session, settings, actor, product_id, query)
    if context["source"] is not None:
        context["source"].error = error
    return render(request, "product.html", context, status_code=422)
