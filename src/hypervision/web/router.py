"""Mounts the web app on the application: pages, static files, HTML errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Route, Router

from hypervision.core.errors import AppError
from hypervision.core.i18n import LOCALE_COOKIE, pick_locale
from hypervision.web import (
    alert_pages,
    assets,
    auth_pages,
    derived_pages,
    duty_pages,
    entry_corrections,
    entry_pages,
    feed_pages,
    hub_document_pages,
    hub_pages,
    import_wizard,
    map_pages,
    misc_pages,
    oidc_pages,
    opendata_pages,
    paste_pages,
    product_lineage_pages,
    product_pages,
    product_rows_pages,
    product_rules_pages,
    publication_pages,
    quality_pages,
    report_pages,
    review_pages,
    security_pages,
    source_pages,
    space_editor,
    space_pages,
    synthesis_pages,
)
from hypervision.web.render import render
from hypervision.web.session import SignInRequired
from hypervision.web.statics import FILES

log = logging.getLogger("hypervision.web")


def is_page(request: Request) -> bool:
    """A browser page (HTML errors) rather than the API or probes (JSON errors)."""
    path = request.url.path
    return not path.startswith(
        ("/api/", "/healthz", "/readyz", "/static/", "/opendata/api/", "/opendata/datasets/")
    )


def html_error(request: Request, exc: AppError) -> Response:
    if isinstance(exc, SignInRequired):
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Redirect": exc.target})
        return RedirectResponse(exc.target, status_code=303)
    if not hasattr(request.state, "locale"):
        request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    message = exc.en if getattr(request.state, "locale", "fr") == "en" else exc.fr
    return render(
        request,
        "error.html",
        {"status": exc.status, "message": message},
        status_code=exc.status,
        headers=exc.headers,
    )


def install(app: FastAPI) -> None:
    missing = assets.missing()
    if missing:
        log.warning("front-end assets missing (%s): run `make install`", ", ".join(missing[:3]))
    app.state.html_error = html_error
    app.state.is_page = is_page
    for module in (
        auth_pages,
        oidc_pages,
        feed_pages,
        import_wizard,
        entry_pages,
        entry_corrections,
        map_pages,
        misc_pages,
        derived_pages,  # before product_pages: /donnees/deriver is not /donnees/{product_id}
        publication_pages,  # and neither is /donnees/publications
        product_pages,
        quality_pages,
        product_rows_pages,
        product_rules_pages,
        paste_pages,
        source_pages,
        product_lineage_pages,
        synthesis_pages,
        review_pages,
        security_pages,
        opendata_pages,
        alert_pages,
        hub_pages,
        duty_pages,
        hub_document_pages,
        space_pages,
        space_editor,
        report_pages,
    ):
        app.include_router(module.router)
    # Fingerprinted, compressed and cached (hypervision.web.statics); GET and HEAD only.
    files = Router(routes=[Route("/{path:path}", FILES.serve, methods=["GET"])])
    app.mount("/static", files, name="static")
