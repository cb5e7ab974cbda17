"""Hub API: shared documents (``/api/v1/hub/documents``). The upload is read with a hard
byte limit before the database transaction starts, and its blob is deleted again when the
transaction does not commit (as for attachments: ``logbook.attachments_api``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hypervision.core.deps import SESSION_COOKIE, DbSession, SettingsDep
from hypervision.core.errors import Invalid, Unauthorized
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN, errors
from hypervision.hub import documents
from hypervision.hub.present import document_read, names_for
from hypervision.hub.schemas import DocumentCreateForm, DocumentPage, DocumentRead, DocumentUpdate
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import uploads
from hypervision.logbook.attachments_api import (
    BlobsDep,
    MultipartExpected,
    TrackedBlobsDep,
    content_disposition,
)
from hypervision.records.schemas import LabelIn

router = APIRouter(
    prefix="/api/v1/hub", tags=["hub"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the other fields
FIELD_MAX = 24 * 1024  # a field's bytes (the description: 5,000 characters)


@dataclass(frozen=True)
class DocumentUpload:
    fields: dict[str, str]  # checked once the principal is (``_fields``)
    filename: str | None
    data: bytes


async def _capped(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise uploads.AttachmentTooLarge(cap - MULTIPART_OVERHEAD)
        yield chunk


def _codes(raw: Any) -> list[str]:
    return [c.strip() for c in str(raw or "").split(",") if c.strip()]


def _fields(form: dict[str, str]) -> DocumentCreateForm:
    level = str(form.get("level") or "").strip()
    try:
        label = (
            LabelIn(
                level=level,
                need_to_know=_codes(form.get("need_to_know")),
                audience=_codes(form.get("audience")),
            )
            if level
            else None
        )
        return DocumentCreateForm(
            title=str(form.get("title") or ""),
            description=str(form.get("description") or ""),
            label=label,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "title"
        raise Invalid(
            f"Champ « {where} » : {first['msg']}.",
            f"Field '{where}': {first['msg']}.",
            extra={"fields": [{"field": where, "message": first["msg"]}]},
        ) from None


async def read_document_upload(request: Request, settings: SettingsDep) -> DocumentUpload:
    """The file and its fields, read with a hard limit before any database work; requests
    without credentials are not read at all."""
    if not request.headers.get("authorization") and SESSION_COOKIE not in request.cookies:
        raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise MultipartExpected()
    limit = settings.attachment_max_bytes
    cap = limit + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise uploads.AttachmentTooLarge(limit)
    parser = MultiPartParser(
        request.headers, _capped(request, cap), max_files=1, max_fields=10, max_part_size=FIELD_MAX
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise Invalid(
            "Formulaire multipart invalide : un seul fichier, dans le champ « file ».",
            "Invalid multipart form: a single file, in the 'file' field.",
            extra={"fields": [{"field": "file", "message": "invalid multipart data"}]},
        ) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid(
                "Champ « file » : fichier obligatoire.",
                "Field 'file': a file is required.",
                extra={"fields": [{"field": "file", "message": "file required"}]},
            )
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise uploads.AttachmentTooLarge(limit)
        return DocumentUpload(fields=fields, filename=upload.filename, data=data)
    finally:
        await form.close()


UploadDep = Annotated[DocumentUpload, Depends(read_document_upload)]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "title"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 200},
                        "description": {"type": "string", "maxLength": 5000},
                        "level": {"type": "string"},
                        "need_to_know": {"type": "string", "description": "comma-separated"},
                        "audience": {
                            "type": "string",
                            "description": "organisation codes, comma-separated",
                        },
                    },
                }
            }
        },
    }
}


@router.get("/documents", response_model=DocumentPage)
async def list_documents(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    archived: Annotated[bool, Query(description="archived ones too")] = False,
    q: Annotated[str | None, Query(max_length=120, description="words of the title")] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=documents.PAGE_MAX)] = 50,
) -> DocumentPage:
    """The shared documents you may see, newest first."""
    rows, after = await documents.list_documents(
        session=session,
        settings=settings,
        actor=actor,
        include_archived=archived,
        q=q,
        offset=offset,
        limit=limit,
    )
    names = await names_for(session, rows)
    return DocumentPage(items=[document_read(r, names) for r in rows], next_offset=after)


@router.post(
    "/documents",
    response_model=DocumentRead,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=errors(413, 415),
)
async def upload_document(
    upload: UploadDep,
    blobs: TrackedBlobsDep,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    response: Response,
) -> DocumentRead:
    """Share a document (officers, watch officers, data stewards): multipart fields ``file``
    and ``title``, optional ``description`` and label (``level``, ``need_to_know``,
    ``audience``; none: your organisation only). The file gets the attachments' checks."""
    fields = _fields(upload.fields)
    row = await documents.add_document(
        session=session,
        settings=settings,
        actor=actor,
        blobs=blobs,
        title=fields.title,
        description=fields.description,
        label=fields.label,
        filename=upload.filename,
        data=upload.data,
    )
    response.headers["Location"] = f"/api/v1/hub/documents/{row.id}"
    return document_read(row, await names_for(session, [row]))


@router.get("/documents/{document_id}", response_model=DocumentRead, responses=NOT_FOUND)
async def get_document(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, document_id: uuid.UUID
) -> DocumentRead:
    row = await documents.read_document(
        session=session, settings=settings, actor=actor, document_id=document_id
    )
    return document_read(row, await names_for(session, [row]))


@router.patch(
    "/documents/{document_id}", response_model=DocumentRead, responses=NOT_FOUND | CONFLICT
)
async def update_document(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    document_id: uuid.UUID,
    data: DocumentUpdate,
) -> DocumentRead:
    """Rename, describe, archive (``status``: archived) or restore a document."""
    row = await documents.update_document(
        session=session, settings=settings, actor=actor, document_id=document_id, data=data
    )
    return document_read(row, await names_for(session, [row]))


@router.get(
    "/documents/{document_id}/file",
    response_class=Response,
    responses={
        200: {
            "description": "the file, as stored",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in uploads.EXTENSIONS
            },
        },
        **NOT_FOUND,
    },
)
async def download_document(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    blobs: BlobsDep,
    document_id: uuid.UUID,
) -> Response:
    """The stored bytes, always as a download (never rendered inline); audited."""
    row, data = await documents.download_document(
        session=session, settings=settings, actor=actor, blobs=blobs, document_id=document_id
    )
    return file_response(row.content_type, row.filename, data)


def file_response(content_type: str, filename: str, data: bytes) -> Response:
    media_type = content_type + ("; charset=utf-8" if content_type.startswith("text/") else "")
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
