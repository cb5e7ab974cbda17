"""Comments API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import comments, present
from hypervision.logbook.schemas import CommentCreate, CommentRead

router = APIRouter(
    prefix="/api/v1",
    tags=["comments"],
    dependencies=CREDENTIALS,
    responses=SIGNED_IN | NOT_FOUND,
)


@router.get("/entries/{entry_id}/comments", response_model=list[CommentRead])
async def list_comments(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, entry_id: uuid.UUID
) -> list[CommentRead]:
    rows = await comments.list_comments(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    names = await present.directory_for(session, rows, settings=settings, actor=actor)
    return [present.comment_read(c, names) for c in rows]


@router.post(
    "/entries/{entry_id}/comments", response_model=CommentRead, status_code=201, responses=CONFLICT
)
async def add_comment(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    data: CommentCreate,
) -> CommentRead:
    """Comment an entry; the comment carries the entry's label unless another is given."""
    comment = await comments.add_comment(
        session=session, settings=settings, actor=actor, entry_id=entry_id, data=data
    )
    return present.comment_read(
        comment, await present.directory_for(session, [comment], settings=settings, actor=actor)
    )
