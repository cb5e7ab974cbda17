"""Data products on the web (issue 17): the catalogue, a product's page (its rows as its
stewards' rules let the reader see them, its schema, its versions) and, for the stewards of
its domain, a file import form."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Conflict, Forbidden, Invalid
from hypervision.core.i18n import N_
from hypervision.core.uploads import FileTooLarge, one_file
from hypervision.identity.principal import Principal
from hypervision.products import editing, quality, service
from hypervision.products.export import FORMATS
from hypervision.products.models import DataProduct, ImportMode, ProductStatus
from hypervision.records.labelling import Directory
from hypervision.web import quality_pages
from hypervision.web.product_lineage_pages import lineage_context
from hypervision.web.render import in_words, render, shows
from hypervision.web.session import Officer
from hypervision.web.source_section import source_section

router = APIRouter(include_in_schema=False)
PAGE = 50
SHOWN_ERRORS = 20  # bad rows listed under a refused import
STATUSES = {
    "draft": (N_("Draft"), "fr-badge--info"),
    "active": (N_("Active"), "fr-badge--success"),
    "deprecated": (N_("Deprecated"), "fr-badge--warning"),
}
TRANSITIONS = {  # the button that leads to each status
    "active": N_("Publish (active)"),
    "deprecated": N_("Deprecate"),
}
MODES = {
    ImportMode.REPLACE.value: N_("Replace all rows"),
    ImportMode.APPEND.value: N_("Add the rows"),
    ImportMode.UPSERT.value: N_("Update rows by key, add the others"),
}
OPERATORS = {
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "contains": N_("contains"),
    "in": N_("one of (a,b,c)"),
    "null": N_("is empty"),
    "notnull": N_("is not empty"),
}


@router.get("/donnees", response_class=HTMLResponse)
async def catalogue_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The data products the reader may know of, searchable."""
    products = await service.catalogue(session=session, settings=settings, actor=actor, q=q)
    shows(request, [p.label_level for p in products])
    return render(
        request,
        "products.html",
        {
            "products": products,
            "q": q,
            "names": await Directory.load(session, []),
            "imported_at": await service.last_imports(session=session, products=products),
            "quality": await quality.summaries(session=session, actor=actor, products=products),
            "statuses": STATUSES,
            "can_derive": service.is_steward(actor),
        },
    )


class RowQuery:
    """The table's state in the address: sort, one filter, the keyset cursor."""

    def __init__(self, sort: str, field: str, op: str, value: str, after: str) -> None:
        self.sort, self.field, self.op, self.value, self.after = sort, field, op, value, after

    @property
    def filtering(self) -> bool:
        return bool(self.field and self.op)

    def conditions(self) -> list[service.Condition]:
        if not self.filtering:
            return []
        return [service.parse_condition(f"{self.field}:{self.op}:{self.value}")]

    def url(self, product_id: uuid.UUID, **changes: str) -> str:
        params = {"sort": self.sort, "field": self.field, "op": self.op, "value": self.value}
        params.update(changes)
        kept = {k: v for k, v in params.items() if v}
        return f"/donnees/{product_id}" + (f"?{urlencode(kept)}" if kept else "")


