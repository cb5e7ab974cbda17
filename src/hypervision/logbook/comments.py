"""Comments on entries: labelled (by default like their entry), audited, immutable."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.events.outbox import emit
from hypervision.identity.principal import Principal
from hypervision.logbook import fulltext
from hypervision.logbook.entries import find_visible
from hypervision.logbook.models import Comment
from hypervision.logbook.schemas import CommentCreate
from hypervision.policy.rules import Action, authorize
from hypervision.records import access
from hypervision.records.labelling import resolve_label


async def add_comment(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    data: CommentCreate,
) -> Comment:
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    authorize(actor, Action.WRITE)
    assert actor.user_id is not None and actor.organisation_id is not None
    label = (
        await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
        if data.label is not None
        else entry.label
    )
    comment = Comment(
        entry_id=entry.id,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        body=data.body,
    )
    comment.set_label(label)
    session.add(comment)
    await session.flush()
    await fulltext.index_comment(session, comment)
    await audit.record(
        session=session,
        actor=actor,
        action="comment.create",
        resource_type="comment",
        resource_ids=[comment.id],
        labels=[comment.label_level],
        detail={"entry_id": str(entry.id)},
    )
    await emit(
        session,
        type="comment.create",
        resource_type="comment",
        resource_id=comment.id,
        # both labels apply to a comment: a stream checks every label in "and"
        label={**comment.label.as_dict(), "and": [entry.label.as_dict()]},
        payload={"id": str(comment.id), "entry_id": str(entry.id)},
    )
    return comment


async def list_comments(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> list[Comment]:
    """Comments the actor may see on an entry they may see (both labels apply)."""
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    query = (
        access.visible(session, settings, actor, Comment)
        .where(Comment.entry_id == entry.id)
        .order_by(Comment.created_at, Comment.id)
    )
    rows = list(await session.scalars(query))
    await access.delivered(
        session,
        actor,
        action="comment.list",
        kind="comment",
        rows=rows,
        detail={"entry_id": str(entry.id)},
    )
    return rows
