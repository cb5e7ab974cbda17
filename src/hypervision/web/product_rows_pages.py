"""Editing a small product's rows on the web (issue 17): a row's form, one field per column,
saved as the product's next data version (``products.editing``); a refused value is named
beside its field and nothing is written."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid, NotFound
from hypervision.products import editing, service
from hypervision.products.models import DataProduct
from hypervision.web.render import render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)


def _fields(product: DataProduct) -> list[dict[str, Any]]:
    return list(product.table_schema.get("fields", []))


def _page(
    request: Request,
    product: DataProduct,
    grid: editing.Grid,
    values: dict[str, str],
    *,
    new: bool,
    error: str = "",
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    shows(request, [product.label_level])
    return render(
        request,
        "product_row.html",
        {
            "product": product,
            "fields": _fields(product),
            "key": grid.key,
            "values": values,
            "new": new,
            "error": error,
            "problems": problems or {},
        },
        status_code=status,
    )


@router.get("/donnees/{product_id}/ligne", response_class=HTMLResponse)
async def row_form(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """The form of the row whose key is in the address (``?field=value`` for each key field),
    or of a new row (``?nouvelle=1``)."""
    asked = {k: v[:1000] for k, v in request.query_params.items()}
    product, row = await editing.find_row(
        session=session, settings=settings, actor=actor, product_id=product_id, key=asked
    )
    grid = editing.grid_of(settings, actor, product)
    if grid.refusal is not None:
        raise grid.refusal
    new = asked.get("nouvelle") == "1"
    if not new and row is None:
        raise NotFound(
            "Ligne introuvable : elle a peut-être été changée entre-temps.",
            "Row not found: it may have changed meanwhile.",
        )
    values = {
        f["name"]: editing.text_of(row.get(f["name"]), f.get("type", "string")) if row else ""
        for f in _fields(product)
    }
    return _page(request, product, grid, values, new=new)


@router.post("/donnees/{product_id}/ligne", response_class=HTMLResponse)
async def save_row(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Saves the row as the next data version, or shows the form again with what is wrong."""
    form = await request.form(max_files=0, max_fields=600)
    new = form.get("nouvelle") == "1"
    values = {
        name.removeprefix("f_"): str(value)[:100_000]
        for name, value in form.items()
        if name.startswith("f_") and isinstance(value, str)
    }
    try:
        async with session.begin_nested():
            imported = await editing.save_row(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product_id,
                values=values,
                new=new,
            )
    except Invalid as exc:
        product = await service.find_product(
            session=session, settings=settings, actor=actor, product_id=product_id
        )
        english = translator(request).locale == "en"
        problems = {
            str(bad.get("field") or ""): str(bad.get("message") or "")
            for bad in exc.extra.get("rows", [])
        }
        return _page(
            request,
            product,
            editing.grid_of(settings, actor, product),
            values,
            new=new,
            error=exc.en if english else exc.fr,
            problems=problems,
            status=exc.status,
        )
    number = imported.version.number
    return RedirectResponse(f"/donnees/{product_id}?importee={number}#import", status_code=303)
