"""Spaces API: list, create, read, change, archive, versions, export, import, templates and
each module's data (read as the caller)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import NotFound
from hypervision.core.openapi import CREDENTIALS, NOT_FOUND, PRECONDITION, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.principal import Principal
from hypervision.logbook import present
from hypervision.logbook.schemas import VersionRead
from hypervision.records.etags import etag
from hypervision.records.labelling import Directory
from hypervision.spaces import modules, service
from hypervision.spaces.models import Space
from hypervision.spaces.schemas import (
    CONFIGS,
    ModuleData,
    ModuleRead,
    ModulesData,
    SpaceCreate,
    SpaceExport,
    SpaceImport,
    SpacePage,
    SpaceRead,
    SpaceUpdate,
    TemplateRead,
)
from hypervision.spaces.templates import TEMPLATES

router = APIRouter(prefix="/api/v1", tags=["spaces"], dependencies=CREDENTIALS, responses=SIGNED_IN)
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


def english(request: Request) -> bool:
    return request.headers.get("accept-language", "").lower().startswith("en")


async def space_reads(
    session: AsyncSession, actor: Principal, rows: list[Space]
) -> list[SpaceRead]:
    people = {p for s in rows for p in (*s.people, *s.editors)}
    owners = {str(s.owner_user_id) for s in rows if s.owner_user_id}
    names = await service.usernames(session, people | owners)
    directory = await Directory.load(session, [], {s.organisation_id for s in rows})
    return [
        SpaceRead(
            id=s.id,
            title=s.title,
            description=s.description,
            template=s.template,
            modules=[ModuleRead(**m, known=m.get("type") in CONFIGS) for m in s.modules],
            label=directory.label(s.label),
            organisation=directory.org(s.organisation_id),
            owner=names.get(str(s.owner_user_id)) if s.owner_user_id else None,
            people=sorted(names.get(p, "?") for p in s.people),
            editors=sorted(names.get(p, "?") for p in s.editors),
            status=s.status,
            can_edit=service.may_edit(actor, s),
            version=s.version,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )
        for s in rows
    ]


async def _one(
    session: AsyncSession, actor: Principal, space: Space, response: Response
) -> SpaceRead:
    response.headers["ETag"] = etag(space)
    return (await space_reads(session, actor, [space]))[0]


@router.get("/spaces", response_model=SpacePage)
async def list_spaces(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=100)] = None,
    owner: Annotated[str | None, Query(pattern="^(me|organisation)$")] = None,
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SpacePage:
    """The spaces the caller may read (``owner=me``: theirs; ``organisation``: their
    organisation's), most recently changed first."""
    rows, total = await service.list_spaces(
        session=session,
        settings=settings,
        actor=actor,
        q=q,
        owner=owner,
        archived=archived,
        limit=limit,
        offset=offset,
    )
    items = await space_reads(session, actor, rows)
    return SpacePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/space-templates", response_model=list[TemplateRead])
async def list_templates(actor: CurrentPrincipal) -> list[TemplateRead]:
    """The templates a space may start from (``template`` of POST /spaces)."""
    return [
        TemplateRead(code=t.code, title=t.title, description=t.description, modules=len(t.modules))
        for t in TEMPLATES.values()
    ]


@router.post("/spaces", response_model=SpaceRead, status_code=201)
async def create_space(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: SpaceCreate,
    response: Response,
) -> SpaceRead:
    """A space, empty, from a template or with its modules; its label says who may read it
    (default: the author's organisation), ``people`` narrows it to named persons."""
    space = await service.create_space(session=session, settings=settings, actor=actor, data=data)
    return await _one(session, actor, space, response)


@router.post("/spaces/import", response_model=SpaceRead, status_code=201)
async def import_space(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: SpaceImport,
    response: Response,
) -> SpaceRead:
    """A space from a file made by GET /spaces/{id}/export. Modules of a type this version
    does not know are kept and shown as a message."""
    space = await service.import_space(session=session, settings=settings, actor=actor, data=data)
    return await _one(session, actor, space, response)


@router.get("/spaces/{space_id}", response_model=SpaceRead, responses=NOT_FOUND)
async def get_space(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    response: Response,
) -> SpaceRead:
    space = await service.get_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    return await _one(session, actor, space, response)


@router.patch(
    "/spaces/{space_id}", response_model=SpaceRead, responses={**NOT_FOUND, **PRECONDITION}
)
async def update_space(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    data: SpaceUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> SpaceRead:
    """Change a space (its editors only; ``If-Match`` required). ``modules`` replaces the
    whole list: each change is a version, so an edit can be undone by saving the one before."""
    space = await service.update_space(
        session=session,
        settings=settings,
        actor=actor,
        space_id=space_id,
        data=data,
        if_match=if_match,
    )
    return await _one(session, actor, space, response)


@router.post(
    "/spaces/{space_id}/archive", response_model=SpaceRead, responses={**NOT_FOUND, **PRECONDITION}
)
async def archive_space(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
) -> SpaceRead:
    """Archive a space: it leaves the lists; its versions stay readable."""
    space = await service.set_archived(
        session=session,
        settings=settings,
        actor=actor,
        space_id=space_id,
        archived=True,
        if_match=if_match,
    )
    return await _one(session, actor, space, response)


@router.get("/spaces/{space_id}/versions", response_model=list[VersionRead], responses=NOT_FOUND)
async def space_versions(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, space_id: uuid.UUID
) -> list[VersionRead]:
    found = await service.space_versions(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    names = await Directory.load(session, [v.actor_id for v in found])
    return [present.version_read(v, names) for v in found]


@router.get("/spaces/{space_id}/export", response_model=SpaceExport, responses=NOT_FOUND)
async def export_space(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, space_id: uuid.UUID
) -> Response:
    """The space as a JSON file to import elsewhere (layout and configuration only: no
    data of its modules)."""
    space = await service.get_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    read = (await space_reads(session, actor, [space]))[0]
    body = SpaceExport(
        title=space.title,
        description=space.description,
        template=space.template,
        modules=space.modules,
        label=read.label,
        people=read.people,
        editors=read.editors,
    )
    return Response(
        body.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="espace-{space.id}.json"'},
    )


@router.get(
    "/spaces/{space_id}/modules/data",
    response_model=ModulesData,
    responses=NOT_FOUND,
)
async def modules_data(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    listed: Annotated[
        str,
        Query(
            alias="modules",
            min_length=1,
            max_length=modules.MODULE_LIST_MAX,
            description="The modules' ids, comma-separated (at most 40), e.g. `feed,map,kpi`.",
        ),
    ],
) -> ModulesData:
    """What several modules of a space show the caller, in one answer (a page's live
    refresh: the modules an event concerns, ADR 0051): each as ``GET
    /spaces/{id}/modules/{mid}/data`` answers it, read through the policy as the caller — a
    module whose source the caller may not see is ``unavailable`` (neutral). An id the space
    does not have: 404 naming it; none or more than 40: 422. Every module's read is audited
    (one record each, and a shared result's reads again)."""
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    wanted = modules.pick(space, listed)
    found = await modules.answers(
        session=session,
        settings=settings,
        actor=actor,
        space=space,
        wanted=wanted,
        french=not english(request),
        shared=request.app.state.module_cache,
    )
    return ModulesData(items=[answer.data for answer in found])


@router.get(
    "/spaces/{space_id}/modules/{module_id}/data", response_model=ModuleData, responses=NOT_FOUND
)
async def module_data(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    space_id: uuid.UUID,
    module_id: Annotated[str, Path(max_length=32)],
) -> ModuleData:
    """What one module shows the caller, read through the policy as the caller: a module
    whose source the caller may not see answers ``unavailable`` (neutral, whatever the
    reason), never an error."""
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    module = modules.find_module(space, module_id)
    if module is None:
        raise NotFound("Module introuvable dans cet espace.", "No such module in this space.")
    return await modules.module_data(
        session=session,
        settings=settings,
        actor=actor,
        space=space,
        module=module,
        french=not english(request),
        shared=request.app.state.module_cache,
    )
