"""The main courante in the browser: the live feed with its filters and saved views, and the
new-entry form (one screen: text, place, photos, label)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile

from hypervision.config import Settings
from hypervision.core import idempotency
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid, NotFound
from hypervision.core.i18n import CATEGORY_NAMES, PERIODS, SEVERITY_NAMES, STATUS_NAMES
from hypervision.db import utcnow
from hypervision.follows import service as prefs
from hypervision.geo.places import VENUES, find_venue
from hypervision.geo.zones import zone_area
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.logbook import attachments, entries, present
from hypervision.logbook.attachments_api import TrackedBlobsDep
from hypervision.logbook.models import Entry, Severity
from hypervision.logbook.query import EntryQuery, shown_situations
from hypervision.logbook.schemas import EntryCreate, EntryRead
from hypervision.logbook.uploads import inspect_content
from hypervision.policy.rules import Action, Subject, allowed
from hypervision.search import service as search_service
from hypervision.storage.blobs import TrackedBlobs
from hypervision.synthesis import counts
from hypervision.web import cards as card_parts
from hypervision.web.choices import display_names, situation_titles, zone_names
from hypervision.web.entry_pages import entry_context
from hypervision.web.render import env, render, shows, translator
from hypervision.web.session import MAX_FILES, Officer, Reader

router = APIRouter(include_in_schema=False)
card_parts.install(env)  # the cards' excerpt and place name, for every page showing cards
PAGE = 30
NEW_ENTRY = "POST /main-courante/nouvelle"


@dataclass
class FeedQuery:
    """The feed's filters as they appear in the URL, checked; what was refused is reported."""

    categories: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    organisation: str = ""
    period: str = ""
    situation: str = ""
    zone: str = ""
    q: str = ""
    ignored: list[str] = field(default_factory=list)

    def url(self, **extra: str) -> str:
        pairs: list[tuple[str, str]] = [("category", c) for c in self.categories]
        pairs += [("severity", s) for s in self.severities]
        pairs += [("status", s) for s in self.statuses]
        for key in ("organisation", "period", "situation", "zone", "q"):
            if getattr(self, key):
                pairs.append((key, getattr(self, key)))
        pairs += [(k, v) for k, v in extra.items() if v]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return bool(self.url())

    def without(self, key: str, value: str) -> str:
        """The URL's query with one filter value removed (a tag's "remove" link)."""
        pairs = [(k, v) for k, v in parse_qsl(self.url()) if (k, v) != (key, value)]
        return urlencode(pairs)


def filter_tags(
    query: FeedQuery,
    t: Callable[[str], str],
    *,
    organisations: dict[str, str],
    situations: dict[str, str],
    zones: dict[str, str],
) -> list[tuple[str, str]]:
    """The active filters as removable tags: (what the tag says, the URL without it)."""
    tags = [(t(CATEGORY_NAMES.get(c, c)), query.without("category", c)) for c in query.categories]
    tags += [(t(SEVERITY_NAMES[s]), query.without("severity", s)) for s in query.severities]
    tags += [(t(STATUS_NAMES[s]), query.without("status", s)) for s in query.statuses]
    if query.organisation:
        name = organisations.get(query.organisation, query.organisation)
        tags.append((name, query.without("organisation", query.organisation)))
    if query.period:
        tags.append((t(PERIODS[query.period][1]), query.without("period", query.period)))
    if query.situation:
        name = situations.get(query.situation, query.situation[:8])
        tags.append((name, query.without("situation", query.situation)))
    if query.zone:
        tags.append((zones.get(query.zone, query.zone[:8]), query.without("zone", query.zone)))
    if query.q:
        tags.append((f"« {query.q} »", query.without("q", query.q)))
    return tags


def parse_query(request: Request, settings: Settings) -> FeedQuery:
    params = request.query_params
    query = FeedQuery()
    for value in params.getlist("category")[:20]:
        (query.categories if value in settings.categories else query.ignored).append(value)
    for value in params.getlist("severity")[:4]:
        (query.severities if value in SEVERITY_NAMES else query.ignored).append(value)
    for value in params.getlist("status")[:3]:
        (query.statuses if value in STATUS_NAMES else query.ignored).append(value)
    period = params.get("period", "")
    if period:
        if period in PERIODS:
            query.period = period
        else:
            query.ignored.append(period)
    for key in ("situation", "zone"):
        value = params.get(key, "")
        if value:
            try:
                setattr(query, key, str(uuid.UUID(value)))
            except ValueError:
                query.ignored.append(value)
    query.organisation = params.get("organisation", "")[:32]
    query.q = " ".join(params.get("q", "").split())[:200]
    query.ignored = [v[:40] for v in query.ignored]
    return query


