"""The import wizard of a data product (issue 17): the steward sends a file, sees its first rows
with each column matched to a field of the schema (by name, then by title; any column may be
ignored or matched to another field), then imports it with that mapping.

Between the two steps the file waits in ``<data_dir>/imports`` under a random token, with a
note of who sent it for which product: only they can import it, for that product, within an
hour (older files are swept at each new preview); the file is removed once imported."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Invalid, NotFound
from hypervision.core.uploads import FileTooLarge, one_file
from hypervision.identity.principal import Principal
from hypervision.live.hub import Hub
from hypervision.products import service
from hypervision.products.models import DataProduct, ImportMode
from hypervision.products.readers import ReadError, preview
from hypervision.products.schema import slugify_headers
from hypervision.web.product_pages import MODES, SHOWN_ERRORS, RowQuery, page_context
from hypervision.web.render import in_words, render, shows
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
PREVIEW_ROWS = 10
KEPT_SECONDS = 3600
TOKEN = re.compile(r"^[0-9a-f]{32}$")
IGNORE = ""


def _folder(settings: Settings) -> Path:
    folder = settings.data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sweep(folder: Path) -> None:
    limit = time.time() - KEPT_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def guess(headers: list[str], fields: list[dict[str, Any]]) -> list[str]:
    """The field each column goes to by default: its name's slug, then a field's title."""
    names = {f["name"] for f in fields}
    titles = {str(f.get("title") or "").casefold(): f["name"] for f in fields if f.get("title")}
    chosen: list[str] = []
    for header, slug in zip(headers, slugify_headers(headers), strict=True):
        target = slug if slug in names else titles.get(header.strip().casefold(), IGNORE)
        chosen.append(IGNORE if target in chosen else target)
    return chosen


def _waiting(
    settings: Settings, token: str, actor: Principal, product: DataProduct
) -> tuple[Path, dict[str, Any]]:
    """The file a preview kept, if it is this steward's, for this product, and not expired."""
    if not TOKEN.match(token):
        raise NotFound("Aperçu introuvable.", "Preview not found.")
    folder = _folder(settings)
    data, note = folder / f"{token}.bin", folder / f"{token}.json"
    try:
        kept = json.loads(note.read_text())
    except (FileNotFoundError, ValueError):
        kept = None
    if (
        not isinstance(kept, dict)
        or not data.exists()
        or kept.get("user") != str(actor.user_id)
        or kept.get("product") != str(product.id)
        or time.time() - float(kept.get("at", 0)) > KEPT_SECONDS
    ):
        raise NotFound(
            "Cet aperçu a expiré ou n'est pas le vôtre : envoyez le fichier à nouveau.",
            "This preview has expired or is not yours: send the file again.",
        )
    return data, kept


def _page(
    request: Request,
    product: DataProduct,
    token: str,
    kept: dict[str, Any],
    headers: list[str],
    rows: list[list[str]],
    chosen: list[str],
    *,
    error: str = "",
    bad_rows: list[dict[str, Any]] | None = None,
    bad_count: int = 0,
    status: int = 200,
) -> Response:
    shows(request, [product.label_level])
    return render(
        request,
        "product_import_preview.html",
        {
            "product": product,
            "token": token,
            "filename": kept.get("filename", ""),
            "mode": kept.get("mode", ImportMode.REPLACE.value),
            "modes": MODES,
            "headers": headers,
            "rows": rows,
            "chosen": chosen,
            "fields": product.table_schema.get("fields", []),
            "error": error,
            "bad_rows": (bad_rows or [])[:SHOWN_ERRORS],
            "bad_count": bad_count,
        },
        status_code=status,
    )


