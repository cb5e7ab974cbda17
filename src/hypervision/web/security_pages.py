"""The security console (issue 21, docs/adr/0039): ``/securite`` (the trail, live, filtered),
``/securite/qui-a-vu`` (who saw a record), ``/securite/personnes/{id}`` (a person's activity,
sessions and tokens, revocation), ``/securite/donnees-publiques`` (what is public, since when).
Security officers only: anyone else gets the 403 page. The alerts (``/securite/alertes``) are
another page's."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import AuditRecord
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.i18n import N_
from hypervision.identity.models import Organisation, User
from hypervision.live.audit_feed import AuditFilter
from hypervision.opendata import service as opendata
from hypervision.opendata.models import PublicationState, Release
from hypervision.policy.rules import Action, allowed
from hypervision.security import console, credentials
from hypervision.web.render import render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
SURFACES = ("api", "web", "stream", "auth", "cli", "export")
DECISIONS = ("allowed", "denied", "not_found")
# Words the templates translate from a value (the decisions, the timeline's kinds, the types).
WORDS = (
    N_("allowed"),
    N_("denied"),
    N_("not_found"),
    N_("sign_in"),
    N_("read"),
    N_("write"),
    N_("export"),
    N_("refusal"),
    N_("session"),
    N_("token"),
    N_("entry"),
    N_("comment"),
    N_("situation"),
    N_("synthesis"),
    N_("zone"),
    N_("layer"),
    N_("product"),
    N_("push"),  # console.PUSHED_READ: a read done once for a space's push
)


def _refused(request: Request) -> Response:
    t = translator(request).gettext
    message = t("This page is for security officers.")
    return render(request, "error.html", {"status": 403, "message": message}, status_code=403)


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value.strip()[:40])
    except ValueError:
        raise Invalid(
            f"Identifiant invalide ({field}).",
            f"Invalid id ({field}).",
            extra={"fields": [{"field": field, "message": "uuid"}]},
        ) from None


def _before(request: Request) -> int | None:
    value = request.query_params.get("avant", "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 18 or int(value) < 1:
        raise Invalid("Page invalide.", "Invalid page.")
    return int(value)


async def _names(session: AsyncSession, rows: list[AuditRecord]) -> dict[str, str]:
    """Organisation codes by id, for the rows shown (one query)."""
    ids = {r.actor_organisation_id for r in rows if r.actor_organisation_id}
    if not ids:
        return {}
    found = await session.execute(
        select(Organisation.id, Organisation.code).where(Organisation.id.in_(ids))
    )
    return {str(i): code for i, code in found.all()}


@router.get("/securite", response_class=HTMLResponse)
async def console_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """The trail live: the last records with the filters, then the audit topic's stream."""
    if not allowed(actor, Action.AUDIT):
        return _refused(request)
    q = request.query_params
    values = {
        k: q.get(k, "")[:100].strip()
        for k in ("personne", "organisation", "surface", "decision", "label", "ressource")
    }
    unknown: list[str] = []
    person = None
    if values["personne"]:
        person = await session.scalar(select(User.id).where(User.username == values["personne"]))
        if person is None:
            unknown.append("personne")
    organisation = None
    if values["organisation"]:
        organisation = await session.scalar(
            select(Organisation.id).where(Organisation.code == values["organisation"])
        )
        if organisation is None:
            unknown.append("organisation")
    record = _uuid(values["ressource"], "ressource")
    wanted = AuditFilter(
        person=person,
        organisation=organisation,
        surface=values["surface"] if values["surface"] in SURFACES else None,
        decision=values["decision"] if values["decision"] in DECISIONS else None,
        label=values["label"] if values["label"] in settings.label_levels else None,
        record=str(record) if record else None,
    )
    page = (
        console.Page([], None)
        if unknown
        else await console.recent(session=session, actor=actor, wanted=wanted, limit=50)
    )
    head = page.head or int(await session.scalar(select(func.max(AuditRecord.seq))) or 0)
    stream: dict[str, Any] = {"since": head}
    for key, value in (
        ("person", wanted.person),
        ("organisation", wanted.organisation),
        ("surface", wanted.surface),
        ("decision", wanted.decision),
        ("label", wanted.label),
        ("record", wanted.record),
    ):
        if value:
            stream[key] = str(value)
    context = {
        "records": page.items,
        "orgs": await _names(session, page.items),
        "values": values,
        "unknown": unknown,
        "surfaces": SURFACES,
        "decisions": DECISIONS,
        "levels": settings.label_levels,
        "stream_url": "/api/v1/stream/audit?" + urlencode(stream),
        "readable": console.READABLE_TYPES,
    }
    return render(request, "security.html", context)


