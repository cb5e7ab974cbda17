"""Hub API: shared documents (``/api/v1/hub/documents``). The upload is the attachments' own
(``logbook.attachments_api``): the multipart body holds the file alone, read with a hard byte
limit before the database transaction starts, its blob deleted again when the transaction
does not commit. The document's title, description and label come in the query string, typed
and checked like any parameter (the access log leaves query strings out)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN, errors
from hypervision.hub import documents
from hypervision.hub.present import document_read, names_for
from hypervision.hub.schemas import DocumentCreateForm, DocumentPage, DocumentRead, DocumentUpdate
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import uploads
from hypervision.logbook.attachments_api import (
    UPLOAD_BODY,
    BlobsDep,
    TrackedBlobsDep,
    UploadDep,
    content_disposition,
)
from hypervision.records.schemas import Code, LabelIn

router = APIRouter(
    prefix="/api/v1/hub", tags=["hub"], dependencies=CREDENTIALS, responses=SIGNED_IN
)


def _fields(
    title: str,
    description: str,
    level: str | None,
    groups: list[str],
    audience: list[str],
    lowest: str,
) -> DocumentCreateForm:
    """The document's fields; a label as soon as one of its parts is sent (the lowest level
    when only groups or organisations are). 422 naming the field otherwise."""
    try:
        label = (
            LabelIn(level=level or lowest, need_to_know=groups, audience=audience)
            if level or groups or audience
            else None
        )
        return DocumentCreateForm(title=title, description=description, label=label)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "title"
        raise Invalid(
            f"Champ « {where} » : {first['msg']}.",
            f"Field '{where}': {first['msg']}.",
            extra={"fields": [{"field": where, "message": first["msg"]}]},
        ) from None


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
    title: Annotated[str, Query(min_length=1, max_length=200)],
    description: Annotated[str, Query(max_length=2000)] = "",
    level: Annotated[str | None, Query(max_length=16, description="none: lowest")] = None,
    need_to_know: Annotated[list[Code], Query(max_length=10, description="group codes")] = [],  # noqa: B006
    audience: Annotated[
        list[Code], Query(max_length=50, description="organisation codes; none: every one")
    ] = [],  # noqa: B006
) -> DocumentRead:
    """Share a document (officers, watch officers, data stewards): the file in the multipart
    field ``file``, its title, description and label in the query string. Without any label
    parameter, your organisation only. The file gets the attachments' checks."""
    fields = _fields(title, description, level, need_to_know, audience, settings.label_levels[0])
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
