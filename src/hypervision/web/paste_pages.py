"""Paste from a spreadsheet (issue 17): on a product's page, its stewards paste cells copied
from Excel or LibreOffice (tab-separated, decimal commas, dd/mm/yyyy dates), see the first
rows as the schema reads them, then import them through the same service as a file (a new
data version, all or nothing). The first line holds the headers: field names or titles."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.products import service
from hypervision.products.models import DataProduct, ImportMode
from hypervision.products.readers import ReadError, read_table
from hypervision.products.schema import TableSchema, slugify_field
from hypervision.web import product_pages
from hypervision.web.render import in_words, render, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
MAX_PASTE = 2 * 1024 * 1024  # the application's limit for a form without a file
PREVIEW_ROWS = 10
FILENAME = "collage.tsv"
MEDIA_TYPE = "text/tab-separated-values"


@dataclass
class Paste:
    """The paste section's state: the text, the mode, a preview or an error."""

    text: str = ""
    mode: str = ImportMode.REPLACE.value
    columns: list[dict[str, Any]] = field(default_factory=list)  # the schema's fields
    rows: list[list[str]] = field(default_factory=list)  # the first rows, as typed
    total: int = 0
    error: str = ""
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    bad_count: int = 0
    previewed: bool = False


def column_map(text: str, schema: TableSchema) -> dict[str, str]:
    """Headers of the first line that name a field by its title ("Lits disponibles")."""
    by_title = {slugify_field(f.title): f.name for f in schema.fields if f.title}
    first = text.split("\n", 1)[0].rstrip("\r")
    delimiter = "\t" if "\t" in first else ";"
    found = {}
    for header in (h.strip() for h in first.split(delimiter)):
        slug = slugify_field(header)
        if slug not in schema.field_names and slug in by_title:
            found[header] = by_title[slug]
    return found


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def preview(text: str, product: DataProduct, max_bytes: int, english: bool = False) -> Paste:
    """The pasted cells read and typed as an import would read them; the first rows."""
    schema = service.schema_of(product)
    paste = Paste(text=text, previewed=True)
    paste.columns = [{"name": f.name, "title": f.title or f.name} for f in schema.fields]
    try:
        result = read_table(
            io.BytesIO(text.encode()),
            filename=FILENAME,
            media_type=MEDIA_TYPE,
            schema=schema,
            max_bytes=max_bytes,
            column_map=column_map(text, schema),
        )
    except ReadError as error:
        paste.error = error.en if english else error.fr
        return paste
    paste.total = result.table.num_rows
    first = result.table.slice(0, PREVIEW_ROWS).to_pylist()
    paste.rows = [[_shown(row.get(c["name"])) for c in paste.columns] for row in first]
    paste.bad_rows = [
        {"row": e.row, "field": e.field, "message": e.message}
        for e in result.errors[: product_pages.SHOWN_ERRORS]
    ]
    paste.bad_count = result.error_count
    return paste


@router.post("/donnees/{product_id}/coller", response_class=HTMLResponse)
async def paste_cells(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """``action=preview``: the first rows as the schema reads them; ``action=import``: the
    cells imported as the product's next data version (stewards of its domain)."""
    form = await request.form(max_files=0, max_fields=5, max_part_size=MAX_PASTE)
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    service.check_steward(actor, product)
    text = str(form.get("cells") or "").replace("\r\n", "\n").strip("\n")
    mode = str(form.get("mode") or ImportMode.REPLACE.value)
    status = 200
    if not text.strip():
        empty = Invalid(
            "Collez d'abord des cellules (avec la ligne d'en-tête).",
            "Paste cells first (with their header line).",
        )
        paste = Paste(mode=mode, error=in_words(request, empty))
        status = 422
    elif form.get("action") == "import":
        try:
            async with session.begin_nested():
                imported = await service.import_data(
                    session=session,
                    settings=settings,
                    actor=actor,
                    product_id=product.id,
                    source=io.BytesIO(text.encode()),
                    filename=FILENAME,
                    media_type=MEDIA_TYPE,
                    mode=mode,
                    column_map=column_map(text, service.schema_of(product)),
                )
        except Invalid as exc:
            paste = Paste(
                text=text,
                mode=mode,
                error=in_words(request, exc),
                bad_rows=exc.extra.get("rows", [])[: product_pages.SHOWN_ERRORS],
                bad_count=exc.extra.get("error_count", 0),
            )
            status = exc.status
        else:
            number = imported.version.number
            return RedirectResponse(
                f"/donnees/{product.id}?importee={number}#import-fait", status_code=303
            )
    else:
        english = translator(request).locale == "en"
        paste = await asyncio.to_thread(preview, text, product, MAX_PASTE, english)
        paste.mode = mode
        status = 422 if paste.error else 200
    query = product_pages.RowQuery("", "", "", "", "")
    context = await product_pages.page_context(request, session, settings, actor, product.id, query)
    context["paste"] = paste
    return render(request, "product.html", context, status_code=status)
