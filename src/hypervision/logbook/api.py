"""Main courante API: entries, their history, triage and label changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator

from hypervision.config import Settings
from hypervision.core import idempotency
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Invalid
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, PRECONDITION, SIGNED_IN
from hypervision.core.params import parse_bbox
from hypervision.core.schemas import rfc3339_only
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.principal import Principal
from hypervision.identity.service import get_organisation_by_code
from hypervision.logbook import aggregates, entries, present, triage
from hypervision.logbook.models import Entry, LabelChangeRequest, Severity, Status
from hypervision.logbook.query import EntryQuery, ZoneArea
from hypervision.logbook.schemas import (
    DuplicateMark,
    EntryAggregateRead,
    EntryCreate,
    EntryPage,
    EntryPatch,
    EntryRead,
    EntryUpdate,
    LabelChange,
    LabelChangeResult,
    LabelRequestRead,
    SeverityChange,
    SituationLink,
    VersionRead,
)
from hypervision.records.etags import etag

router = APIRouter(
    prefix="/api/v1", tags=["main courante"], dependencies=CREDENTIALS, responses=SIGNED_IN
)

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
LABEL_FIELDS = frozenset(
    {
        "label",
        "label_level",
        "need_to_know",
        "audience",
        "organisation",
        "organisation_id",
        "author",
        "author_id",
    }
)


async def _one(
    session: DbSession, settings: Settings, actor: Principal, entry: Entry, response: Response
) -> EntryRead:
    response.headers["ETag"] = etag(entry)
    return (await present.entries_read(session, [entry], settings=settings, actor=actor))[0]


@router.post("/entries", response_model=EntryRead, status_code=201, responses=CONFLICT | NOT_FOUND)
async def create_entry(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: EntryCreate,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Create an entry. With an ``Idempotency-Key`` header, a retry returns the first answer."""
    once = None
    if key is not None and actor.user_id is not None:
        once = await idempotency.attempt(
            session=session,
            user_id=actor.user_id,
            key=idempotency.check_key(key),
            endpoint="POST /api/v1/entries",
            body=data.model_dump(mode="json"),
        )
        if once.stored is not None:
            return JSONResponse(
                once.stored.response,
                status_code=once.stored.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
    entry = await entries.create_entry(session=session, settings=settings, actor=actor, data=data)
    body = (await present.entries_read(session, [entry], settings=settings, actor=actor))[
        0
    ].model_dump(mode="json")
    if once is not None:
        once.remember(201, body)
    return JSONResponse(
        body,
        status_code=201,
        headers={"ETag": etag(entry), "Location": f"/api/v1/entries/{entry.id}"},
    )


def get_zone_area(request: Request) -> ZoneArea:
    """How the ``zone`` parameter becomes an area (``geo.zones.zone_area``, set by the app)."""
    zone_area: ZoneArea = request.app.state.zone_area
    return zone_area


async def entry_filters(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    zone_area: Annotated[ZoneArea, Depends(get_zone_area)],
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    severity: Annotated[list[Severity] | None, Query(max_length=4)] = None,
    status: Annotated[list[Status] | None, Query(max_length=3)] = None,
    organisation: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, BeforeValidator(rfc3339_only)] = None,
    until: Annotated[datetime | None, BeforeValidator(rfc3339_only)] = None,
    tag: Annotated[list[str] | None, Query(max_length=10)] = None,
    situation_id: uuid.UUID | None = None,
    zone: Annotated[uuid.UUID | None, Query(description="entries inside this zone")] = None,
    bbox: Annotated[str | None, Query(max_length=100, description="west,south,east,north")] = None,
) -> EntryQuery:
    """The API's query parameters as the one query specification (the feed, the map and the
    export); the web form has its own parser to the same object (``web.feed_pages``)."""
    org_id = None
    if organisation:
        org_id = (await get_organisation_by_code(session=session, code=organisation)).id
    area = None
    if zone is not None:
        area = await zone_area(session=session, settings=settings, actor=actor, zone_id=zone)
    return EntryQuery(
        categories=tuple(category or ()),
        severities=tuple(s.value for s in severity or ()),
        statuses=tuple(s.value for s in status or ()),
        organisation_id=org_id,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        tags=tuple(t.strip().lower() for t in tag or ()),
        situations=(situation_id,) if situation_id else (),
        bbox=parse_bbox(bbox),
        area=area,
    )


