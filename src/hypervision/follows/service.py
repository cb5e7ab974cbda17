"""Personal settings: locale, guided tour, follows, saved views, notifications.

They are the user's own settings, not protected records: no label, no version history; every
change is audited (ADR 0007). Notifications are computed, not stored: the visible entries that
match what the officer follows (categories, situations, zones), recorded since they last
looked, written by someone else; and the followed entries (still visible) that someone else
corrected, moved on (a new version) or commented (a comment the officer may read) since then."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import ColumnElement, Select, and_, delete, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Invalid, NotFound
from hypervision.core.shapes import Area
from hypervision.db import utcnow
from hypervision.follows.models import Follow, SavedView, WebPreference
from hypervision.follows.schemas import FollowKind, Personal
from hypervision.geo.models import Zone
from hypervision.geo.zones import visible_zones
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.models import Comment, Entry
from hypervision.logbook.query import EntryQuery
from hypervision.policy.rules import Subject
from hypervision.records import access
from hypervision.records.access import dialect_of
from hypervision.records.models import RecordVersion

MAX_FOLLOWS = 50
MAX_VIEWS = 30
BADGE_CAP = 99
VIEW_KEYS = frozenset(  # the web form's parameters (``web.feed_pages.FeedQuery.url``)
    {"category", "severity", "status", "organisation", "period", "situation", "zone", "q"}
)


async def preference(session: AsyncSession, user_id: uuid.UUID) -> WebPreference:
    """The user's preferences (a fresh, unsaved row with defaults if they have none yet)."""
    found = await session.get(WebPreference, user_id)
    return found or WebPreference(user_id=user_id)


async def _saved_preference(session: AsyncSession, user_id: uuid.UUID) -> WebPreference:
    found = await session.get(WebPreference, user_id)
    if found is None:
        found = WebPreference(user_id=user_id)
        session.add(found)
    return found


async def _audit(
    session: AsyncSession, actor: Principal, action: str, detail: dict[str, object]
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        surface="web",
        resource_type="user",
        resource_ids=[actor.user_id] if actor.user_id else [],
        detail=detail,
    )


async def set_locale(*, session: AsyncSession, actor: Principal, locale: str) -> None:
    assert actor.user_id is not None
    (await _saved_preference(session, actor.user_id)).locale = locale
    await _audit(session, actor, "preference.locale", {"locale": locale})


async def finish_tour(*, session: AsyncSession, actor: Principal, done: bool = True) -> None:
    assert actor.user_id is not None
    (await _saved_preference(session, actor.user_id)).tour_done_at = utcnow() if done else None
    await _audit(session, actor, "preference.tour", {"done": done})


# --- follows ---------------------------------------------------------------------------------


async def follows(session: AsyncSession, user_id: uuid.UUID) -> Sequence[Follow]:
    query = select(Follow).where(Follow.user_id == user_id).order_by(Follow.created_at)
    return (await session.scalars(query)).all()


async def follow(
    *, session: AsyncSession, actor: Principal, kind: FollowKind, target: str
) -> Follow:
    """Follow a category, a situation, a zone or an entry (already checked visible by the
    caller). Idempotent."""
    assert actor.user_id is not None
    current = await follows(session, actor.user_id)
    for existing in current:
        if existing.kind == kind.value and existing.target == target:
            return existing
    if len(current) >= MAX_FOLLOWS:
        raise Conflict(
            f"Vous suivez déjà {MAX_FOLLOWS} sujets : arrêtez d'en suivre un d'abord.",
            f"You already follow {MAX_FOLLOWS} topics: unfollow one first.",
        )
    row = Follow(user_id=actor.user_id, kind=kind.value, target=target, created_at=utcnow())
    session.add(row)
    await session.flush()
    await _audit(session, actor, "follow.create", {"kind": kind.value, "target": target})
    return row


async def unfollow(
    *, session: AsyncSession, actor: Principal, kind: FollowKind, target: str
) -> None:
    assert actor.user_id is not None
    await session.execute(
        delete(Follow).where(
            Follow.user_id == actor.user_id, Follow.kind == kind.value, Follow.target == target
        )
    )
    await _audit(session, actor, "follow.delete", {"kind": kind.value, "target": target})


def _matching(rows: Sequence[Follow], subject: Subject, dialect: str) -> ColumnElement[bool]:
    """Entries about one of the followed categories or (visible) situations: the union of one
    query specification per kind of follow (zones: see ``_followed``)."""
    categories = [f.target for f in rows if f.kind == FollowKind.CATEGORY.value]
    situations = []
    for f in rows:
        if f.kind == FollowKind.SITUATION.value:
            try:
                situations.append(uuid.UUID(f.target))
            except ValueError:
                continue
    queries = [
        EntryQuery(categories=tuple(categories)) if categories else None,
        EntryQuery(situations=tuple(situations)) if situations else None,
    ]
    clauses = [and_(*q.where(subject=subject, dialect=dialect)) for q in queries if q]
    return or_(*clauses) if clauses else false()