@router.get("/securite/qui-a-vu", response_class=HTMLResponse)
async def readers_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """Who saw a record: every read, export, delivery and write naming it, newest first."""
    if not allowed(actor, Action.AUDIT):
        return _refused(request)
    kind = request.query_params.get("type", "")
    resource_id = _uuid(request.query_params.get("id"), "id")
    if kind not in (*console.READABLE_TYPES, console.PUSHED_READ) or resource_id is None:
        raise Invalid(
            "Indiquez le type (entrée, commentaire…) et l'identifiant de l'enregistrement.",
            "Give the record's type (entry, comment…) and id.",
        )
    page = await console.readers(
        session=session, actor=actor, resource_id=resource_id, before=_before(request)
    )
    title = await console.title_of(
        session=session, settings=settings, actor=actor, resource_type=kind, resource_id=resource_id
    )
    if title is not None:
        shows(request, [label for r in page.items for label in r.labels])
    older = {"type": kind, "id": str(resource_id), "avant": page.next_before}
    more = f"/securite/qui-a-vu?{urlencode(older)}" if page.next_before else None
    context = {
        "kind": kind,
        "resource_id": resource_id,
        "title": title or console.HIDDEN_TITLE,
        "records": page.items,
        "orgs": await _names(session, page.items),
        "more": more,
        "readable": (),
    }
    return render(request, "security_readers.html", context)


@router.get("/securite/donnees-publiques", response_class=HTMLResponse)
async def public_data_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """What is public, and since when (issue 19): every published dataset, who proposed and
    who approved it (four eyes), its latest release, and whether it is held."""
    if not allowed(actor, Action.AUDIT):
        return _refused(request)
    found = await opendata.list_publications(
        session=session, settings=settings, actor=actor, state=PublicationState.PUBLISHED.value
    )
    ids = [p.id for p in found]
    latest: dict[uuid.UUID, Release] = {}
    if ids:
        newest = (
            select(Release.publication_id, func.max(Release.number).label("number"))
            .where(Release.publication_id.in_(ids))
            .group_by(Release.publication_id)
            .subquery()
        )
        releases = await session.scalars(
            select(Release).join(
                newest,
                (Release.publication_id == newest.c.publication_id)
                & (Release.number == newest.c.number),
            )
        )
        latest = {r.publication_id: r for r in releases}
    people = {p for pub in found for p in (pub.proposed_by, pub.approved_by) if p}
    named = select(User.id, User.full_name).where(User.id.in_(people))
    names: dict[uuid.UUID, str] = {i: n for i, n in await session.execute(named)} if people else {}
    org_ids = {pub.organisation_id for pub in found}
    coded = select(Organisation.id, Organisation.code).where(Organisation.id.in_(org_ids))
    orgs: dict[uuid.UUID, str] = {i: c for i, c in await session.execute(coded)} if org_ids else {}
    context = {
        "publications": sorted(found, key=lambda p: p.approved_at or p.proposed_at, reverse=True),
        "latest": latest,
        "names": names,
        "orgs": orgs,
    }
    return render(request, "security_public_data.html", context)


@router.get("/securite/personnes/{person_id}", response_class=HTMLResponse)
async def person_page(
    request: Request, session: DbSession, actor: Officer, person_id: uuid.UUID
) -> Response:
    """A person's activity (sign-ins, reads, writes, exports, refusals, sessions, tokens,
    with addresses), their sessions and tokens, and the buttons that revoke them."""
    if not allowed(actor, Action.AUDIT):
        return _refused(request)
    found = await credentials.list_credentials(session=session, actor=actor, person_id=person_id)
    page = await console.activity(
        session=session, actor=actor, person_id=person_id, before=_before(request)
    )
    org = await session.get(Organisation, found.person.organisation_id)
    context = {
        "person": found.person,
        "organisation": org.code if org else "",
        "sessions": found.sessions,
        "tokens": found.tokens,
        "records": [(r, console.kind_of(r)) for r in page.items],
        "orgs": await _names(session, page.items),
        "more": f"/securite/personnes/{person_id}?avant={page.next_before}"
        if page.next_before
        else None,
        "done": done if (done := request.query_params.get("revoque", "")[:6]).isdigit() else "",
        "readable": console.READABLE_TYPES,
    }
    return render(request, "security_person.html", context)


@router.post("/securite/personnes/{person_id}/revoquer")
async def revoke(
    request: Request, session: DbSession, actor: Officer, person_id: uuid.UUID
) -> Response:
    """Revoke one session, one token, or every one of the person's (the button pressed)."""
    if not allowed(actor, Action.AUDIT):
        return _refused(request)
    form = await request.form(max_files=0, max_fields=5)
    session_id = _uuid(_text(form.get("session_id")), "session_id")
    token_id = _uuid(_text(form.get("token_id")), "token_id")
    if session_id and token_id:
        raise Invalid("Une session ou un jeton, pas les deux.", "A session or a token, not both.")
    ended = await credentials.revoke(
        session=session, actor=actor, person_id=person_id, session_id=session_id, token_id=token_id
    )
    target = f"/securite/personnes/{person_id}?revoque={ended}"
    return Response(status_code=303, headers={"Location": target})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
