"""A product's lineage on its page (a list of links: sources, uses) and the comparison of two
of its data versions (ADR 0028). The product page includes ``_product_lineage.html`` with
what ``lineage_context`` gives; the comparison has its own page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Invalid
from hypervision.identity.principal import Principal
from hypervision.products import derived_create, diff, lineage
from hypervision.products.base import is_steward
from hypervision.products.models import DataProduct
from hypervision.records.labelling import Directory
from hypervision.web.render import render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
PAGE = 50


async def lineage_context(
    *, session: AsyncSession, settings: Settings, actor: Principal, product: DataProduct
) -> dict[str, Any]:
    """What ``_product_lineage.html`` shows: the sources and uses the reader may know of,
    whether the product is derived, why its last computation failed, whether it waits for a
    second steward's release and whether this reader may give it."""
    graph = await lineage.lineage(
        session=session, settings=settings, actor=actor, product_id=product.id
    )
    nodes = graph.nodes.values()
    derivation = graph.derivations.get(product.id)
    return {
        "lineage_sources": sorted(
            (p for p in nodes if p.id in graph.upstream), key=lambda p: p.name
        ),
        "lineage_uses": sorted(
            (p for p in nodes if p.id in graph.downstream), key=lambda p: p.name
        ),
        "lineage_derived": derivation is not None,
        "lineage_failure": derivation.failure if derivation else None,
        "lineage_withheld": derivation is not None and derivation.withheld,
        "can_release": derivation is not None
        and derivation.withheld
        and derivation.defined_by != actor.user_id
        and is_steward(actor, product),
    }


@router.post("/donnees/{product_id}/publier", response_class=HTMLResponse)
async def release_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """A second steward releases a withheld derived product (four eyes, ADR 0028)."""
    await request.form()  # read by the CSRF check
    await derived_create.release_derived(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return RedirectResponse(f"/donnees/{product_id}?publie=1#lignage", status_code=303)


@router.get("/donnees/{product_id}/comparer", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
    de: Annotated[int, Query(ge=1)],
    a: Annotated[int, Query(ge=1)],
    apres: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Rows added, removed and changed between two data versions, as the reader may see
    them (50 changes a page)."""
    try:
        found = await diff.diff(
            session=session,
            settings=settings,
            actor=actor,
            product_id=product_id,
            old=de,
            new=a,
            after=apres or None,
            limit=PAGE,
        )
    except (Invalid, Forbidden) as error:
        english = translator(request).locale == "en"
        return render(
            request,
            "error.html",
            {"status": error.status, "message": error.en if english else error.fr},
            status_code=error.status,
        )
    shows(request, [found.product.label_level])
    fields = {f["name"]: f for f in found.product.table_schema.get("fields", [])}
    return render(
        request,
        "product_diff.html",
        {
            "product": found.product,
            "diff": found,
            "titles": {n: (fields.get(n) or {}).get("title") or n for n in found.columns},
            "names": await Directory.load(session, []),
        },
    )