async def to_filter(
    session: AsyncSession, settings: Settings, actor: Principal, query: FeedQuery
) -> EntryQuery:
    """The web form's criteria as the one query specification (the API parses its own
    parameters into the same object: ``logbook.api.entry_filters``). What cannot apply — an
    unknown organisation, a zone or situation the officer may not see — is dropped and said."""
    org_id = None
    if query.organisation:
        org_id = await identity.organisation_id(session=session, code=query.organisation)
        if org_id is None:
            query.ignored.append(query.organisation)
            query.organisation = ""
    since = utcnow() - timedelta(hours=PERIODS[query.period][0]) if query.period else None
    area = None
    if query.zone:
        try:
            area = await zone_area(
                session=session, settings=settings, actor=actor, zone_id=uuid.UUID(query.zone)
            )
        except NotFound:
            query.ignored.append(query.zone[:8])
            query.zone = ""
    chosen: tuple[uuid.UUID, ...] = ()
    if query.situation:
        wanted = uuid.UUID(query.situation)
        if wanted in await shown_situations(session, Subject.of(settings, actor), [wanted]):
            chosen = (wanted,)
        else:  # hidden or unknown alike: the filter is dropped and said so
            query.ignored.append(query.situation[:8])
            query.situation = ""
    return EntryQuery(
        categories=tuple(query.categories),
        severities=tuple(query.severities),
        statuses=tuple(query.statuses),
        organisation_id=org_id,
        since=since,
        situations=chosen,
        area=area,
    )


def matches(entry: Entry, f: EntryQuery) -> bool:
    """The query's Python side, for one entry in hand (arriving live, or a search hit).
    ``to_filter`` keeps only situations the officer may see: those are the ones shown."""
    return f.matches(entry, shown_situations=f.situations)


async def _rows(
    session: AsyncSession,
    settings: Settings,
    actor: Officer,
    query: FeedQuery,
    cursor: str | None,
) -> tuple[list[Entry], str | None]:
    filters = await to_filter(session, settings, actor, query)
    if query.q:  # text: the search's best matches, then the other criteria, newest first
        hits = await search_service.search(
            session=session, settings=settings, actor=actor, query=query.q, limit=200
        )
        found = [h.entry for h in hits if matches(h.entry, filters)]
        found.sort(key=lambda e: (e.recorded_at, e.id), reverse=True)
        return found[:PAGE], None
    return await entries.list_entries(
        session=session, settings=settings, actor=actor, filters=filters, cursor=cursor, limit=PAGE
    )


async def _cards(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal, rows: list[Entry]
) -> list[EntryRead]:
    shows(request, [e.label_level for e in rows])
    return await present.entries_read(session, rows, settings=settings, actor=actor)


@router.get("/main-courante", response_class=HTMLResponse)
async def feed(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    entree: str | None = None,
    cree: str = "",
) -> Response:
    query = parse_query(request, settings)
    rows, next_cursor = await _rows(session, settings, actor, query, None)
    cards = await _cards(request, session, settings, actor, rows)
    detail = None
    if entree:
        try:
            detail = await entry_context(request, session, settings, actor, uuid.UUID(entree))
        except (ValueError, AppError):
            detail = None
    assert actor.user_id is not None
    situations = await situation_titles(request, session, settings, actor)
    zones = await zone_names(request, session, settings, actor)
    organisations = await identity.organisation_choices(session=session)
    t = translator(request).gettext
    context = {
        "query": query,
        "cards": cards,
        "next_cursor": next_cursor,
        "situations": situations,
        "zone_choices": zones,
        "organisations": organisations,
        "tags": filter_tags(
            query, t, organisations=dict(organisations), situations=situations, zones=zones
        ),
        "can_write": allowed(actor, Action.WRITE),
        "awaiting": await counts.awaiting_validation(
            session=session, settings=settings, actor=actor
        ),
        "views": await prefs.views(session, actor.user_id),
        "created": bool(cree) and detail is not None,
        "periods": PERIODS,
        **(detail or {}),
        "detail": detail is not None,
        "names": display_names(),
    }
    return render(request, "feed.html", context)


@router.get("/main-courante/suite", response_class=HTMLResponse)
async def more(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, cursor: str = ""
) -> Response:
    """The next page of the feed (the "more" button)."""
    query = parse_query(request, settings)
    rows, next_cursor = await _rows(session, settings, actor, query, cursor[:200] or None)
    context = {
        "cards": await _cards(request, session, settings, actor, rows),
        "next_cursor": next_cursor,
    }
    return render(request, "_feed_page.html", {**context, "query": query, "names": display_names()})


