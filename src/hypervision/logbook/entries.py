"""Entries of the main courante: create, read, list, correct. Every read goes through the
policy's SQL filter and leaves an audit record of the ids it delivered."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Forbidden, Invalid
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.logbook import cells
from hypervision.logbook.fulltext import index_entry
from hypervision.logbook.models import ENTRY_KIND, Entry, Situation
from hypervision.logbook.query import EntryQuery
from hypervision.logbook.schemas import EntryCreate, EntryUpdate
from hypervision.policy.rules import Action, allowed, authorize, visible_filter
from hypervision.records import access, versions
from hypervision.records.access import dialect_of, subject_of
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label

FUTURE_TOLERANCE = timedelta(minutes=10)


def visible(session: AsyncSession, settings: Settings, actor: Principal) -> Select[Entry]:
    """The only way to select entries for a reader: the policy filter is always applied."""
    return access.visible(session, settings, actor, Entry)


def _bbox(geometry: dict[str, Any] | None) -> tuple[float, float, float, float] | None:
    if not geometry:
        return None
    points: list[tuple[float, float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)) and node and isinstance(node[0], (int, float)):
            points.append((float(node[0]), float(node[1])))
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk(geometry["coordinates"])
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lons), min(lats), max(lons), max(lats)


def _set_location(entry: Entry, geometry: dict[str, Any] | None) -> None:
    entry.location = geometry
    box = _bbox(geometry)
    entry.min_lon, entry.min_lat, entry.max_lon, entry.max_lat = box or (None, None, None, None)


def _check_category(settings: Settings, category: str) -> None:
    if category not in settings.categories:
        allowed_ = ", ".join(settings.categories)
        raise Invalid(
            f"Catégorie {category!r} inconnue (possibles : {allowed_}).",
            f"Unknown category {category!r} (allowed: {allowed_}).",
            extra={"fields": [{"field": "category", "message": f"one of {allowed_}"}]},
        )


def _check_occurred_at(value: datetime) -> None:
    if value > utcnow() + FUTURE_TOLERANCE:
        raise Invalid(
            "La date de l'événement ne peut pas être dans le futur.",
            "The event time cannot be in the future.",
            extra={"fields": [{"field": "occurred_at", "message": "in the future"}]},
        )


async def linked_situation(
    session: AsyncSession, settings: Settings, actor: Principal, situation_id: uuid.UUID
) -> Situation:
    query = select(Situation).where(
        Situation.id == situation_id,
        visible_filter(subject_of(settings, actor), Situation, dialect_of(session)),
    )
    situation = await session.scalar(query)
    if situation is None:
        raise Invalid(
            "Situation introuvable.",
            "Situation not found.",
            extra={"fields": [{"field": "situation_id", "message": "not found"}]},
        )
    return situation


async def linked_entry(
    session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID, field_: str
) -> Entry:
    entry = await session.scalar(visible(session, settings, actor).where(Entry.id == entry_id))
    if entry is None:
        raise Invalid(
            "Entrée liée introuvable.",
            "Linked entry not found.",
            extra={"fields": [{"field": field_, "message": "not found"}]},
        )
    return entry


async def create_entry(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: EntryCreate
) -> Entry:
    authorize(actor, Action.WRITE)
    if actor.user_id is None or actor.organisation_id is None:
        raise Forbidden(
            "Seul un compte rattaché à une organisation peut écrire.",
            "Only an account that belongs to an organisation can write.",
        )
    _check_category(settings, data.category)
    occurred_at = data.occurred_at or utcnow()
    _check_occurred_at(occurred_at)
    label = await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
    if data.situation_id:
        await linked_situation(session, settings, actor, data.situation_id)
    if data.follow_up_of_id:
        await linked_entry(session, settings, actor, data.follow_up_of_id, "follow_up_of_id")
    now = utcnow()
    entry = Entry(
        occurred_at=occurred_at,
        recorded_at=now,
        updated_at=now,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        category=data.category,
        severity=data.severity.value,
        status=data.status.value,
        title=data.title,
        body=data.body,
        tags=sorted(set(data.tags)),
        situation_id=data.situation_id,
        follow_up_of_id=data.follow_up_of_id,
        version=1,
    )
    entry.set_label(label)
    _set_location(entry, data.location.model_dump() if data.location else None)
    counted = cells.creation(session, entry)  # PostgreSQL: written by the change's statements
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="entry",
        row=entry,
        action="create",
        before=None,
        summary=summary(entry),
        create=True,
        with_row=counted.signature if counted else None,
        with_change=counted.cells if counted else None,
    )
    await index_entry(session, entry, new=True)
    if counted is None:
        await cells.entry_changed(session, before=None, after=entry)
    return entry


async def last_category(*, session: AsyncSession, author_id: uuid.UUID) -> str | None:
    """The category of the author's own latest entry (their own writing: no label to check)."""
    return await session.scalar(
        select(Entry.category)
        .where(Entry.author_id == author_id)
        .order_by(Entry.recorded_at.desc())
        .limit(1)
    )


def summary(entry: Entry) -> dict[str, Any]:
    """What a live event says about an entry (enough to route it, no content)."""
    return {
        "category": entry.category,
        "severity": entry.severity,
        "status": entry.status,
        "situation_id": str(entry.situation_id) if entry.situation_id else None,
        "bbox": [entry.min_lon, entry.min_lat, entry.max_lon, entry.max_lat]
        if entry.min_lon is not None
        else None,
    }


