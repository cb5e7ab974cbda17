"""The hub's records as the API and the pages present them (names and codes, not ids)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.core.markdown import render as markdown
from hypervision.db import utcnow
from hypervision.hub.announcements import is_shown
from hypervision.hub.models import Announcement, DutyAssignment, HubDocument
from hypervision.hub.schemas import AnnouncementRead, DocumentRead, DutyRead
from hypervision.records.labelling import Directory


async def names_for(
    session: AsyncSession,
    rows: Sequence[DutyAssignment | HubDocument | Announcement],
) -> Directory:
    users = {row.user_id if isinstance(row, DutyAssignment) else row.author_id for row in rows}
    return await Directory.load(session, users)


def duty_read(row: DutyAssignment, names: Directory, at: datetime | None = None) -> DutyRead:
    now = at or utcnow()
    return DutyRead(
        id=row.id,
        person=(names.full_name(row.user_id) if row.user_id else None) or row.person_name,
        username=names.user(row.user_id),
        organisation=names.org(row.organisation_id),
        room=row.room,
        function=row.function,
        phone=row.phone,
        radio=row.radio,
        email=row.email,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        on_duty=row.starts_at <= now < row.ends_at,
        note=row.note,
        version=row.version,
        updated_at=row.updated_at,
    )


def document_read(row: HubDocument, names: Directory) -> DocumentRead:
    return DocumentRead(
        id=row.id,
        title=row.title,
        description=row.description,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        status=row.status,
        organisation=names.org(row.organisation_id),
        author=names.user(row.author_id) or "?",
        label=names.label(row.label),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        download=f"/api/v1/hub/documents/{row.id}/file",
    )


def announcement_read(
    row: Announcement, names: Directory, at: datetime | None = None
) -> AnnouncementRead:
    return AnnouncementRead(
        id=row.id,
        title=row.title,
        body=row.body,
        body_html=markdown(row.body),
        importance=row.importance,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        shown=is_shown(row, at or utcnow()),
        organisation=names.org(row.organisation_id),
        author=names.full_name(row.author_id) or "?",
        label=names.label(row.label),
        version=row.version,
        created_at=row.created_at,
    )
