"""The access review page (docs/adr/0038): an organisation's accounts, their rights and last
activity, its dormant accounts, and the administrator's confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Conflict
from hypervision.identity import review
from hypervision.web.render import in_words, render
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
OrgCode = Annotated[str, Path(max_length=32)]


async def _page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    code: str,
    **extra: object,
) -> Response:
    found = await review.report(session=session, settings=settings, actor=actor, code=code)
    context = {
        "report": found,
        "may_confirm": review.may_confirm(actor),
        "dormant": sum(1 for a in found.accounts if a.dormant),
        **extra,
    }
    status = 409 if extra.get("error") else 200
    return render(request, "access_review.html", context, status_code=status)


@router.get("/administration/organisations/{code}/revue-des-acces", response_class=HTMLResponse)
async def access_review_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, code: OrgCode
) -> Response:
    return await _page(request, session, settings, actor, code)


@router.post("/administration/organisations/{code}/revue-des-acces", response_class=HTMLResponse)
async def confirm_access_review(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    code: OrgCode,
    checksum: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:  # refused before anything is written
        await review.confirm(
            session=session,
            settings=settings,
            actor=actor,
            code=code,
            seen=checksum,
            note=note.strip(),
        )
    except Conflict as changed:  # the page shows the accesses as they are now
        return await _page(
            request, session, settings, actor, code, error=in_words(request, changed)
        )
    return await _page(request, session, settings, actor, code, confirmed=True)
