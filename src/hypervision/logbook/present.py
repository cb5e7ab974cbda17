"""Rows to API shapes (names looked up once per response, never one query per row)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.markdown import render
from hypervision.identity.principal import Principal
from hypervision.logbook.models import (
    Comment,
    Entry,
    LabelChangeRequest,
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
from hypervision.records import access
from hypervision.records.labelling import Directory
from hypervision.records.models import RecordVersion

Row = Entry | Situation | Comment | RecordVersion | LabelChangeRequest

# Fields of an entry (and of its version snapshots) that name another protected record.
REFERENCES: dict[str, type[Entry] | type[Situation]] = {
    "situation_id": Situation,
    "duplicate_of_id": Entry,
    "follow_up_of_id": Entry,
}


async def directory_for(
    session: AsyncSession, rows: Sequence[Row], *, settings: Settings, actor: Principal
) -> Directory:
    """Names for presenting ``rows`` to ``actor``, and which of the records they link to the
    actor may see (one query per kind of target, whatever the number of rows)."""
    ids: set[uuid.UUID | None] = set()
    for row in rows:
        for name in ("author_id", "validated_by", "actor_id", "requested_by", "decided_by"):
            ids.add(getattr(row, name, None))
    names = await Directory.load(session, ids, _organisations(rows))
    names.references = await visible_references(session, settings, actor, rows)
    return names


def _organisations(rows: Sequence[Row]) -> set[uuid.UUID] | None:
    """The organisations that presenting ``rows`` names (owner and audience), when all are
    records with a label of their own; None (every organisation) otherwise."""
    wanted: set[uuid.UUID] = set()
    for row in rows:
        if not isinstance(row, Entry | Situation | Comment):
            return None
        wanted.add(row.organisation_id)
        wanted.update(uuid.UUID(o) for o in row.label.audience)
    return wanted


def _linked(rows: Sequence[Row]) -> dict[type[Entry] | type[Situation], set[uuid.UUID]]:
    """Ids named by the reference fields of entries and of entry versions, by target model."""
    wanted: dict[type[Entry] | type[Situation], set[uuid.UUID]] = {}
    for row in rows:
        values: list[Any] = []
        if isinstance(row, Entry):
            values = [(name, getattr(row, name)) for name in REFERENCES]
        elif isinstance(row, RecordVersion) and row.resource_type == "entry":
            for name in REFERENCES:
                values.append((name, (row.snapshot or {}).get(name)))
                change = (row.changes or {}).get(name) or {}
                values += [(name, change.get("from")), (name, change.get("to"))]
        for name, value in values:
            if value:
                target = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
                wanted.setdefault(REFERENCES[name], set()).add(target)
    return wanted


async def visible_references(
    session: AsyncSession, settings: Settings, actor: Principal, rows: Sequence[Row]
) -> frozenset[uuid.UUID]:
    seen: set[uuid.UUID] = set()
    for model, ids in _linked(rows).items():
        query = access.visible(session, settings, actor, model).where(model.id.in_(ids))
        seen.update(await session.scalars(query.with_only_columns(model.id)))
    return frozenset(seen)


def redact_references(values: dict[str, Any], names: Directory) -> dict[str, Any]:
    """A snapshot or change set without the ids of records the reader may not see."""
    out = dict(values)
    for name in REFERENCES:
        value = out.get(name)
        if isinstance(value, dict):  # a change: {"from": id, "to": id}
            out[name] = {k: _ref_text(v, names) for k, v in value.items()}
        elif name in out:
            out[name] = _ref_text(value, names)
    return out


def _ref_text(value: Any, names: Directory) -> str | None:
    target = names.ref(value) if value else None
    return str(target) if target else None


def entry_read(entry: Entry, names: Directory) -> EntryRead:
    return EntryRead(
        id=entry.id,
        occurred_at=entry.occurred_at,
        recorded_at=entry.recorded_at,
        updated_at=entry.updated_at,
        author=names.user(entry.author_id) or "?",
        author_name=names.full_name(entry.author_id) or "?",
        organisation=names.org(entry.organisation_id),
        category=entry.category,
        severity=Severity(entry.severity),
        status=Status(entry.status),
        title=entry.title,
        body=entry.body,
        body_html=render(entry.body),
        location=entry.location,
        tags=entry.tags,
        situation_id=names.ref(entry.situation_id),
        duplicate_of_id=names.ref(entry.duplicate_of_id),
        follow_up_of_id=names.ref(entry.follow_up_of_id),
        validated_at=entry.validated_at,
        validated_by=names.user(entry.validated_by),
        label=names.label(entry.label),
        version=entry.version,
    )


async def entries_read(
    session: AsyncSession, entries: Sequence[Entry], *, settings: Settings, actor: Principal
) -> list[EntryRead]:
    names = await directory_for(session, entries, settings=settings, actor=actor)
    return [entry_read(e, names) for e in entries]


def version_read(version: RecordVersion, names: Directory) -> VersionRead:
    return VersionRead(
        version=version.version,
        at=version.at,
        actor=names.user(version.actor_id),
        action=version.action,
        changes=redact_references(version.changes, names),
        snapshot=redact_references(version.snapshot, names),
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
        author_name=names.full_name(situation.author_id) or "?",
        label=names.label(situation.label),
        version=situation.version,
    )


def comment_read(comment: Comment, names: Directory) -> CommentRead:
    return CommentRead(
        id=comment.id,
        entry_id=comment.entry_id,
        author=names.user(comment.author_id) or "?",
        author_name=names.full_name(comment.author_id) or "?",
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
