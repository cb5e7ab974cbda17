"""Spaces: create, read, list, change, archive, export and import (docs/adr/0041).

Reading a space is the policy's filter on its label, narrowed to its ``people`` when that list
is set (a narrowing only: row-level security keeps the label's wall on PostgreSQL). Every
change is one version, its outbox event and its audit record (``records.versions``); every
read is audited. What a space's modules show is read as the reader, module by module
(``spaces.modules``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision import criteria as c
from hypervision.config import Settings
from hypervision.core.errors import Forbidden, Invalid
from hypervision.db import utcnow
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action, authorize
from hypervision.records import access, versions
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label
from hypervision.records.models import RecordVersion
from hypervision.spaces.models import SPACE_KIND, Space, SpaceStatus
from hypervision.spaces.schemas import (
    CONFIGS,
    ModuleIn,
    SpaceCreate,
    SpaceImport,
    SpaceUpdate,
)
from hypervision.spaces.templates import TEMPLATES


def _people_allow(actor: Principal, dialect: str) -> ColumnElement[bool]:
    """SQL: the space's ``people`` list is empty, names the actor, or the actor owns it."""
    me = str(actor.user_id)
    length = func.jsonb_array_length if dialect == "postgresql" else func.json_array_length
    named = c.HasAll("people", (me,)).sql(Space, c.Context(dialect=dialect))
    return or_(length(Space.people) == 0, named, Space.owner_user_id == actor.user_id)


def names(space: Space, actor: Principal) -> bool:
    """``_people_allow`` in Python, for a space already read: its ``people`` list is empty,
    names the actor, or the actor owns it (a pushed module's readers, docs/adr/0052)."""
    people = space.people or []
    return not people or str(actor.user_id) in people or space.owner_user_id == actor.user_id


def visible_spaces(session: AsyncSession, settings: Settings, actor: Principal) -> Select[Space]:
    query = access.visible(session, settings, actor, Space)
    return query.where(_people_allow(actor, access.dialect_of(session)))


async def find_space(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> Space:
    """A space the actor may read (hidden, narrowed away and missing alike: 404, audited)."""
    return await access.find_in(
        session, visible_spaces(session, settings, actor), SPACE_KIND, space_id
    )


async def get_space(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> Space:
    space = await find_space(session=session, settings=settings, actor=actor, space_id=space_id)
    await access.delivered(session, actor, action="space.read", kind="space", rows=[space])
    return space


async def list_spaces(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    q: str | None = None,
    owner: str | None = None,  # "me": those the actor owns; "organisation": their organisation's
    archived: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Space], int]:
    query = visible_spaces(session, settings, actor).where(
        Space.status == (SpaceStatus.ARCHIVED if archived else SpaceStatus.ACTIVE).value
    )
    if q:
        query = query.where(Space.title.ilike(f"%{q.strip()[:100]}%"))
    if owner == "me":
        query = query.where(Space.owner_user_id == actor.user_id)
    elif owner == "organisation":
        query = query.where(
            Space.owner_user_id.is_(None), Space.organisation_id == actor.organisation_id
        )
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = list(
        await session.scalars(
            query.order_by(Space.updated_at.desc(), Space.id).limit(limit).offset(offset)
        )
    )
    await access.delivered(session, actor, action="space.list", kind="space", rows=rows)
    return rows, total


def may_edit(actor: Principal, space: Space) -> bool:
    """The owner person, the editors, and (an organisation's space) its writers."""
    if actor.user_id is None or space.status != SpaceStatus.ACTIVE:
        return False
    me = actor.user_id
    if space.owner_user_id == me or str(me) in (space.editors or ()):
        return True
    writers = {Role.OFFICER.value, Role.WATCH_OFFICER.value, Role.DATA_STEWARD.value}
    return (
        space.owner_user_id is None
        and space.organisation_id == actor.organisation_id
        and bool(writers & actor.roles)
    )


def _check_editor(actor: Principal, space: Space) -> None:
    if not may_edit(actor, space):
        raise Forbidden(
            "Vous pouvez voir cet espace mais pas le modifier.",
            "You may see this space but not change it.",
        )


def check_modules(modules: Sequence[ModuleIn], *, lenient: bool = False) -> list[dict[str, Any]]:
    """The stored form of ``modules``: known types' configurations validated (a clear error
    naming the module and the field, or, ``lenient`` for an import, kept as they are and shown
    as a message), unknown types kept; ids unique."""
    seen: set[str] = set()
    stored: list[dict[str, Any]] = []
    for index, module in enumerate(modules):
        if module.id in seen:
            raise _field(f"modules[{index}].id", f"id {module.id!r} used twice")
        seen.add(module.id)
        config = module.config
        shape = CONFIGS.get(module.type)
        if shape is not None:
            try:
                config = shape.model_validate(config).model_dump(mode="json", exclude_none=True)
            except ValidationError as error:
                if not lenient:
                    first = error.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise _field(
                        f"modules[{index}].config{'.' + where if where else ''}", first["msg"]
                    ) from None
        stored.append({**module.model_dump(mode="json", exclude={"config"}), "config": config})
    return stored


def _field(field: str, message: str) -> Invalid:
    return Invalid(
        f"Espace invalide ({field}) : {message}.",
        f"Invalid space ({field}): {message}.",
        extra={"fields": [{"field": field, "message": message}]},
    )


async def user_ids(session: AsyncSession, usernames: Iterable[str], field: str) -> list[str]:
    wanted = sorted(set(usernames))
    if not wanted:
        return []
    rows = await session.execute(select(User.username, User.id).where(User.username.in_(wanted)))
    found = {name: ident for name, ident in rows.all()}
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise _field(field, f"unknown user(s): {', '.join(unknown[:5])}")
    return sorted(str(found[u]) for u in wanted)


async def usernames(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    wanted = [uuid.UUID(i) for i in set(ids)]
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(wanted)))
    return {str(i): name for i, name in rows.all()}