async def read_product(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
) -> DataProduct:
    """A product shown on a page: found under the policy, its read audited, its level marked."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await audit.record(
        session=session,
        actor=actor,
        action="product.read",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
    )
    shows(request, [product.label_level])
    return product


async def page_context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    query: RowQuery,
) -> dict[str, Any]:
    """The product page's data; a bad sort, filter or cursor shows every row with the error."""
    product = await read_product(request, session, settings, actor, product_id)
    _, versions = await service.data_versions(
        session=session, settings=settings, actor=actor, product_id=product.id
    )
    error = ""
    try:
        page = await service.read_rows(
            session=session,
            settings=settings,
            actor=actor,
            product_id=product.id,
            conditions=query.conditions(),
            sort=query.sort or None,
            after=query.after or None,
            limit=PAGE,
        )
    except (Invalid, Forbidden) as exc:
        error = in_words(request, exc)
        page = await service.read_rows(
            session=session, settings=settings, actor=actor, product_id=product.id, limit=PAGE
        )
    fields = {f["name"]: f for f in product.table_schema.get("fields", [])}
    visible = [fields[name] for name in page.columns if name in fields]
    can_import = service.is_steward(actor, product)
    return {
        "source": await source_section(session, settings, actor, product) if can_import else None,
        "product": product,
        "names": await Directory.load(session, [v.actor_id for v in versions]),
        "versions": versions,
        "page": page,
        "fields": visible,
        "query": query,
        "query_error": error,
        "statuses": STATUSES,
        "operators": OPERATORS,
        "modes": MODES,
        "can_import": can_import,
        "grid": editing.grid_of(settings, actor, product),
        "next_statuses": sorted(
            s.value for s in service.TRANSITIONS[ProductStatus(product.status)]
        ),
        "transitions": TRANSITIONS,
        "status_error": "",
        "exports": [
            (code, code.upper())
            for code in FORMATS
            if code != "geojson" or any(f.get("type") in ("geojson", "geometry") for f in visible)
        ],
        "import_error": "",
        "bad_rows": [],
        "bad_count": 0,
        "imported": None,
        **await lineage_context(session=session, settings=settings, actor=actor, product=product),
        **await quality_pages.context(session, settings, actor, product),
    }


@router.get("/donnees/{product_id}", response_class=HTMLResponse)
async def product_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
    sort: Annotated[str, Query(max_length=70)] = "",
    field: Annotated[str, Query(max_length=64)] = "",
    op: Annotated[str, Query(max_length=10)] = "",
    value: Annotated[str, Query(max_length=400)] = "",
    after: Annotated[str, Query(max_length=2000)] = "",
    importee: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """A product: its rows (sortable, filterable, by pages of 50), its schema, its versions."""
    query = RowQuery(sort, field, op, value, after)
    context = await page_context(request, session, settings, actor, product_id, query)
    if importee is not None:  # back from an import: say which version it made
        found = (v for v in context["versions"] if v.number == importee)
        context["imported"] = next(found, None)
    status = 422 if context["query_error"] else 200
    return render(request, "product.html", context, status_code=status)


@router.post("/donnees/{product_id}/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """A file imported as the product's next data version (stewards of its domain); a refused
    file changes nothing and the page lists its first bad rows."""
    try:
        product = await service.find_product(
            session=session, settings=settings, actor=actor, product_id=product_id
        )
        service.check_steward(actor, product)
    except AppError:
        await (await request.form()).close()  # read by the CSRF check: close its file
        raise
    try:
        async with (
            one_file(request, settings.product_max_bytes) as (form, upload),
            session.begin_nested(),
        ):
            imported = await service.import_data(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product.id,
                source=upload.file,
                filename=upload.filename or "fichier",
                media_type=upload.content_type,
                mode=str(form.get("mode") or ImportMode.REPLACE.value),
            )
    except (Invalid, FileTooLarge) as exc:
        # A refused quality check rolled the savepoint back: the product row is expired.
        query = RowQuery("", "", "", "", "")
        context = await page_context(request, session, settings, actor, product_id, query)
        context.update(
            import_error=in_words(request, exc),
            bad_rows=exc.extra.get("rows", [])[:SHOWN_ERRORS],
            bad_count=exc.extra.get("error_count", 0),
        )
        return render(request, "product.html", context, status_code=exc.status)
    number = imported.version.number
    return RedirectResponse(f"/donnees/{product.id}?importee={number}#import", status_code=303)


@router.post("/donnees/{product_id}/statut", response_class=HTMLResponse)
async def change_status(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Publish, deprecate or reactivate a product (stewards of its domain)."""
    form = await request.form(max_files=0, max_fields=5)
    try:
        async with session.begin_nested():
            await service.set_status(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product_id,
                status=str(form.get("status") or ""),
            )
    except (Invalid, Conflict) as exc:
        query = RowQuery("", "", "", "", "")
        context = await page_context(request, session, settings, actor, product_id, query)
        context["status_error"] = in_words(request, exc)
        return render(request, "product.html", context, status_code=exc.status)
    return RedirectResponse(f"/donnees/{product_id}#statut", status_code=303)
