"""Attachments API: upload a file to an entry, list an entry's files, download one.

The upload is read (with a hard byte limit) before the database transaction starts, so a
slow client never holds a connection or a lock. The blob is written before the row; if the
transaction does not commit, the blob is deleted again (``tracked_blobs``), except when the
database is unreachable during the commit, where the outcome is unknown: the blob is then
kept, unreferenced and unreachable, until ``attachments.sweep_orphan_blobs`` removes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hypervision.config import Settings
from hypervision.core.deps import SESSION_COOKIE, DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid, Unauthorized, is_database_down
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN, errors
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import attachments, uploads
from hypervision.logbook.models import Attachment
from hypervision.logbook.schemas import AttachmentRead
from hypervision.records.labelling import Directory
from hypervision.storage.blobs import BlobStore, LocalBlobStore, TrackedBlobs

log = logging.getLogger("hypervision.attachments")

router = APIRouter(
    prefix="/api/v1",
    tags=["attachments"],
    dependencies=CREDENTIALS,
    responses=SIGNED_IN | NOT_FOUND,
)

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
FILE_FIELD = "file"


class MultipartExpected(AppError):
    status, code = 415, "multipart_expected"
    fr = "Envoyez le fichier en multipart/form-data, dans le champ « file »."
    en = "Send the file as multipart/form-data, in the 'file' field."


# --- dependencies ---------------------------------------------------------------------------


def blob_store(request: Request) -> BlobStore:
    """The application's blob store: ``app.state.blobs`` when set, else a local store under
    ``settings.blob_dir``, created on first use and kept on ``app.state``."""
    store: BlobStore | None = getattr(request.app.state, "blobs", None)
    if store is None:
        settings: Settings = request.app.state.settings
        store = LocalBlobStore(settings.blob_dir)
        request.app.state.blobs = store
    return store


BlobsDep = Annotated[BlobStore, Depends(blob_store)]


async def tracked_blobs(request: Request) -> AsyncIterator[TrackedBlobs]:
    """The blob store for a writing request. Declared *before* ``DbSession`` in an endpoint,
    so that it exits *after* the transaction: an error there, the commit's included, reaches
    it and the blobs written by the request are deleted (no orphan stays behind)."""
    tracked = TrackedBlobs(blob_store(request))
    try:
        yield tracked
    except BaseException as exc:
        if tracked.written and isinstance(exc, Exception) and is_database_down(exc):
            # The commit may or may not have happened: keep the blob (swept later if orphan).
            log.warning("database unreachable: %d blob(s) kept for the sweep", len(tracked.written))
        else:
            await tracked.discard()
        raise


TrackedBlobsDep = Annotated[TrackedBlobs, Depends(tracked_blobs, scope="function")]


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


async def _capped(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise uploads.AttachmentTooLarge(cap - MULTIPART_OVERHEAD)
        yield chunk


async def read_upload(request: Request, settings: SettingsDep) -> Upload:
    """The uploaded file, read with a hard limit (``attachment_max_bytes`` plus multipart
    overhead) before any database work; requests without credentials are not read at all."""
    if not request.headers.get("authorization") and SESSION_COOKIE not in request.cookies:
        raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise MultipartExpected()
    limit = settings.attachment_max_bytes
    cap = limit + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise uploads.AttachmentTooLarge(limit)
    parser = MultiPartParser(
        request.headers, _capped(request, cap), max_files=1, max_fields=10, max_part_size=1024
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise Invalid(
            "Formulaire multipart invalide : un seul fichier, dans le champ « file ».",
            "Invalid multipart form: a single file, in the 'file' field.",
            extra={"fields": [{"field": FILE_FIELD, "message": "invalid multipart data"}]},
        ) from None
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise Invalid(
                "Champ « file » : fichier obligatoire.",
                "Field 'file': a file is required.",
                extra={"fields": [{"field": FILE_FIELD, "message": "file required"}]},
            )
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise uploads.AttachmentTooLarge(limit)
        return Upload(filename=upload.filename, data=data)
    finally:
        await form.close()


UploadDep = Annotated[Upload, Depends(read_upload)]


# --- presentation ---------------------------------------------------------------------------


async def _read_models(session: DbSession, rows: list[Attachment]) -> list[AttachmentRead]:
    names = await Directory.load(session, {row.uploaded_by for row in rows})
    return [
        AttachmentRead(
            id=row.id,
            entry_id=row.entry_id,
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            uploaded_by=names.user(row.uploaded_by) or "?",
            created_at=row.created_at,
        )
        for row in rows
    ]


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name in RFC 8187 form."""
    fallback = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\%;' else "_" for ch in filename
    ).strip()
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{fallback or 'fichier'}\"; filename*=UTF-8''{encoded}"


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


# --- routes ---------------------------------------------------------------------------------


@router.post(
    "/entries/{entry_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=CONFLICT
    | errors(413)
    | {415: {**errors(415)[415], "description": "not multipart, or a file type refused"}},
)
async def upload_attachment(
    upload: UploadDep,
    blobs: TrackedBlobsDep,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    entry_id: uuid.UUID,
    response: Response,
) -> AttachmentRead:
    """Attach a file (multipart field ``file``). The type is detected from the content;
    images are re-encoded without their metadata; the stored size and SHA-256 are those of
    the stored bytes."""
    row = await attachments.add_attachment(
        session=session,
        settings=settings,
        actor=actor,
        blobs=blobs,
        entry_id=entry_id,
        filename=upload.filename,
        data=upload.data,
    )
    response.headers["Location"] = f"/api/v1/attachments/{row.id}"
    return (await _read_models(session, [row]))[0]


@router.get("/entries/{entry_id}/attachments", response_model=list[AttachmentRead])
async def list_attachments(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, entry_id: uuid.UUID
) -> list[AttachmentRead]:
    rows = await attachments.list_attachments(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    return await _read_models(session, rows)


@router.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {
            "description": "the file, as stored",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in uploads.EXTENSIONS
            },
        }
    },
)
async def download_attachment(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    blobs: BlobsDep,
    attachment_id: uuid.UUID,
) -> Response:
    """The stored bytes, always as a download (never rendered inline by the browser)."""
    row, data = await attachments.get_attachment(
        session=session, settings=settings, actor=actor, blobs=blobs, attachment_id=attachment_id
    )
    media_type = row.content_type
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(row.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