def template_modules(code: str | None) -> list[ModuleIn]:
    """The modules of template ``code`` (none without one)."""
    if code is None:
        return []
    template = TEMPLATES.get(code)
    if template is None:
        raise _field("template", f"unknown template {code!r} ({', '.join(TEMPLATES)})")
    return [ModuleIn.model_validate(m) for m in template.modules]


async def create_space(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: SpaceCreate
) -> Space:
    return await _create(
        session=session,
        settings=settings,
        actor=actor,
        data=data,
        modules=check_modules(data.modules)
        if data.modules is not None
        else check_modules(template_modules(data.template)),
        action="create",
    )


async def import_space(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: SpaceImport
) -> Space:
    """A space from an exported JSON file: modules whose type or configuration this version
    does not know are kept and shown as a message (never a refusal of the whole file)."""
    parsed: list[ModuleIn] = []
    for index, raw in enumerate(data.modules):
        try:
            parsed.append(ModuleIn.model_validate(raw))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise _field(f"modules[{index}].{where}", first["msg"]) from None
    create = SpaceCreate(
        title=data.title,
        description=data.description,
        template=data.template if data.template in TEMPLATES else None,
        label=data.label,
        people=data.people,
        editors=data.editors,
    )
    return await _create(
        session=session,
        settings=settings,
        actor=actor,
        data=create,
        modules=check_modules(parsed, lenient=True),
        action="import",
    )


async def _create(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    data: SpaceCreate,
    modules: list[dict[str, Any]],
    action: str,
) -> Space:
    authorize(actor, Action.READ)
    assert actor.user_id is not None and actor.organisation_id is not None
    label = await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
    people = await user_ids(session, data.people, "people")
    now = utcnow()
    space = Space(
        title=data.title,
        description=data.description,
        template=data.template if data.template in TEMPLATES else None,
        modules=modules,
        people=people,
        editors=await user_ids(session, data.editors, "editors"),
        owner_user_id=actor.user_id if data.personal or people else None,
        status=SpaceStatus.ACTIVE.value,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    space.set_label(label)
    session.add(space)
    await versions.record_change(
        session=session, actor=actor, resource_type="space", row=space, action=action, before=None
    )
    return space


async def update_space(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space_id: uuid.UUID,
    data: SpaceUpdate,
    if_match: str | None,
) -> Space:
    space = await find_space(session=session, settings=settings, actor=actor, space_id=space_id)
    _check_editor(actor, space)
    check_if_match(space, if_match)
    before = versions.snapshot(space)
    if data.title is not None:
        space.title = data.title
    if data.description is not None:
        space.description = data.description
    if data.modules is not None:
        space.modules = check_modules(data.modules)
    if data.people is not None:
        space.people = await user_ids(session, data.people, "people")
    if data.editors is not None:
        space.editors = await user_ids(session, data.editors, "editors")
    if data.personal is not None:
        _set_personal(actor, space, data.personal)
    if data.label is not None:
        label = await resolve_label(
            session=session,
            settings=settings,
            actor=actor,
            data=data.label,
            owner=space.organisation_id,
        )
        space.set_label(label)
    return await _saved(session, actor, space, before, "update")


def _set_personal(actor: Principal, space: Space, personal: bool) -> None:
    """A space becomes its editor's own (only they, its named editors, change it) or its
    organisation's again; someone else's personal space is theirs to give back."""
    if space.owner_user_id not in (None, actor.user_id):
        raise Forbidden(
            "Seul son propriétaire peut changer à qui appartient cet espace personnel.",
            "Only its owner may change who owns this personal space.",
        )
    space.owner_user_id = actor.user_id if personal else None


async def _saved(
    session: AsyncSession, actor: Principal, space: Space, before: dict[str, Any], action: str
) -> Space:
    if versions.diff(before, versions.snapshot(space)):
        space.version += 1
        space.updated_at = utcnow()
        await versions.record_change(
            session=session,
            actor=actor,
            resource_type="space",
            row=space,
            action=action,
            before=before,
        )
    return space


async def set_archived(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space_id: uuid.UUID,
    archived: bool,
    if_match: str | None,
) -> Space:
    """Archive (the page leaves the lists, its versions stay) or bring back a space."""
    space = await find_space(session=session, settings=settings, actor=actor, space_id=space_id)
    if archived:
        _check_editor(actor, space)
    elif actor.user_id not in (space.owner_user_id, space.author_id):
        raise Forbidden(
            "Seul son auteur ou son propriétaire peut rétablir cet espace.",
            "Only its author or owner may bring this space back.",
        )
    check_if_match(space, if_match)
    before = versions.snapshot(space)
    space.status = (SpaceStatus.ARCHIVED if archived else SpaceStatus.ACTIVE).value
    return await _saved(session, actor, space, before, "archive" if archived else "restore")


async def space_versions(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> list[RecordVersion]:
    space = await find_space(session=session, settings=settings, actor=actor, space_id=space_id)
    found = await versions.visible_versions(
        session=session, subject=access.subject_of(settings, actor), resource_id=space.id
    )
    await access.delivered(
        session,
        actor,
        action="space.versions",
        kind="space",
        rows=[space],
        detail={"n": len(found)},
    )
    return found