async def find_visible(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> Entry:
    """The entry, or 404 exactly as if it did not exist when the actor may not see it."""
    return await access.find_in(session, visible(session, settings, actor), ENTRY_KIND, entry_id)


async def get_entry(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> Entry:
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    await access.delivered(session, actor, action="entry.read", kind="entry", rows=[entry])
    return entry


def encode_cursor(entry: Entry) -> str:
    raw = f"{entry.recorded_at.isoformat()}|{entry.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "Curseur de pagination invalide.",
            "Invalid pagination cursor.",
            extra={"fields": [{"field": "cursor", "message": "invalid"}]},
        ) from None


async def list_entries(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    filters: EntryQuery,
    cursor: str | None,
    limit: int,
) -> tuple[list[Entry], str | None]:
    """Newest first, keyset-paginated on (recorded_at, id)."""
    base = filters.apply(
        visible(session, settings, actor),
        subject=subject_of(settings, actor),
        dialect=dialect_of(session),
    )
    if not filters.exact:
        entries, next_cursor = await _list_narrowed(session, base, filters, cursor, limit)
    else:
        query = _after(base, cursor)
        query = query.order_by(Entry.recorded_at.desc(), Entry.id.desc()).limit(limit + 1)
        entries = list(await session.scalars(query))
        next_cursor = encode_cursor(entries[limit - 1]) if len(entries) > limit else None
        entries = entries[:limit]
    await audit.record(
        session=session,
        actor=actor,
        action="entry.list",
        resource_type="entry",
        resource_ids=[e.id for e in entries],
        labels=sorted({e.label_level for e in entries}),
    )
    return entries, next_cursor


def _after(query: Select[Entry], cursor: str | None) -> Select[Entry]:
    if not cursor:
        return query
    at, ident = decode_cursor(cursor)
    return query.where(or_(Entry.recorded_at < at, and_(Entry.recorded_at == at, Entry.id < ident)))


AREA_BATCH = 500
AREA_SCAN_LIMIT = 20_000


async def _list_narrowed(
    session: AsyncSession,
    base: Select[Entry],
    filters: EntryQuery,
    cursor: str | None,
    limit: int,
) -> tuple[list[Entry], str | None]:
    """Entries inside a zone (border included, holes excluded): candidates by bounding box in
    SQL (``base``), newest first, kept when shapely says they touch the zone (the query's
    ``residual``). A page scans at most AREA_SCAN_LIMIT candidates; the cursor then resumes
    after the last one scanned."""
    found: list[Entry] = []
    scanned, last = 0, None
    while True:
        batch = list(
            await session.scalars(
                _after(base, cursor)
                .order_by(Entry.recorded_at.desc(), Entry.id.desc())
                .limit(AREA_BATCH)
            )
        )
        for entry in batch:
            scanned += 1
            last = entry
            if filters.residual(entry):
                found.append(entry)
                if len(found) > limit:
                    return found[:limit], encode_cursor(found[limit - 1])
        if len(batch) < AREA_BATCH:
            return found, None
        cursor = encode_cursor(batch[-1])
        if scanned >= AREA_SCAN_LIMIT and last is not None:
            return found, encode_cursor(last)


def may_edit(actor: Principal, entry: Entry) -> bool:
    """Writers of the owner organisation, and watch officers, correct an entry they can see."""
    own = allowed(actor, Action.WRITE) and entry.organisation_id == actor.organisation_id
    return own or allowed(actor, Action.TRIAGE)


async def update_entry(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    data: EntryUpdate,
    if_match: str | None,
) -> Entry:
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    if not may_edit(actor, entry):
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle corrigent une entrée.",
            "Only the owner organisation and watch officers correct an entry.",
        )
    check_if_match(entry, if_match)
    before = versions.snapshot(entry)
    changes = data.model_dump(exclude_unset=True)
    if "category" in changes and data.category is not None:
        _check_category(settings, data.category)
    if "occurred_at" in changes and data.occurred_at is not None:
        _check_occurred_at(data.occurred_at)
    for name in ("title", "body", "category", "occurred_at"):
        if name in changes and changes[name] is not None:
            setattr(entry, name, changes[name])
    if "status" in changes and data.status is not None:
        entry.status = data.status.value
    if "tags" in changes and data.tags is not None:
        entry.tags = sorted(set(data.tags))
    if "location" in changes:
        _set_location(entry, data.location.model_dump() if data.location else None)
    return await save_version(
        session=session, actor=actor, entry=entry, action="update", before=before
    )


async def save_version(
    *,
    session: AsyncSession,
    actor: Principal,
    entry: Entry,
    action: str,
    before: dict[str, Any],
) -> Entry:
    """Bump the version when something changed and write history, outbox and audit."""
    if versions.diff(before, versions.snapshot(entry)):
        entry.version += 1
        entry.updated_at = utcnow()
        await versions.record_change(
            session=session,
            actor=actor,
            resource_type="entry",
            row=entry,
            action=action,
            before=before,
            summary=summary(entry),
        )
        await index_entry(session, entry)
        await cells.entry_changed(session, before=before, after=entry)
    return entry
