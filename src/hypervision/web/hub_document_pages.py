"""The hub's shared documents (``/accueil/documents``, docs/adr/0042): the documents the officer
may see, the form that shares one (the attachments' checks, a label), archiving. The file
itself is downloaded from the API (``/api/v1/hub/documents/{id}/file``, the session cookie)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError
from hypervision.hub import documents
from hypervision.hub.models import DocumentStatus
from hypervision.hub.present import document_read, names_for
from hypervision.hub.schemas import DocumentCreateForm, DocumentUpdate
from hypervision.identity.principal import Principal
from hypervision.logbook.attachments_api import TrackedBlobsDep
from hypervision.policy.rules import Action, allowed
from hypervision.storage.blobs import TrackedBlobs
from hypervision.web.hub_pages import first_error, label_choices, label_of
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)


async def _context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    archived: bool = False,
) -> dict[str, Any]:
    rows, _ = await documents.list_documents(
        session=session,
        settings=settings,
        actor=actor,
        include_archived=archived,
        limit=documents.PAGE_MAX,
    )
    shows(request, [r.label_level for r in rows])
    names = await names_for(session, rows)
    context: dict[str, Any] = {
        "items": [(document_read(r, names), documents.may_edit(actor, r)) for r in rows],
        "archived": archived,
        "writes": allowed(actor, Action.WRITE),
        "values": {"audience": "own"},
        "error": None,
    }
    if context["writes"]:
        context |= await label_choices(session, settings, actor)
    return context


@router.get("/accueil/documents", response_class=HTMLResponse)
async def document_list(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    archives: str = "",
) -> Response:
    context = await _context(request, session, settings, actor, archived=archives == "1")
    return render(request, "hub_documents.html", context)


@router.post("/accueil/documents", response_class=HTMLResponse)
async def document_share(
    request: Request,
    blobs: TrackedBlobsDep,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
) -> Response:
    form = await request.form(max_files=1, max_fields=100)
    try:
        return await _share(request, form, blobs, session, settings, actor)
    finally:
        await form.close()


async def _share(
    request: Request,
    form: FormData,
    blobs: TrackedBlobs,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
) -> Response:
    context = await label_choices(session, settings, actor)
    upload = form.get("file")
    try:
        fields = DocumentCreateForm(
            title=str(form.get("title") or ""),
            description=str(form.get("description") or ""),
            label=label_of(form, context["own_code"], settings.label_levels),
        )
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValueError("file")
        data = await upload.read(settings.attachment_max_bytes + 1)
        async with session.begin_nested():
            await documents.add_document(
                session=session,
                settings=settings,
                actor=actor,
                blobs=blobs,
                title=fields.title,
                description=fields.description,
                label=fields.label,
                filename=upload.filename,
                data=data,
            )
    except (ValidationError, AppError, ValueError) as exc:
        await blobs.discard()
        context = await _context(request, session, settings, actor)
        context["values"] = {key: form.get(key) for key in form if key != "file"} | {
            "also": form.getlist("also"),
            "need_to_know": form.getlist("need_to_know"),
        }
        if isinstance(exc, ValidationError):
            context["error"] = first_error(request, exc)
        elif isinstance(exc, AppError):
            context["error"] = in_words(request, exc)
        else:
            context["error"] = translator(request).gettext("Choose the file to share.")
        return render(request, "hub_documents.html", context, status_code=422)
    return RedirectResponse("/accueil/documents?partage=1", status_code=303)


@router.post("/accueil/documents/{document_id}/archiver")
async def document_archive(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    document_id: uuid.UUID,
) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    status = DocumentStatus.ACTIVE if form.get("restore") else DocumentStatus.ARCHIVED
    await documents.update_document(
        session=session,
        settings=settings,
        actor=actor,
        document_id=document_id,
        data=DocumentUpdate(status=status),
    )
    return RedirectResponse("/accueil/documents", status_code=303)
