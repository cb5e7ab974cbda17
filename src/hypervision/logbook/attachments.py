"""Files attached to entries: stored through a blob store, visible exactly when their entry
is, every use audited with the attachment ids. What a file may be is decided in ``uploads``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Forbidden, HiddenOrMissing
from hypervision.events.outbox import emit
from hypervision.identity.principal import Principal
from hypervision.logbook import entries
from hypervision.logbook.models import ATTACHMENT_KIND, Attachment, Entry
from hypervision.logbook.uploads import (
    AttachmentTooLarge,
    AttachmentUnavailable,
    clean_filename,
    inspect_content,
)
from hypervision.storage.blobs import BlobNotFound, BlobStore

log = logging.getLogger("hypervision.attachments")


# --- service functions ----------------------------------------------------------------------


async def attachable_entry(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> Entry:
    """The entry, if the actor may see it (404 otherwise) and edit it (403 otherwise)."""
    entry = await entries.find_visible(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    if not entries.may_edit(actor, entry):
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle joignent un fichier à une entrée.",
            "Only the owner organisation and watch officers attach a file to an entry.",
        )
    return entry


async def add_attachment(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    blobs: BlobStore,
    entry_id: uuid.UUID,
    filename: str | None,
    data: bytes,
) -> Attachment:
    """Check, clean and store a file; write its row, outbox event and audit record in the
    caller's transaction. The blob is written first (durably); if the transaction does not
    commit, the caller deletes it (see ``attachments_api``) or it stays unreferenced and
    unreachable until :func:`sweep_orphan_blobs` removes it."""
    entry = await attachable_entry(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    limit = settings.attachment_max_bytes
    if len(data) > limit:
        raise AttachmentTooLarge(limit)
    cleaned = await asyncio.to_thread(inspect_content, data, filename or "")
    if len(cleaned.data) > limit:
        raise AttachmentTooLarge(limit)
    if actor.user_id is None:
        raise Forbidden()
    key = await blobs.put(cleaned.data)
    row = Attachment(
        entry_id=entry.id,
        uploaded_by=actor.user_id,
        filename=clean_filename(filename, cleaned.content_type),
        content_type=cleaned.content_type,
        size=len(cleaned.data),
        sha256=hashlib.sha256(cleaned.data).hexdigest(),
        storage_key=key,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="attachment.create",
        resource_type="attachment",
        resource_ids=[row.id],
        labels=[entry.label_level],
        detail={
            "entry_id": str(entry.id),
            "content_type": row.content_type,
            "size": row.size,
            "sha256": row.sha256,
        },
    )
    await emit(
        session,
        type="attachment.create",
        resource_type="attachment",
        resource_id=row.id,
        label=entry.label.as_dict(),
        payload={"id": str(row.id), "entry_id": str(entry.id), "action": "create"},
    )
    await session.flush()
    return row


async def list_attachments(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> list[Attachment]:
    entry = await entries.find_visible(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    rows = list(
        await session.scalars(
            select(Attachment)
            .where(Attachment.entry_id == entry.id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="attachment.list",
        resource_type="attachment",
        resource_ids=[row.id for row in rows],
        labels=[entry.label_level],
        detail={"entry_id": str(entry.id)},
    )
    return rows


async def get_attachment(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    blobs: BlobStore,
    attachment_id: uuid.UUID,
) -> tuple[Attachment, bytes]:
    """The attachment and its bytes when its entry is visible; 404 exactly as for a missing
    id otherwise. The bytes are checked against the stored SHA-256 before delivery."""
    query = (
        entries.visible(session, settings, actor)
        .join(Attachment, Attachment.entry_id == Entry.id)
        .where(Attachment.id == attachment_id)
        .add_columns(Attachment)
    )
    found = (await session.execute(query)).one_or_none()
    if found is None:
        fr, en = ATTACHMENT_KIND.missing
        raise HiddenOrMissing(
            fr, en, resource_type="attachment", resource_id=attachment_id, model=Attachment
        )
    entry, row = found
    try:
        data = await blobs.read(row.storage_key)
    except BlobNotFound:
        log.error("blob of attachment %s is missing", row.id)
        raise AttachmentUnavailable() from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        log.error("blob of attachment %s does not match its SHA-256", row.id)
        raise AttachmentUnavailable()
    await audit.record(
        session=session,
        actor=actor,
        action="attachment.read",
        resource_type="attachment",
        resource_ids=[row.id],
        labels=[entry.label_level],
        detail={"entry_id": str(entry.id)},
    )
    return row, data


async def sweep_orphan_blobs(
    *,
    session: AsyncSession,
    actor: Principal,
    blobs: BlobStore,
    older_than: timedelta = timedelta(hours=1),
    also_used: Sequence[InstrumentedAttribute[str]] = (),
) -> list[str]:
    """Delete blobs that no attachment row references (left by a crash between the blob
    write and the commit). Only blobs older than ``older_than`` are considered, so uploads
    in flight are never touched. ``also_used``: the storage-key columns of the other
    domains that keep files in the same store (the hub's documents); a blob one of them
    names is kept. Run it with a role that sees every row of them."""
    candidates = [key async for key in blobs.list_keys(older_than=older_than)]
    orphans: list[str] = []
    for start in range(0, len(candidates), 500):
        batch = candidates[start : start + 500]
        used: set[str] = set()
        for column in (Attachment.storage_key, *also_used):
            used.update(await session.scalars(select(column).where(column.in_(batch))))
        orphans.extend(key for key in batch if key not in used)
    for key in orphans:
        await blobs.delete(key)
    await audit.record(
        session=session,
        actor=actor,
        action="attachment.sweep",
        resource_type="blob",
        detail={"examined": len(candidates), "deleted": len(orphans)},
    )
    return orphans
