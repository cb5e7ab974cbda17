"""Situations, search, notifications (what the officer follows), help and the guided tour."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.follows import service as prefs
from hypervision.follows.models import FollowKind
from hypervision.geo import zones
from hypervision.geo.models import Zone
from hypervision.identity import readers
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.logbook import entries, present, situations
from hypervision.logbook.models import Entry
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action
from hypervision.records import access
from hypervision.search import service as search_service
from hypervision.search import suggest
from hypervision.synthesis import counts
from hypervision.synthesis import service as synthesis_service
from hypervision.synthesis.models import Synthesis
from hypervision.web.choices import display_names, situation_titles, zone_names
from hypervision.web.render import render, shows
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)


def home_of(roles: Iterable[str]) -> str:
    """Where someone lands when they sign in (the hub, ``/accueil``, is one click away:
    docs/adr/0042): authorities who write nothing on their inbox (the syntheses sent
    to them), everyone else on the main courante (watch officers find what awaits their
    validation at its top)."""
    held = set(roles)
    writers = {Role.OFFICER.value, Role.WATCH_OFFICER.value, Role.DATA_STEWARD.value}
    if Role.AUTHORITY.value in held and not held & writers:
        return "/boite"
    return "/main-courante"


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
    rows, seen, moments = await prefs.notifications(session=session, settings=settings, actor=actor)
    shows(request, [e.label_level for e in rows])
    follows = await prefs.follows(session, actor.user_id)
    titles = await situation_titles(request, session, settings, actor)  # audited read
    titles.update(await zone_names(request, session, settings, actor))
    followed = await prefs.followed_entries(
        session=session, settings=settings, actor=actor, rows=follows
    )
    shows(request, [e.label_level for e in followed])
    titles.update({str(e.id): e.title for e in followed})
    context = {
        "cards": await present.entries_read(session, rows, settings=settings, actor=actor),
        "seen": seen,
        "moments": moments,
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


@router.get("/boite/badge", response_class=HTMLResponse)
async def inbox_badge(request: Request, actor: Officer) -> Response:
    """The inbox link's text and unread count alone (polled by an authority's pages: a
    synthesis sent is not on the live stream, its readers being its recipients)."""
    return render(request, "_inbox_badge.html")


# --- who can see this --------------------------------------------------------------------


async def _labelled(
    session: AsyncSession, settings: Settings, actor: Principal, kind: str, record_id: uuid.UUID
) -> Entry | Synthesis | Zone:
    """The record, read through its service (policy; audited; 404 alike when hidden)."""
    if kind == "entree":
        return await entries.get_entry(
            session=session, settings=settings, actor=actor, entry_id=record_id
        )
    if kind == "synthese":
        row: Synthesis | Zone = await synthesis_service.find(
            session=session, settings=settings, actor=actor, synthesis_id=record_id
        )
    else:
        row = await zones.find_zone(
            session=session, settings=settings, actor=actor, zone_id=record_id
        )
    await access.delivered(
        session, actor, action=f"{KINDS[kind]}.read", kind=KINDS[kind], rows=[row]
    )
    return row


KINDS = {"entree": "entry", "synthese": "synthesis", "zone": "zone"}


async def _audience_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    kind: str,
    record_id: uuid.UUID,
) -> Response:
    """Who can read a record: its label in words and how many people the policy lets read
    it (a fragment loaded by the record's page; a page of its own without scripts)."""
    row = await _labelled(session, settings, actor, kind, record_id)
    shows(request, [row.label_level])
    label = row.label
    orgs = {str(o.id): o.name for o in await identity.list_organisations(session=session)}
    groups = await identity.group_names(session=session, codes=sorted(label.need_to_know))
    context = {
        "level": label.level,
        "groups": [name for _, name in groups],
        "audience": sorted(orgs.get(o, "?") for o in label.audience | {label.owner})
        if label.audience
        else [],
        "readers": await readers.count_readers(
            session=session,
            settings=settings,
            label=label,
            # a synthesis: those it was sent to, and the watch officers (``visible_syntheses``)
            only=await counts.recipients(session=session, synthesis_id=row.id)
            if kind == "synthese"
            else None,
            unless=Action.TRIAGE,
        ),
    }
    partial = bool(request.headers.get("hx-request"))
    return render(request, "_audience.html" if partial else "audience.html", context)


@router.get("/entrees/{entry_id}/diffusion", response_class=HTMLResponse)
async def entry_audience(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, entry_id: uuid.UUID
) -> Response:
    return await _audience_page(request, session, settings, actor, "entree", entry_id)


@router.get("/syntheses/{synthesis_id}/diffusion", response_class=HTMLResponse)
async def synthesis_audience(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    synthesis_id: uuid.UUID,
) -> Response:
    return await _audience_page(request, session, settings, actor, "synthese", synthesis_id)


@router.get("/carte/zones/{zone_id}/diffusion", response_class=HTMLResponse)
async def zone_audience(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, zone_id: uuid.UUID
) -> Response:
    return await _audience_page(request, session, settings, actor, "zone", zone_id)


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
