"""The public open data pages (ADR 0035), no sign-in: the catalogue of published datasets
with search, and a page per dataset (description, schema, first rows, releases and their
downloads). The same reads as the public API, in the public principal's context."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from hypervision.core import charts
from hypervision.core.deps import SettingsDep
from hypervision.core.i18n import LOCALE_COOKIE, N_, pick_locale
from hypervision.opendata import formats, public
from hypervision.opendata.api import release_read
from hypervision.opendata.models import Release
from hypervision.opendata.public_api import PublicSession, limited
from hypervision.web.render import render, translator

router = APIRouter(include_in_schema=False, dependencies=[Depends(limited)])
PREVIEW = 20
TYPES = {
    "string": N_("text"),
    "integer": N_("whole number"),
    "number": N_("decimal number"),
    "boolean": N_("yes / no"),
    "date": N_("date"),
    "datetime": N_("date and time"),
    "geometry": N_("geometry"),
}


def _cached(request: Request, page: HTMLResponse) -> Response:
    """Public pages are the same for every anonymous reader of one language: an ETag, a short
    public cache (the middleware still forbids caching for a signed-in browser)."""
    tag = f'"{hashlib.sha256(bytes(page.body)).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": "public, max-age=60", "Vary": "Cookie"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    page.headers.update(headers)
    return page


async def _chart(
    request: Request, session: Any, release: Release
) -> tuple[charts.ChartSpec, str] | None:
    """The dataset's chart and its caption, or None (no measure, nothing to lay it along)."""
    found = await public.chart_groups(session, release)
    if found is None:
        return None
    dimension, shape, measure, groups = found
    _ = translator(request).gettext
    spec = charts.from_groups(
        groups,
        category_key="key",
        measure_key="value",
        kind="line" if shape == "line" else "bar",
        horizontal=shape == "bar",
        series_name=measure,
        missing=None,
        x_label=dimension,
    )
    if shape == "line":
        caption = _("%(measure)s by %(dimension)s (sum)", measure=measure, dimension=dimension)
    else:
        caption = _(
            "%(measure)s by %(dimension)s (sum, the %(n)s largest)",
            measure=measure,
            dimension=dimension,
            n=public.CHART_CATEGORIES,
        )
    return spec, caption


@router.get("/opendata", response_class=HTMLResponse)
async def catalogue(
    request: Request,
    session: PublicSession,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    pairs = await public.datasets(session, settings, q)
    names = await public.publishers(session, {d.organisation_id for _, d in pairs})
    context = {
        "q": q,
        "datasets": [(p, names.get(d.organisation_id, "")) for p, d in pairs],
    }
    return _cached(request, render(request, "opendata_catalogue.html", context))


@router.get("/opendata/{slug}", response_class=HTMLResponse)
async def dataset_page(
    request: Request, session: PublicSession, settings: SettingsDep, slug: str
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    publication, product = await public.dataset(session, settings, slug)
    found = await public.releases_of(session, publication)
    latest = found[-1] if found else None
    rows = (await public.rows_page(session, latest, {}, 1, PREVIEW))[1] if latest else []
    names = await public.publishers(session, {product.organisation_id})
    chart = located = None
    if latest is not None:
        chart = await _chart(request, session, latest)
        where = formats.geometry_field(latest.fields)
        if where is not None:
            located = await public.map_features(session, latest, where)
    context = {
        "chart": chart,
        "located": located,
        "p": publication,
        "publisher": names.get(product.organisation_id, ""),
        "latest": latest,
        "rows": rows,
        "types": TYPES,
        "releases": [release_read(publication.slug, r) for r in reversed(found)],
    }
    return _cached(request, render(request, "opendata_dataset.html", context))
