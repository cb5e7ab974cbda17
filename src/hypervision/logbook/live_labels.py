"""How the live hub reads the current labels of the main courante's records (``live.current``):
an entry and a situation by their own label, a comment by its label and its entry's, an
attachment by its entry's."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.live.current import register
from hypervision.logbook.models import Attachment, Comment, Entry, Situation
from hypervision.policy.labels import Label


async def _entries(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Label]]:
    rows = await session.scalars(select(Entry).where(Entry.id.in_(ids)))
    return {row.id: [row.label] for row in rows}


async def _situations(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Label]]:
    rows = await session.scalars(select(Situation).where(Situation.id.in_(ids)))
    return {row.id: [row.label] for row in rows}


async def _comments(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Label]]:
    rows = await session.execute(
        select(Comment, Entry).join(Entry, Entry.id == Comment.entry_id).where(Comment.id.in_(ids))
    )
    return {comment.id: [comment.label, entry.label] for comment, entry in rows.all()}


async def _attachments(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Label]]:
    rows = await session.execute(
        select(Attachment.id, Entry)
        .join(Entry, Entry.id == Attachment.entry_id)
        .where(Attachment.id.in_(ids))
    )
    return {rid: [entry.label] for rid, entry in rows.all()}


def register_kinds() -> None:
    register("entry", _entries)
    register("situation", _situations)
    register("comment", _comments)
    register("attachment", _attachments)
