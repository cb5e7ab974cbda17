"""The crisis directory (annuaire de crise): who represents which organisation in which room,
reachable how, on which shift. Kept by watch officers and administrators, read by every
signed-in officer; not labelled (docs/adr/0042), every read and change audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.hub.models import DutyAssignment
from hypervision.hub.schemas import LONGEST_SHIFT_HOURS, DutyCreate, DutyUpdate
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, allowed

PAGE_MAX = 500
KIND = "duty"


class DutyNotFound(NotFound):
    fr, en = "Permanence introuvable.", "Duty assignment not found."


def may_keep(actor: Principal) -> bool:
    """Watch officers and administrators keep the directory."""
    return allowed(actor, Action.TRIAGE) or allowed(actor, Action.ADMINISTER)


def _keeper(actor: Principal) -> None:
    if not may_keep(actor):
        raise Forbidden(
            "Seuls les chefs de salle et les administrateurs tiennent l'annuaire de crise.",
            "Only watch officers and administrators keep the crisis directory.",
        )


def _reader(actor: Principal) -> None:
    if not (allowed(actor, Action.READ) or may_keep(actor)):
        raise Forbidden(
            "Votre rôle ne permet pas de lire l'annuaire de crise.",
            "Your role does not allow reading the crisis directory.",
        )


def _field(name: str, fr: str, en: str) -> Invalid:
    return Invalid(
        f"Champ « {name} » : {fr}.",
        f"Field '{name}': {en}.",
        extra={"fields": [{"field": name, "message": en}]},
    )


def check_shift(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise _field("ends_at", "la fin doit suivre le début", "must come after starts_at")
    if (ends_at - starts_at).total_seconds() > LONGEST_SHIFT_HOURS * 3600:
        raise _field(
            "ends_at",
            f"une permanence dure {LONGEST_SHIFT_HOURS} heures au plus",
            f"a shift lasts at most {LONGEST_SHIFT_HOURS} hours",
        )


async def _organisation(session: AsyncSession, code: str) -> uuid.UUID:
    found = await session.scalar(select(Organisation.id).where(Organisation.code == code))
    if found is None:
        raise _field(
            "organisation", f"organisation inconnue ({code})", f"unknown organisation {code}"
        )
    return found


async def _user(session: AsyncSession, username: str) -> uuid.UUID:
    found = await session.scalar(select(User.id).where(User.username == username))
    if found is None:
        raise _field("username", f"compte inconnu ({username})", f"unknown account {username}")
    return found


async def create_duty(
    *, session: AsyncSession, actor: Principal, data: DutyCreate
) -> DutyAssignment:
    _keeper(actor)
    if not data.username and not data.person_name:
        raise Invalid(
            "Indiquez la personne : son compte (username) ou son nom (person_name).",
            "Name the person: their account (username) or their name (person_name).",
            extra={"fields": [{"field": "person_name", "message": "username or person_name"}]},
        )
    check_shift(data.starts_at, data.ends_at)
    now = utcnow()
    row = DutyAssignment(
        user_id=await _user(session, data.username) if data.username else None,
        person_name=data.person_name,
        organisation_id=await _organisation(session, data.organisation),
        room=data.room,
        function=data.function,
        phone=data.phone,
        radio=data.radio,
        email=str(data.email or ""),
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        note=data.note,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(row)
    await session.flush()
    await _audit(session, actor, "create", row, fields=sorted(data.model_fields_set))
    return row


async def _audit(
    session: AsyncSession, actor: Principal, action: str, row: DutyAssignment, fields: list[str]
) -> None:
    """The change, by field name only: the trail holds no contact data."""
    await audit.record(
        session=session,
        actor=actor,
        action=f"{KIND}.{action}",
        resource_type=KIND,
        resource_ids=[row.id],
        detail={"version": row.version, "changed": fields},
    )


async def _find(session: AsyncSession, duty_id: uuid.UUID) -> DutyAssignment:
    row = await session.get(DutyAssignment, duty_id)
    if row is None:
        raise DutyNotFound()
    return row


async def update_duty(
    *, session: AsyncSession, actor: Principal, duty_id: uuid.UUID, data: DutyUpdate
) -> DutyAssignment:
    _keeper(actor)
    row = await _find(session, duty_id)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "organisation" in changes:
        if changes["organisation"] is None:
            raise _field("organisation", "obligatoire", "required")
        changes["organisation_id"] = await _organisation(session, changes.pop("organisation"))
    for name in ("room", "starts_at", "ends_at"):
        if name in changes and changes[name] is None:
            raise _field(name, "obligatoire", "required")
    if "email" in changes:
        changes["email"] = str(changes["email"] or "")
    changes = {k: ("" if v is None else v) for k, v in changes.items()}
    check_shift(changes.get("starts_at", row.starts_at), changes.get("ends_at", row.ends_at))
    changed = sorted(k for k, v in changes.items() if getattr(row, k) != v)
    if not changed:
        return row
    for name in changed:
        setattr(row, name, changes[name])
    row.version += 1
    row.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, "update", row, fields=changed)
    return row


async def end_shift(
    *, session: AsyncSession, actor: Principal, duty_id: uuid.UUID, at: datetime | None = None
) -> DutyAssignment:
    """End the shift now (a shift not started yet is cancelled: it ends when it starts)."""
    _keeper(actor)
    row = await _find(session, duty_id)
    now = at or utcnow()
    if row.ends_at <= now:
        raise Conflict("Cette permanence est déjà terminée.", "This shift has already ended.")
    row.ends_at = max(now, row.starts_at)
    row.version += 1
    row.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, "end", row, fields=["ends_at"])
    return row


@dataclass(frozen=True)
class DutyFilters:
    room: str | None = None
    organisation: str | None = None  # a code
    on_duty_at: datetime | None = None  # on duty at that instant
    q: str | None = None  # words of a name, function, room


def _filtered(query: Select[Any], filters: DutyFilters, org_id: uuid.UUID | None) -> Select[Any]:
    if filters.room:
        query = query.where(DutyAssignment.room == filters.room)
    if filters.organisation:
        query = query.where(DutyAssignment.organisation_id == org_id)
    if filters.on_duty_at:
        at = filters.on_duty_at
        query = query.where(DutyAssignment.starts_at <= at, DutyAssignment.ends_at > at)
    if filters.q:
        like = f"%{filters.q.lower()}%"
        query = query.where(
            or_(
                func.lower(DutyAssignment.person_name).like(like),
                func.lower(DutyAssignment.function).like(like),
                func.lower(DutyAssignment.room).like(like),
            )
        )
    return query


async def list_duties(
    *,
    session: AsyncSession,
    actor: Principal,
    filters: DutyFilters | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[DutyAssignment], int | None]:
    """A page of assignments by start, and the next page's offset (None on the last)."""
    _reader(actor)
    filters = filters or DutyFilters()
    org_id = None
    if filters.organisation:
        org_id = await session.scalar(
            select(Organisation.id).where(Organisation.code == filters.organisation)
        )
    limit = max(1, min(limit, PAGE_MAX))
    query = _filtered(select(DutyAssignment), filters, org_id)
    query = query.order_by(DutyAssignment.starts_at, DutyAssignment.room, DutyAssignment.id)
    rows = list(await session.scalars(query.offset(offset).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    await audit.record(
        session=session,
        actor=actor,
        action=f"{KIND}.list",
        resource_type=KIND,
        resource_ids=[r.id for r in rows],
    )
    return rows, (offset + limit if more else None)


async def get_duty(
    *, session: AsyncSession, actor: Principal, duty_id: uuid.UUID
) -> DutyAssignment:
    _reader(actor)
    row = await _find(session, duty_id)
    await audit.record(
        session=session,
        actor=actor,
        action=f"{KIND}.read",
        resource_type=KIND,
        resource_ids=[row.id],
    )
    return row


@dataclass
class Room:
    """One room of the board: who is on duty now, and the next shift to start."""

    name: str
    now: list[DutyAssignment] = field(default_factory=list)
    next: DutyAssignment | None = None


async def board(
    *, session: AsyncSession, actor: Principal, at: datetime | None = None
) -> list[Room]:
    """Who is on duty at ``at`` (now), grouped by room, with each room's next shift; rooms in
    alphabetical order. One query; audited as a list of the assignments shown."""
    _reader(actor)
    now = at or utcnow()
    rows = list(
        await session.scalars(
            select(DutyAssignment)
            .where(DutyAssignment.ends_at > now)
            .order_by(DutyAssignment.starts_at, DutyAssignment.id)
            .limit(PAGE_MAX)
        )
    )
    rooms: dict[str, Room] = {}
    shown: list[DutyAssignment] = []
    for row in rows:
        room = rooms.setdefault(row.room, Room(row.room))
        if row.starts_at <= now:
            room.now.append(row)
            shown.append(row)
        elif room.next is None:
            room.next = row
            shown.append(row)
    await audit.record(
        session=session,
        actor=actor,
        action=f"{KIND}.list",
        resource_type=KIND,
        resource_ids=[r.id for r in shown],
        detail={"view": "board"},
    )
    return [rooms[name] for name in sorted(rooms, key=str.casefold)]