EntryFilters = Annotated[EntryQuery, Depends(entry_filters)]


@router.get("/entries", response_model=EntryPage, responses=NOT_FOUND)
async def list_entries(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    filters: EntryFilters,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EntryPage:
    """The feed: newest first, filtered by the policy and by the given criteria."""
    rows, next_cursor = await entries.list_entries(
        session=session, settings=settings, actor=actor, filters=filters, cursor=cursor, limit=limit
    )
    return EntryPage(
        items=await present.entries_read(session, rows, settings=settings, actor=actor),
        next_cursor=next_cursor,
    )


@router.get("/entries/aggregate", response_model=EntryAggregateRead, responses=NOT_FOUND)
async def aggregate_entries(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    filters: EntryFilters,
    group_by: Annotated[
        Literal["category", "severity", "status", "organisation_id"] | None,
        Query(description="count per value of this field"),
    ] = None,
    bucket: Annotated[
        Literal["hour", "day", "week"] | None,
        Query(description="count per hour, day or week of occurred_at (Paris time)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=aggregates.MAX_GROUPS)] = 1000,
) -> EntryAggregateRead:
    """Counts of the entries you may see matching the same filters as the feed, grouped for
    charts: never an entry you may not see, never an entry's content. More groups than
    ``limit`` is refused (422), as is a zone with too many entries to count exactly."""
    result = await aggregates.aggregate_entries(
        session=session,
        settings=settings,
        actor=actor,
        filters=filters,
        group_by=group_by,
        bucket=bucket,
        limit=limit,
    )
    return EntryAggregateRead(
        group_by=result.group_by,
        bucket=result.bucket,
        groups=result.groups,
        total=result.total,
        levels=result.levels,
    )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(
            f"« {name} » doit préciser le fuseau (ex. 2024-07-26T20:00:00+02:00).",
            f"'{name}' must carry a time zone (e.g. 2024-07-26T20:00:00+02:00).",
            extra={"fields": [{"field": name, "message": "time zone required"}]},
        )
    return value


@router.get("/entries/{entry_id}", response_model=EntryRead, responses=NOT_FOUND)
async def get_entry(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    response: Response,
) -> EntryRead:
    entry = await entries.get_entry(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    return await _one(session, settings, actor, entry, response)


@router.patch(
    "/entries/{entry_id}",
    response_model=EntryRead,
    responses=PRECONDITION | NOT_FOUND,
)
async def update_entry(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    body: EntryPatch,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    """Correct an entry: a new version. Needs ``If-Match`` with the ETag last read. The label,
    owner and author are not changed here (see ``/label``)."""
    extra = set(body.model_extra or {})
    if LABEL_FIELDS & extra:
        raise Forbidden(
            "Le marquage, l'organisation et l'auteur ne se modifient pas ici : "
            "utilisez POST /entries/{id}/label.",
            "Label, organisation and author are not changed here: use POST /entries/{id}/label.",
            code="label_change_refused",
        )
    if extra:
        names = ", ".join(sorted(extra))
        raise Invalid(
            f"Champ(s) non modifiable(s) : {names}.",
            f"Field(s) not editable: {names}.",
            extra={"fields": [{"field": n, "message": "not allowed"} for n in extra]},
        )
    data = EntryUpdate.model_validate(body.model_dump(exclude_unset=True))
    entry = await entries.update_entry(
        session=session,
        settings=settings,
        actor=actor,
        entry_id=entry_id,
        data=data,
        if_match=if_match,
    )
    return await _one(session, settings, actor, entry, response)


@router.get("/entries/{entry_id}/versions", response_model=list[VersionRead], responses=NOT_FOUND)
async def entry_versions(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, entry_id: uuid.UUID
) -> list[VersionRead]:
    """Every version the caller is cleared for, with what changed."""
    versions = await triage.entry_versions(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    names = await present.directory_for(session, versions, settings=settings, actor=actor)
    return [present.version_read(v, names) for v in versions]


@router.post(
    "/entries/{entry_id}/validate", response_model=EntryRead, responses=PRECONDITION | NOT_FOUND
)
async def validate_entry(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    entry = await triage.validate(
        session=session, settings=settings, actor=actor, entry_id=entry_id, if_match=if_match
    )
    return await _one(session, settings, actor, entry, response)


@router.post(
    "/entries/{entry_id}/severity", response_model=EntryRead, responses=PRECONDITION | NOT_FOUND
)
async def qualify_severity(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    data: SeverityChange,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    entry = await triage.set_severity(
        session=session,
        settings=settings,
        actor=actor,
        entry_id=entry_id,
        severity=data.severity,
        if_match=if_match,
    )
    return await _one(session, settings, actor, entry, response)


@router.post(
    "/entries/{entry_id}/duplicate", response_model=EntryRead, responses=PRECONDITION | NOT_FOUND
)
async def mark_duplicate(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    data: DuplicateMark,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    entry = await triage.mark_duplicate(
        session=session,
        settings=settings,
        actor=actor,
        entry_id=entry_id,
        duplicate_of=data.duplicate_of,
        if_match=if_match,
    )
    return await _one(session, settings, actor, entry, response)


@router.post(
    "/entries/{entry_id}/situation", response_model=EntryRead, responses=PRECONDITION | NOT_FOUND
)
async def link_situation(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    data: SituationLink,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    entry = await triage.link_situation(
        session=session,
        settings=settings,
        actor=actor,
        entry_id=entry_id,
        situation_id=data.situation_id,
        if_match=if_match,
    )
    return await _one(session, settings, actor, entry, response)


@router.post(
    "/entries/{entry_id}/label",
    response_model=LabelChangeResult,
    responses={202: {"description": "lowering the label: a request awaits approval"}}
    | PRECONDITION
    | NOT_FOUND,
)
async def change_label(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    data: LabelChange,
    response: Response,
    if_match: IfMatch = None,
) -> LabelChangeResult:
    """Raise the label at once, or ask a second person to approve lowering it (202)."""
    result = await triage.change_label(
        session=session,
        settings=settings,
        actor=actor,
        entry_id=entry_id,
        data=data.label,
        reason=data.reason,
        if_match=if_match,
    )
    if isinstance(result, LabelChangeRequest):
        response.status_code = 202
        names = await present.directory_for(session, [result], settings=settings, actor=actor)
        return LabelChangeResult(applied=False, request=present.label_request_read(result, names))
    return LabelChangeResult(
        applied=True, entry=await _one(session, settings, actor, result, response)
    )


@router.get("/label-requests", response_model=list[LabelRequestRead])
async def label_requests(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> list[LabelRequestRead]:
    rows = await triage.pending_label_requests(session=session, settings=settings, actor=actor)
    names = await present.directory_for(session, rows, settings=settings, actor=actor)
    return [present.label_request_read(r, names) for r in rows]


@router.post(
    "/label-requests/{request_id}/approve",
    response_model=LabelRequestRead,
    responses=CONFLICT | NOT_FOUND,
)
async def approve_label_request(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, request_id: uuid.UUID
) -> LabelRequestRead:
    row = await triage.decide_label_request(
        session=session, settings=settings, actor=actor, request_id=request_id, approve=True
    )
    return present.label_request_read(
        row, await present.directory_for(session, [row], settings=settings, actor=actor)
    )


@router.post(
    "/label-requests/{request_id}/reject",
    response_model=LabelRequestRead,
    responses=CONFLICT | NOT_FOUND,
)
async def reject_label_request(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, request_id: uuid.UUID
) -> LabelRequestRead:
    row = await triage.decide_label_request(
        session=session, settings=settings, actor=actor, request_id=request_id, approve=False
    )
    return present.label_request_read(
        row, await present.directory_for(session, [row], settings=settings, actor=actor)
    )