def _since(preference: WebPreference, rows: Sequence[Follow]) -> datetime:
    started = min(f.created_at for f in rows)
    seen = preference.notifications_seen_at
    return max(seen, started) if seen else started


async def _followed(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    rows: Sequence[Follow],
    since: datetime | None,
    limit: int,
) -> list[tuple[Entry, datetime]]:
    """Visible entries by someone else about the followed categories, situations and zones,
    and followed entries someone else changed or commented, each with the moment of that
    news, newest first (zones: candidates by bounding box, then the exact shapely test)."""

    def recent(query: Select[Entry]) -> Select[Entry]:
        query = query.where(Entry.author_id != actor.user_id)
        if since is not None:
            query = query.where(Entry.recorded_at > since)
        return query.order_by(Entry.recorded_at.desc(), Entry.id.desc()).limit(limit)

    found = {e.id: e for e in await session.scalars(
        recent(visible(session, settings, actor).where(
            _matching(rows, Subject.of(settings, actor), dialect_of(session))
        ))
    )}  # fmt: skip
    zone_ids = list(_uuids(rows, FollowKind.ZONE))
    if zone_ids:
        zones = await session.scalars(
            visible_zones(session, settings, actor).where(Zone.id.in_(zone_ids))
        )
        subject, dialect = Subject.of(settings, actor), dialect_of(session)
        for zone in zones:
            inside = EntryQuery(area=Area.of(zone.geometry))
            candidates = inside.apply(
                visible(session, settings, actor), subject=subject, dialect=dialect
            )
            for entry in await session.scalars(recent(candidates)):
                if inside.residual(entry):
                    found[entry.id] = entry
    moments = {e.id: e.recorded_at for e in found.values()}
    for entry, moment in await _entries_moved(session, settings, actor, rows, since, limit):
        found[entry.id] = entry
        moments[entry.id] = max(moment, moments.get(entry.id, moment))
    ordered = sorted(found.values(), key=lambda e: (moments[e.id], e.id), reverse=True)
    return [(e, moments[e.id]) for e in ordered[:limit]]


def _uuids(rows: Sequence[Follow], kind: FollowKind) -> dict[uuid.UUID, datetime]:
    """The followed targets of ``kind`` that are ids, with when each follow started."""
    found = {}
    for f in rows:
        if f.kind == kind.value:
            with contextlib.suppress(ValueError):
                found[uuid.UUID(f.target)] = f.created_at
    return found


async def _entries_moved(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    rows: Sequence[Follow],
    since: datetime | None,
    limit: int,
) -> list[tuple[Entry, datetime]]:
    """The followed entries, still visible, that someone else changed (a new version: a
    correction, a status, a triage) or commented (a comment the officer may read) after
    ``since`` and after they started following each; with the moment of the latest such
    change."""
    started = _uuids(rows, FollowKind.ENTRY)
    if not started:
        return []
    floor = min(started.values()) if since is None else max(since, min(started.values()))
    changed = (
        select(RecordVersion.resource_id, RecordVersion.at)
        .where(
            RecordVersion.resource_type == "entry",
            RecordVersion.resource_id.in_(started),
            RecordVersion.version > 1,
            RecordVersion.at > floor,
            or_(RecordVersion.actor_id.is_(None), RecordVersion.actor_id != actor.user_id),
        )
        .order_by(RecordVersion.at.desc())
        .limit(limit * 20)
    )
    said = (
        access.visible(session, settings, actor, Comment)
        .with_only_columns(Comment.entry_id, Comment.created_at)
        .where(
            Comment.entry_id.in_(started),
            Comment.author_id != actor.user_id,
            Comment.created_at > floor,
        )
        .order_by(Comment.created_at.desc())
        .limit(limit * 20)
    )
    latest: dict[uuid.UUID, datetime] = {}
    for entry_id, at in [
        *(await session.execute(changed)).all(),
        *(await session.execute(said)).all(),
    ]:
        if at > max(started[entry_id], since or started[entry_id]):
            latest[entry_id] = max(at, latest.get(entry_id, at))
    if not latest:
        return []
    visible_rows = await session.scalars(
        visible(session, settings, actor).where(Entry.id.in_(latest))
    )
    return [(e, latest[e.id]) for e in visible_rows]


async def followed_entries(
    *, session: AsyncSession, settings: Settings, actor: Principal, rows: Sequence[Follow]
) -> list[Entry]:
    """The followed entries the officer can still see (read, audited): a followed entry
    raised out of their reach is no longer named."""
    ids = list(_uuids(rows, FollowKind.ENTRY))
    if not ids:
        return []
    found = list(await session.scalars(visible(session, settings, actor).where(Entry.id.in_(ids))))
    await access.delivered(
        session, actor, action="entry.list", kind="entry", rows=found, detail={"view": "follows"}
    )
    return found


