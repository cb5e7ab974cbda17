"""One file sent as multipart/form-data: the size checked before and while reading, a clear
error when the file is missing, the form's spooled files closed whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from hypervision.core.errors import AppError, Invalid

FORM_ALLOWANCE = 64 * 1024  # multipart boundaries and the other fields, beyond the file


class FileTooLarge(AppError):
    status, code = 413, "too_large"
    fr, en = "Fichier trop volumineux.", "File too large."


@asynccontextmanager
async def one_file(
    request: Request, max_bytes: int, kind_fr: str = "fichier", kind_en: str = "file"
) -> AsyncIterator[tuple[FormData, UploadFile]]:
    """The form and its ``file`` field; 413 beyond ``max_bytes``, 422 without a file."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_ALLOWANCE:
        raise FileTooLarge()
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Invalid(
            "Envoyez le fichier en multipart/form-data (champ « file »).",
            "Send the file as multipart/form-data ('file' field).",
        )
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid(
                f"Champ « file » : {kind_fr} obligatoire.",
                f"Field 'file': a {kind_en} is required.",
                extra={"fields": [{"field": "file", "message": "required"}]},
            )
        if upload.size is not None and upload.size > max_bytes:
            raise FileTooLarge()
        yield form, upload
    finally:
        await form.close()