@router.get("/main-courante/carte/{entry_id}", response_class=HTMLResponse)
async def card(
    request: Request, session: DbSession, settings: SettingsDep, actor: Reader, entry_id: uuid.UUID
) -> Response:
    """One entry's card for the live feed, if it passes the policy (404 otherwise, like a
    missing one) and the page's filters (204 otherwise). A fragment of the page already shown:
    none of the page's set-up (names, preferences, follows, badge) is done again."""
    query = parse_query(request, settings)
    entry = await entries.get_entry(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    if query.q or not matches(entry, await to_filter(session, settings, actor, query)):
        return Response(status_code=204)
    cards = await _cards(request, session, settings, actor, [entry])
    return render(
        request, "_entry_card.html", {"e": cards[0], "names": display_names(), "fresh": True}
    )


# --- saved views -----------------------------------------------------------------------------


@router.post("/vues")
async def save_view(request: Request, session: DbSession, actor: Officer) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    name, query = str(form.get("name", ""))[:200], str(form.get("query", ""))[:1000]
    view = await prefs.save_view(session=session, actor=actor, name=name, query=query)
    return RedirectResponse(f"/main-courante?{view.query}", status_code=303)


@router.post("/vues/{view_id}/supprimer")
async def delete_view(session: DbSession, actor: Officer, view_id: uuid.UUID) -> Response:
    await prefs.delete_view(session=session, actor=actor, view_id=view_id)
    return RedirectResponse("/main-courante", status_code=303)


# --- new entry -------------------------------------------------------------------------------


async def _form_context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Officer,
    values: dict[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    groups = await identity.group_names(session=session, codes=sorted(actor.groups))
    rank = settings.level_rank(actor.clearance) if actor.clearance in settings.label_levels else 0
    ceiling = settings.level_rank(settings.label_ceiling)
    own_code = await _own_code(session, actor)
    default_all = (await _default_audience(session, actor))[0] == "all"
    return {
        "default_all": default_all,
        "values": values,
        "errors": errors,
        "organisations": await identity.organisation_choices(session=session),
        "own_code": own_code,
        "categories": [(c, CATEGORY_NAMES.get(c, c)) for c in settings.categories],
        "severities": SEVERITY_NAMES,
        "venues": VENUES,
        "situations": await situation_titles(request, session, settings, actor),
        "levels": settings.label_levels[: min(rank, ceiling) + 1],
        "groups": groups,
        "max_mb": settings.attachment_max_bytes // (1024 * 1024),
        "max_files": MAX_FILES,
    }


async def _default_category(session: AsyncSession, settings: Settings, actor: Officer) -> str:
    """The officer's last category, else their organisation's usual one, else the first of
    the taxonomy: the form never opens on an empty "choose" placeholder."""
    assert actor.user_id is not None
    last = await entries.last_category(session=session, author_id=actor.user_id)
    if last in settings.categories:
        return str(last)
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    usual = own.default_category if own else None
    return usual if usual in settings.categories else settings.categories[0]


async def _default_audience(session: AsyncSession, actor: Principal) -> tuple[str, list[str]]:
    """The sharing the organisation sets for its officers' new entries: ("all", []) for every
    organisation (the default), else ("own", the other organisations released to)."""
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    codes = list(own.default_audience or []) if own else []
    if not codes:
        return "all", []
    return "own", [c for c in codes if own is None or c != own.code]


async def _own_code(session: AsyncSession, actor: Principal) -> str | None:
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    return own.code if own else None


@router.get("/main-courante/nouvelle", response_class=HTMLResponse)
async def new_entry_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    audience, also = await _default_audience(session, actor)
    values = {
        "category": await _default_category(session, settings, actor),
        "severity": Severity.INFO.value,
        "level": settings.label_levels[0],
        "audience": audience,
        "also": also,
        "idempotency_key": uuid.uuid4().hex,
        "situation": request.query_params.get("situation", "")[:36],
    }
    if not allowed(actor, Action.WRITE):
        return render(request, "forbidden.html", status_code=403)
    context = await _form_context(request, session, settings, actor, values, {})
    return render(request, "new_entry.html", context)


def _location(values: dict[str, str], errors: dict[str, str], t: Any) -> dict[str, Any] | None:
    lat, lon, place = (
        values["lat"].replace(",", "."),
        values["lon"].replace(",", "."),
        values["place"],
    )
    if lat or lon:
        try:
            lat_f, lon_f = float(lat), float(lon)
        except ValueError:
            errors["location"] = t("Coordinates are decimal numbers, e.g. 48.8566 and 2.3522.")
            return None
        if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
            errors["location"] = t(
                "Latitude is between -90 and 90, longitude between -180 and 180."
            )
            return None
        return {"type": "Point", "coordinates": [lon_f, lat_f]}
    if place:
        venue = find_venue(place)
        if venue is None:
            errors["location"] = t("Unknown place: pick one from the list or click on the map.")
            return None
        return {"type": "Point", "coordinates": [venue.lon, venue.lat]}
    return None


async def _files(
    form: FormData, settings: Settings, errors: dict[str, str], t: Any, locale: str
) -> list[tuple[str, bytes]]:
    """The attached files, read and checked before anything is written."""
    found: list[tuple[str, bytes]] = []
    for upload in form.getlist("files"):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = await upload.read(settings.attachment_max_bytes + 1)
        if not data:
            continue
        if len(data) > settings.attachment_max_bytes:
            errors["files"] = t(
                "%(name)s is too large (at most %(mb)s MB).",
                name=upload.filename[:80],
                mb=settings.attachment_max_bytes // (1024 * 1024),
            )
            continue
        try:
            await asyncio.to_thread(inspect_content, data, upload.filename)
        except AppError as error:
            message = error.en if locale == "en" else error.fr
            errors["files"] = t("%(name)s: %(problem)s", name=upload.filename[:80], problem=message)
            continue
        found.append((upload.filename, data))
    return found


def _field_errors(exc: ValidationError | AppError, locale: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "title"
            errors.setdefault(name, err["msg"])
        return errors
    message = exc.en if locale == "en" else exc.fr
    for item in exc.extra.get("fields", []):
        name = str(item.get("field", "")).split(".")[0] or "title"
        errors.setdefault({"label": "level"}.get(name, name), message)
    return errors or {"form": message}


@router.post("/main-courante/nouvelle", response_class=HTMLResponse)
async def create_entry(
    request: Request,
    blobs: TrackedBlobsDep,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
) -> Response:
    form = await request.form(max_files=MAX_FILES, max_fields=100)
    try:
        return await _create_entry(request, form, blobs, session, settings, actor)
    finally:
        await form.close()  # the uploaded files' temporary files


async def _create_entry(
    request: Request,
    form: FormData,
    blobs: TrackedBlobs,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
) -> Response:
    t = translator(request).gettext
    names = ("title", "category", "severity", "body", "place", "lat", "lon", "situation",
             "level", "idempotency_key")  # fmt: skip
    values: dict[str, Any] = {n: str(form.get(n) or "").strip()[:20_000] for n in names}
    values["need_to_know"] = [str(v)[:32] for v in form.getlist("need_to_know")][:10]
    values["also"] = [str(v)[:32] for v in form.getlist("also")][:49]
    values["audience"] = "all" if form.get("audience") == "all" else "own"
    own_code = await _own_code(session, actor)
    audience = [] if values["audience"] == "all" else sorted({str(own_code), *values["also"]})
    errors: dict[str, str] = {}
    location = _location(values, errors, t)
    files = await _files(form, settings, errors, t, translator(request).locale)
    key = values["idempotency_key"][:100]
    assert actor.user_id is not None
    once = None
    if key and not errors:
        once = await idempotency.attempt(
            session=session, user_id=actor.user_id, key=key, endpoint=NEW_ENTRY,
            body={"key": key},  # the form's files are not part of the digest: the key is
        )  # fmt: skip
        if once.stored is not None:  # the same form sent twice (double click, lost answer)
            return RedirectResponse(f"/main-courante?entree={once.stored.response['id']}", 303)
    entry = None
    if not errors:
        try:
            data = EntryCreate.model_validate(
                {
                    "title": values["title"],
                    "body": values["body"],
                    "category": values["category"],
                    "severity": values["severity"] or Severity.INFO.value,
                    "location": location,
                    "situation_id": values["situation"] or None,
                    "label": {
                        "level": values["level"] or settings.label_levels[0],
                        "need_to_know": values["need_to_know"],
                        "audience": audience,
                    },
                }
            )
            async with session.begin_nested():  # nothing stays if a later step fails
                entry = await entries.create_entry(
                    session=session, settings=settings, actor=actor, data=data
                )
                for filename, content in files:
                    await attachments.add_attachment(
                        session=session, settings=settings, actor=actor, blobs=blobs,
                        entry_id=entry.id, filename=filename, data=content,
                    )  # fmt: skip
        except (ValidationError, Invalid) as exc:
            errors.update(_field_errors(exc, translator(request).locale))
            entry = None
            await blobs.discard()
    if entry is None:
        if files:
            errors.setdefault("files", t("Attach your files again (they are not kept)."))
        context = await _form_context(request, session, settings, actor, values, errors)
        return render(request, "new_entry.html", context, status_code=422)
    if once is not None:
        once.remember(201, {"id": str(entry.id)})
    return RedirectResponse(f"/main-courante?entree={entry.id}&cree=1", status_code=303)