async def _steward_product(
    request: Request, session: Any, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> DataProduct:
    try:
        product = await service.find_product(
            session=session, settings=settings, actor=actor, product_id=product_id
        )
        service.check_steward(actor, product)
    except (Forbidden, NotFound):
        await (await request.form()).close()  # read by the CSRF check: close its files
        raise
    return product


@router.post("/donnees/{product_id}/import/apercu", response_class=HTMLResponse)
async def preview_file(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Step 1: the file kept for an hour, its first rows shown with the proposed mapping."""
    product = await _steward_product(request, session, settings, actor, product_id)
    folder = _folder(settings)
    await asyncio.to_thread(_sweep, folder)
    token = secrets.token_hex(16)
    data = folder / f"{token}.bin"
    try:
        async with one_file(request, settings.product_max_bytes) as (form, upload):
            mode = str(form.get("mode") or ImportMode.REPLACE.value)
            filename = (upload.filename or "fichier")[:200]
            with data.open("wb") as out:
                await asyncio.to_thread(shutil.copyfileobj, upload.file, out)
            headers, rows = await asyncio.to_thread(
                preview,
                data,
                filename=filename,
                media_type=upload.content_type,
                rows=PREVIEW_ROWS,
                max_bytes=settings.product_max_bytes,
            )
    except ReadError as exc:
        refused: tuple[str, int] | None = (in_words(request, exc), 422)
    except (Invalid, FileTooLarge) as exc:
        refused = (in_words(request, exc), exc.status)
    else:
        refused = None
    if refused is not None:
        data.unlink(missing_ok=True)
        query = RowQuery("", "", "", "", "")
        context = await page_context(request, session, settings, actor, product.id, query)
        context["import_error"] = refused[0]
        return render(request, "product.html", context, status_code=refused[1])
    kept = {
        "user": str(actor.user_id),
        "product": str(product.id),
        "filename": filename,
        "media_type": upload.content_type,
        "mode": mode,
        "headers": headers,
        "at": time.time(),
    }
    (folder / f"{token}.json").write_text(json.dumps(kept))
    fields = product.table_schema.get("fields", [])
    return _page(request, product, token, kept, headers, rows, guess(headers, fields))


@router.post("/donnees/{product_id}/import/confirmer", response_class=HTMLResponse)
async def import_previewed(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Step 2: the kept file imported with the mapping chosen; a refusal shows the preview
    again with the bad rows, and the file stays for another try. Meanwhile the steward's page
    hears each step of the import on its live stream (``import.progress`` notes)."""
    form = await request.form(max_files=0, max_fields=1200)
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    service.check_steward(actor, product)
    token = str(form.get("token") or "")
    data, kept = _waiting(settings, token, actor, product)
    headers: list[str] = list(kept.get("headers", []))
    names = {f["name"] for f in product.table_schema.get("fields", [])}
    chosen = [str(form.get(f"colonne_{i}") or IGNORE) for i in range(len(headers))]
    chosen = [c if c in names else IGNORE for c in chosen]
    mode = str(form.get("mode") or kept.get("mode") or ImportMode.REPLACE.value)
    kept["mode"] = mode
    hub: Hub = request.app.state.hub

    def told(step: str) -> None:  # the bar on the steward's page (ADR 0029)
        hub.note(actor, "import.progress", {"import": token, "step": step})

    try:
        async with session.begin_nested():
            imported = await service.import_data(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product.id,
                source=data,
                filename=str(kept.get("filename") or "fichier"),
                media_type=kept.get("media_type"),
                mode=mode,
                column_map=dict(zip(headers, chosen, strict=True)),
                on_step=told,
            )
    except Invalid as exc:
        _, rows = await asyncio.to_thread(
            preview,
            data,
            filename=str(kept.get("filename") or "fichier"),
            media_type=kept.get("media_type"),
            rows=PREVIEW_ROWS,
            max_bytes=settings.product_max_bytes,
        )
        return _page(
            request, product, token, kept, headers, rows, chosen,
            error=in_words(request, exc), bad_rows=exc.extra.get("rows", []),
            bad_count=int(exc.extra.get("error_count", 0)), status=exc.status,
        )  # fmt: skip
    for path in (data, data.with_suffix(".json")):
        path.unlink(missing_ok=True)
    number = imported.version.number
    return RedirectResponse(f"/donnees/{product.id}?importee={number}#import", status_code=303)
