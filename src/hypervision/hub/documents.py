"""Shared documents of the hub: a file stored like an entry's attachment (the same checks:
type from the content, images re-encoded, size limit), with a title, a description and a
label. A protected kind: every read through the policy and audited, hidden looks missing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any

from sqlalchemy import Select, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Forbidden
from hypervision.db import utcnow
from hypervision.hub.models import DOCUMENT_KIND, DocumentStatus, HubDocument
from hypervision.hub.schemas import DocumentUpdate
from hypervision.identity.principal import Principal
from hypervision.logbook.uploads import (
    AttachmentTooLarge,
    AttachmentUnavailable,
    clean_filename,
    inspect_content,
)
from hypervision.policy.rules import Action, allowed, authorize
from hypervision.records import access, versions
from hypervision.records.labelling import resolve_label
from hypervision.records.schemas import LabelIn
from hypervision.storage.blobs import BlobNotFound, BlobStore

log = logging.getLogger("hypervision.hub")
KIND = DOCUMENT_KIND.name
PAGE_MAX = 200


def visible_documents(
    session: AsyncSession, settings: Settings, actor: Principal
) -> Select[HubDocument]:
    return access.visible(session, settings, actor, HubDocument)


async def find_document(
    *, session: AsyncSession, settings: Settings, actor: Principal, document_id: uuid.UUID
) -> HubDocument:
    """The document, or 404 exactly as if it did not exist when the actor may not see it."""
    return await access.find_in(
        session, visible_documents(session, settings, actor), DOCUMENT_KIND, document_id
    )


def may_edit(actor: Principal, document: HubDocument) -> bool:
    """Writers of the owner organisation, and watch officers (as for entries)."""
    own = allowed(actor, Action.WRITE) and document.organisation_id == actor.organisation_id
    return own or allowed(actor, Action.TRIAGE)


async def add_document(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    blobs: BlobStore,
    title: str,
    description: str,
    label: LabelIn | None,
    filename: str | None,
    data: bytes,
) -> HubDocument:
    """Check, clean and store the file, then write the row, its first version, outbox event
    and audit record in the caller's transaction (the blob first: see ``attachments_api``)."""
    authorize(actor, Action.WRITE)
    if actor.user_id is None or actor.organisation_id is None:
        raise Forbidden()
    resolved = await resolve_label(session=session, settings=settings, actor=actor, data=label)
    limit = settings.attachment_max_bytes
    if len(data) > limit:
        raise AttachmentTooLarge(limit)
    cleaned = await asyncio.to_thread(inspect_content, data, filename or "")
    if len(cleaned.data) > limit:
        raise AttachmentTooLarge(limit)
    key = await blobs.put(cleaned.data)
    now = utcnow()
    row = HubDocument(
        title=title,
        description=description,
        filename=clean_filename(filename, cleaned.content_type),
        content_type=cleaned.content_type,
        size=len(cleaned.data),
        sha256=hashlib.sha256(cleaned.data).hexdigest(),
        storage_key=key,
        status=DocumentStatus.ACTIVE.value,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    row.set_label(resolved)
    session.add(row)
    await versions.record_change(
        session=session, actor=actor, resource_type=KIND, row=row, action="create", before=None
    )
    return row


async def update_document(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    document_id: uuid.UUID,
    data: DocumentUpdate,
) -> HubDocument:
    """Rename, describe, archive or restore a document (a new version when anything changed)."""
    authorize(actor, Action.WRITE)
    row = await find_document(
        session=session, settings=settings, actor=actor, document_id=document_id
    )
    if not may_edit(actor, row):
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle modifient ce document.",
            "Only the owner organisation and watch officers change this document.",
        )
    before = versions.snapshot(row)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(row, name, value.value if isinstance(value, DocumentStatus) else value)
    if versions.snapshot(row) == before:
        return row
    row.version += 1
    row.updated_at = utcnow()
    action = "archive" if changes.get("status") == DocumentStatus.ARCHIVED else "update"
    await versions.record_change(
        session=session, actor=actor, resource_type=KIND, row=row, action=action, before=before
    )
    return row


async def list_documents(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    include_archived: bool = False,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[HubDocument], int | None]:
    """A page of the visible documents, newest first, and the next page's offset."""
    limit = max(1, min(limit, PAGE_MAX))
    query = visible_documents(session, settings, actor)
    if not include_archived:
        query = query.where(HubDocument.status == DocumentStatus.ACTIVE.value)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(HubDocument.title).like(like),
                func.lower(HubDocument.description).like(like),
            )
        )
    query = query.order_by(HubDocument.created_at.desc(), HubDocument.id).offset(offset)
    rows = list(await session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    await access.delivered(session, actor, action=f"{KIND}.list", kind=KIND, rows=rows)
    return rows, (offset + limit if more else None)


async def read_document(
    *, session: AsyncSession, settings: Settings, actor: Principal, document_id: uuid.UUID
) -> HubDocument:
    row = await find_document(
        session=session, settings=settings, actor=actor, document_id=document_id
    )
    await access.delivered(session, actor, action=f"{KIND}.read", kind=KIND, rows=[row])
    return row


async def download_document(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    blobs: BlobStore,
    document_id: uuid.UUID,
) -> tuple[HubDocument, bytes]:
    """The document and its bytes, checked against the stored SHA-256; audited."""
    row = await find_document(
        session=session, settings=settings, actor=actor, document_id=document_id
    )
    try:
        data = await blobs.read(row.storage_key)
    except BlobNotFound:
        log.error("blob of document %s is missing", row.id)
        raise AttachmentUnavailable() from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        log.error("blob of document %s does not match its SHA-256", row.id)
        raise AttachmentUnavailable()
    await audit.record(
        session=session,
        actor=actor,
        action=f"{KIND}.download",
        resource_type=KIND,
        resource_ids=[row.id],
        labels=[row.label_level],
        detail={"sha256": row.sha256, "size": row.size},
    )
    return row, data
