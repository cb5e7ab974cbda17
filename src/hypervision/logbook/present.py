"""Rows to API shapes (names looked up once per response, never one query per row)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.core.markdown import render
from hypervision.logbook.labelling import Directory
from hypervision.logbook.models import (
    Comment,
    Entry,
    LabelChangeRequest,
    RecordVersion,
    Severity,
    Situation,
    Status,
)
from hypervision.logbook.schemas import (
    CommentRead,
    EntryRead,
    LabelRequestRead,
    SituationRead,
    VersionRead,
)
from hypervision.policy.labels import Label


async def directory_for(
    session: AsyncSession,
    rows: Sequence[Entry | Situation | Comment | RecordVersion | LabelChangeRequest],
) -> Directory:
    ids: set[uuid.UUID | None] = set()
    for row in rows:
        for name in ("author_id", "validated_by", "actor_id", "requested_by", "decided_by"):
            ids.add(getattr(row, name, None))
    return await Directory.load(session, ids)


def entry_read(entry: Entry, names: Directory) -> EntryRead:
    return EntryRead(
        id=entry.id,
        occurred_at=entry.occurred_at,
        recorded_at=entry.recorded_at,
        updated_at=entry.updated_at,
        author=names.user(entry.author_id) or "?",
        organisation=names.org(entry.organisation_id),
        category=entry.category,
        severity=Severity(entry.severity),
        status=Status(entry.status),
        title=entry.title,
        body=entry.body,
        body_html=render(entry.body),
        location=entry.location,
        tags=entry.tags,
        situation_id=entry.situation_id,
        duplicate_of_id=entry.duplicate_of_id,
        follow_up_of_id=entry.follow_up_of_id,
        validated_at=entry.validated_at,
        validated_by=names.user(entry.validated_by),
        label=names.label(entry.label),
        version=entry.version,
    )


async def entries_read(session: AsyncSession, entries: Sequence[Entry]) -> list[EntryRead]:
    names = await directory_for(session, entries)
    return [entry_read(e, names) for e in entries]


def version_read(version: RecordVersion, names: Directory) -> VersionRead:
    return VersionRead(
        version=version.version,
        at=version.at,
        actor=names.user(version.actor_id),
        action=version.action,
        changes=version.changes,
        snapshot=version.snapshot,
    )


def situation_read(situation: Situation, names: Directory) -> SituationRead:
    return SituationRead(
        id=situation.id,
        title=situation.title,
        description=situation.description,
        severity=Severity(situation.severity),
        status=Status(situation.status),
        started_at=situation.started_at,
        organisation=names.org(situation.organisation_id),
        author=names.user(situation.author_id) or "?",
        label=names.label(situation.label),
        version=situation.version,
    )


def comment_read(comment: Comment, names: Directory) -> CommentRead:
    return CommentRead(
        id=comment.id,
        entry_id=comment.entry_id,
        author=names.user(comment.author_id) or "?",
        organisation=names.org(comment.organisation_id),
        body=comment.body,
        body_html=render(comment.body),
        created_at=comment.created_at,
        label=names.label(comment.label),
    )


def label_request_read(request: LabelChangeRequest, names: Directory) -> LabelRequestRead:
    stored = request.label
    label = Label(
        level=stored["level"],
        need_to_know=frozenset(stored["need_to_know"]),
        audience=frozenset(stored["audience"]),
        owner=stored.get("owner", ""),
    )
    return LabelRequestRead(
        id=request.id,
        resource_type=request.resource_type,
        resource_id=request.resource_id,
        requested_by=names.user(request.requested_by) or "?",
        requested_at=request.requested_at,
        label=names.label(label),
        reason=request.reason,
        status=request.status,
        decided_by=names.user(request.decided_by),
        decided_at=request.decided_at,
    )
