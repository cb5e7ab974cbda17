"""Situations, search, notifications (what the officer follows), help and the guided tour."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.follows import service as prefs
from hypervision.follows.models import FollowKind
from hypervision.logbook import present, situations
from hypervision.search import service as search_service
from hypervision.search import suggest
from hypervision.web.choices import display_names, situation_titles, zone_names
from hypervision.web.render import render, shows
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)


@router.get("/situations", response_class=HTMLResponse)
async def situation_list(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    rows = await situations.list_situations(
        session=session, settings=settings, actor=actor, status=None, limit=200
    )
    shows(request, [s.label_level for s in rows])
    names = await present.directory_for(session, rows, settings=settings, actor=actor)
    items = [present.situation_read(s, names) for s in rows]
    return render(request, "situations.html", {"situations": items, "names": display_names()})


@router.get("/situations/{situation_id}", response_class=HTMLResponse)
async def situation_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    situation_id: uuid.UUID,
) -> Response:
    situation, rows, versions = await situations.timeline(
        session=session, settings=settings, actor=actor, situation_id=situation_id
    )
    shows(request, [situation.label_level, *(e.label_level for e in rows)])
    shows(request, [v.label_level for v in versions])
    names = await present.directory_for(
        session, [situation, *rows, *versions], settings=settings, actor=actor
    )
    assert actor.user_id is not None
    followed = {(f.kind, f.target) for f in await prefs.follows(session, actor.user_id)}
    timeline = sorted(
        [("entry", e.occurred_at, present.entry_read(e, names)) for e in rows]
        + [("version", v.at, present.version_read(v, names)) for v in versions],
        key=lambda item: item[1],
        reverse=True,
    )
    context = {
        "s": present.situation_read(situation, names),
        "timeline": timeline,
        "following": (FollowKind.SITUATION.value, str(situation.id)) in followed,
        "names": display_names(),
    }
    return render(request, "situation.html", context)


@router.get("/recherche", response_class=HTMLResponse)
async def search_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, q: str = ""
) -> Response:
    query = " ".join(q.split())[:200]
    hits: list[search_service.Hit] = []
    suggestion = None
    corrected = False
    if query:
        hits = await search_service.search(
            session=session, settings=settings, actor=actor, query=query, limit=50
        )
        if suggest.worth_suggesting(hits, 50):
            suggestion = await suggest.suggest(
                session=session, settings=settings, actor=actor, query=query
            )
        if suggestion:
            shows(request, suggestion.levels)  # its words come from records of these labels
        if not hits and suggestion:  # nothing for the typo: show what the correction finds
            hits = await search_service.search(
                session=session, settings=settings, actor=actor, query=suggestion.query, limit=50
            )
            corrected = bool(hits)  # else the correction is only proposed
        shows(request, [h.entry.label_level for h in hits])
    reads = await present.entries_read(
        session, [h.entry for h in hits], settings=settings, actor=actor
    )
    results = list(zip(hits, reads, strict=True))
    context = {"q": query, "results": results, "names": display_names()}
    return render(
        request,
        "search.html",
        {**context, "suggestion": suggestion and suggestion.query, "corrected": corrected},
    )


@router.get("/suivis", response_class=HTMLResponse)
async def notifications_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    assert actor.user_id is not None
    rows, seen = await prefs.notifications(session=session, settings=settings, actor=actor)
    shows(request, [e.label_level for e in rows])
    follows = await prefs.follows(session, actor.user_id)
    titles = await situation_titles(request, session, settings, actor)  # audited read
    titles.update(await zone_names(request, session, settings, actor))
    context = {
        "cards": await present.entries_read(session, rows, settings=settings, actor=actor),
        "seen": seen,
        "follows": follows,
        "titles": titles,
        "names": display_names(),
    }
    from hypervision.web.render import chrome_of

    chrome_of(request).badge = 0
    return render(request, "notifications.html", context)


@router.get("/suivis/badge", response_class=HTMLResponse)
async def badge(request: Request, actor: Officer) -> Response:
    """The notification badge alone (refreshed by the page when a followed topic moves)."""
    return render(request, "_badge.html")


@router.get("/aide", response_class=HTMLResponse)
async def help_page(request: Request, actor: Officer) -> Response:
    return render(request, "help.html")


@router.post("/visite")
async def tour(request: Request, session: DbSession, actor: Officer) -> Response:
    """The guided tour was finished or skipped (``restart`` shows it again)."""
    form = await request.form(max_files=0, max_fields=5)
    await prefs.finish_tour(session=session, actor=actor, done=not form.get("restart"))
    if form.get("restart"):
        return Response(status_code=303, headers={"Location": "/main-courante"})
    return Response(status_code=204)
