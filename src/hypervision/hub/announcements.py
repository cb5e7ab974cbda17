"""Announcements of the CNCS on the hub: a title, a Markdown body (sanitised when shown), an
importance, a display window and a label (the audience targets organisations). Published by
the watch officers and authorities of the organisations named in ``settings.hub_announcers``
and their sub-organisations (docs/adr/0042). A live topic: an open hub learns of a new one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden, Invalid
from hypervision.db import utcnow
from hypervision.hub.models import ANNOUNCEMENT_KIND, Announcement, Importance
from hypervision.hub.schemas import AnnouncementCreate, AnnouncementUpdate
from hypervision.identity.models import Organisation
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role, Scope
from hypervision.records import access, versions
from hypervision.records.labelling import resolve_label

KIND = ANNOUNCEMENT_KIND.name
PAGE_MAX = 200
PUBLISHING_ROLES = frozenset({Role.WATCH_OFFICER.value, Role.AUTHORITY.value})


async def may_publish(session: AsyncSession, settings: Settings, actor: Principal) -> bool:
    """A watch officer or an authority of an announcing organisation (or one beneath it)."""
    if not settings.hub_announcers or not (PUBLISHING_ROLES & actor.roles):
        return False
    if not actor.has_scope(Scope.WRITE) or not actor.organisation_ancestry:
        return False
    found = await session.scalar(
        select(Organisation.id)
        .where(Organisation.code.in_(settings.hub_announcers))
        .where(Organisation.id.in_(actor.organisation_ancestry))
        .limit(1)
    )
    return found is not None


async def _publisher(session: AsyncSession, settings: Settings, actor: Principal) -> None:
    if not await may_publish(session, settings, actor):
        raise Forbidden(
            "Seuls les chefs de salle et les autorités du CNCS publient les annonces.",
            "Only the CNCS's watch officers and authorities publish announcements.",
        )


def visible_announcements(
    session: AsyncSession, settings: Settings, actor: Principal
) -> Select[Announcement]:
    return access.visible(session, settings, actor, Announcement)


def shown_at(at: datetime) -> Any:
    """The SQL condition: displayed at ``at`` (started, not ended)."""
    return (Announcement.starts_at <= at) & (
        or_(Announcement.ends_at.is_(None), Announcement.ends_at > at)
    )


def is_shown(row: Announcement, at: datetime) -> bool:
    return row.starts_at <= at and (row.ends_at is None or row.ends_at > at)


async def find_announcement(
    *, session: AsyncSession, settings: Settings, actor: Principal, announcement_id: uuid.UUID
) -> Announcement:
    return await access.find_in(
        session, visible_announcements(session, settings, actor), ANNOUNCEMENT_KIND, announcement_id
    )


def _check_window(starts_at: datetime, ends_at: datetime | None) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid(
            "Champ « ends_at » : la fin d'affichage doit suivre son début.",
            "Field 'ends_at': the end of display must come after its start.",
            extra={"fields": [{"field": "ends_at", "message": "must come after starts_at"}]},
        )


def _summary(row: Announcement) -> dict[str, Any]:
    """What a live event says: the importance, never the content."""
    return {"importance": row.importance}


async def create_announcement(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: AnnouncementCreate
) -> Announcement:
    await _publisher(session, settings, actor)
    assert actor.user_id is not None and actor.organisation_id is not None
    label = await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
    now = utcnow()
    _check_window(data.starts_at or now, data.ends_at)
    row = Announcement(
        title=data.title,
        body=data.body,
        importance=data.importance.value,
        starts_at=data.starts_at or now,
        ends_at=data.ends_at,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    row.set_label(label)
    session.add(row)
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type=KIND,
        row=row,
        action="create",
        before=None,
        summary=_summary(row),
    )
    return row


async def update_announcement(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    announcement_id: uuid.UUID,
    data: AnnouncementUpdate,
    action: str = "update",
) -> Announcement:
    await _publisher(session, settings, actor)
    row = await find_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    before = versions.snapshot(row)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in ("title", "body", "importance", "starts_at"):
        if name in changes and changes[name] is None:
            raise Invalid(f"Champ « {name} » : obligatoire.", f"Field '{name}': required.")
    for name, value in changes.items():
        setattr(row, name, value.value if isinstance(value, Importance) else value)
    _check_window(row.starts_at, row.ends_at)
    if versions.snapshot(row) == before:
        return row
    row.version += 1
    row.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type=KIND,
        row=row,
        action=action,
        before=before,
        summary=_summary(row),
    )
    return row


async def withdraw_announcement(
    *, session: AsyncSession, settings: Settings, actor: Principal, announcement_id: uuid.UUID
) -> Announcement:
    """End the display now (one not shown yet is withdrawn before it shows)."""
    await _publisher(session, settings, actor)
    row = await find_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    now = utcnow()
    if row.ends_at is not None and row.ends_at <= now:
        raise Conflict("Cette annonce n'est déjà plus affichée.", "This announcement has ended.")
    before = versions.snapshot(row)
    row.starts_at = min(row.starts_at, now)
    row.ends_at = now
    row.version += 1
    row.updated_at = now
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type=KIND,
        row=row,
        action="withdraw",
        before=before,
        summary=_summary(row),
    )
    return row


async def list_announcements(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    shown_only: bool = True,
    importance: Importance | None = None,
    offset: int = 0,
    limit: int = 50,
    at: datetime | None = None,
) -> tuple[list[Announcement], int | None]:
    """A page of the visible announcements (those displayed now, by default): the most
    important first, then the newest."""
    limit = max(1, min(limit, PAGE_MAX))
    query = visible_announcements(session, settings, actor)
    if shown_only:
        query = query.where(shown_at(at or utcnow()))
    if importance is not None:
        query = query.where(Announcement.importance == importance.value)
    rows = list(
        await session.scalars(
            query.order_by(Announcement.starts_at.desc(), Announcement.id)
            .offset(offset)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if shown_only:
        rank = {Importance.URGENT.value: 0, Importance.IMPORTANT.value: 1}
        rows.sort(key=lambda r: rank.get(r.importance, 2))  # stable: newest first within
    await access.delivered(session, actor, action=f"{KIND}.list", kind=KIND, rows=rows)
    return rows, (offset + limit if more else None)


async def read_announcement(
    *, session: AsyncSession, settings: Settings, actor: Principal, announcement_id: uuid.UUID
) -> Announcement:
    row = await find_announcement(
        session=session, settings=settings, actor=actor, announcement_id=announcement_id
    )
    await access.delivered(session, actor, action=f"{KIND}.read", kind=KIND, rows=[row])
    return row