async def unseen_count(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    preference: WebPreference,
    rows: Sequence[Follow],
) -> int:
    """How many visible entries about the followed topics ``rows`` arrived since the officer
    last looked (capped: the badge shows "99+"). A count of what the policy lets them see."""
    if actor.user_id is None or not rows:
        return 0
    since = _since(preference, rows)
    return len(await _followed(session, settings, actor, rows, since, BADGE_CAP + 1))


async def notifications(
    *, session: AsyncSession, settings: Settings, actor: Principal, limit: int = 50
) -> tuple[list[Entry], datetime | None, dict[uuid.UUID, datetime]]:
    """The latest entries about followed topics (read, audited), when the officer last
    looked, and when each entry's news came (its recording, or the latest correction or
    comment by someone else on a followed entry); looking marks them seen."""
    assert actor.user_id is not None
    rows = await follows(session, actor.user_id)
    pref = await _saved_preference(session, actor.user_id)
    seen = pref.notifications_seen_at
    if not rows:
        return [], seen, {}
    news = await _followed(session, settings, actor, rows, None, limit)
    found = [e for e, _ in news]
    await audit.record(
        session=session,
        actor=actor,
        action="entry.list",
        surface="web",
        resource_type="entry",
        resource_ids=[e.id for e in found],
        labels=sorted({e.label_level for e in found}),
        detail={"view": "notifications"},
    )
    pref.notifications_seen_at = utcnow()
    return found, seen, {e.id: moment for e, moment in news}


async def personal(
    *, session: AsyncSession, settings: Settings, actor: Principal, enrolling: bool = False
) -> Personal:
    """What a page's frame shows of its officer: name, organisation, language, tour, followed
    topics and the badge (none of the last two while enrolling in MFA: no read right yet)."""
    assert actor.user_id is not None
    full_name, organisation = await identity.name_and_organisation(
        session=session, user_id=actor.user_id
    )
    pref = await preference(session, actor.user_id)
    if enrolling:
        return Personal(full_name, organisation, pref.locale, pref.tour_done_at is None)
    rows = await follows(session, actor.user_id)
    return Personal(
        full_name,
        organisation,
        pref.locale,
        pref.tour_done_at is None,
        follow_categories=[f.target for f in rows if f.kind == FollowKind.CATEGORY.value],
        follow_situations=[f.target for f in rows if f.kind == FollowKind.SITUATION.value],
        follow_entries=[f.target for f in rows if f.kind == FollowKind.ENTRY.value],
        badge=await unseen_count(
            session=session, settings=settings, actor=actor, preference=pref, rows=rows
        ),
    )


# --- saved views -----------------------------------------------------------------------------


def clean_query(raw: str) -> str:
    """Keep only the feed's filter parameters, in a stable order."""
    pairs = [(k, v) for k, v in parse_qsl(raw.lstrip("?"), keep_blank_values=False) if v]
    return urlencode(sorted((k, v[:200]) for k, v in pairs if k in VIEW_KEYS))


async def views(session: AsyncSession, user_id: uuid.UUID) -> Sequence[SavedView]:
    query = select(SavedView).where(SavedView.user_id == user_id).order_by(SavedView.name)
    return (await session.scalars(query)).all()


async def save_view(*, session: AsyncSession, actor: Principal, name: str, query: str) -> SavedView:
    assert actor.user_id is not None
    name = " ".join(name.split())[:80]
    if not name:
        raise Invalid(
            "Donnez un nom à la vue.",
            "Give the view a name.",
            extra={"fields": [{"field": "name", "message": "required"}]},
        )
    current = await views(session, actor.user_id)
    existing = next((v for v in current if v.name == name), None)
    if existing is None and len(current) >= MAX_VIEWS:
        raise Conflict(
            f"Au plus {MAX_VIEWS} vues : supprimez-en une d'abord.",
            f"At most {MAX_VIEWS} views: delete one first.",
        )
    if existing is None:
        existing = SavedView(user_id=actor.user_id, name=name, created_at=utcnow())
        session.add(existing)
    existing.query = clean_query(query)
    await session.flush()
    await _audit(session, actor, "view.save", {"name": name, "query": existing.query})
    return existing


async def delete_view(*, session: AsyncSession, actor: Principal, view_id: uuid.UUID) -> None:
    assert actor.user_id is not None
    row = await session.get(SavedView, view_id)
    if row is None or row.user_id != actor.user_id:
        raise NotFound("Vue introuvable.", "View not found.")
    await session.delete(row)
    await _audit(session, actor, "view.delete", {"name": row.name})
