"""Defining a derived product on the web (issue 17, ADR 0028), for the data stewards: a form
in two steps on one page. The first (a GET, so that it works without JavaScript) chooses the
source product(s) among those the steward may see, and names the new product; the second
offers the sources' fields the steward may read — a join on keys when there are two
sources, filters, then columns kept or groups with figures. Sending it creates the product
through ``derived_create.create_derived`` (its label the least that dominates its sources'),
all or nothing; a refusal shows the form again, every value kept, with the control to
correct."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Conflict, Forbidden, Invalid
from hypervision.identity.principal import Principal
from hypervision.products import definition as defs
from hypervision.products import derived, derived_create, service
from hypervision.records.labelling import Directory
from hypervision.web import derive_forms
from hypervision.web.derive_forms import DeriveForm, FormProblem
from hypervision.web.render import in_words, render, shows
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
TEMPLATE = "product_derive.html"


async def _sources(
    session: AsyncSession, settings: Settings, actor: Principal, form: DeriveForm
) -> list[defs.Source]:
    """The chosen sources as the steward may read them (what the definition's validation
    reads): a hidden product is unknown, like a missing one."""
    chosen = [("derive-source", form.source)]
    if form.source2:
        chosen.append(("derive-source2", form.source2))
    unknown = ("Produit source inconnu : choisissez-le dans la liste.",
               "Unknown source product: choose it from the list.")  # fmt: skip
    refs: list[defs.SourceRef] = []
    for control, raw in chosen:
        try:
            refs.append(defs.SourceRef(product=uuid.UUID(raw)))
        except ValueError:
            raise FormProblem(control, *unknown) from None
    if len(refs) == 2 and refs[0].product == refs[1].product:
        raise FormProblem("derive-source2", "Choisissez deux produits différents.",
                          "Choose two different products.")  # fmt: skip
    owner = str(actor.organisation_id)
    try:
        return await derived.sources_for(
            session, settings, actor, owner, defs.Definition(sources=refs), creating=True
        )
    except Invalid as exc:
        path = str((exc.extra.get("fields") or [{}])[0].get("field", ""))
        raise FormProblem(chosen[1 if "[1]" in path else 0][0], *unknown) from None


async def _context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    form: DeriveForm,
    *,
    first_step: bool = False,
    fresh: bool = False,
) -> dict[str, Any]:
    """The page: the products the steward may choose from; once sources are chosen (and not
    going back to the first step), their fields as the steward may read them; ``fresh``:
    step 2 shown for the first time (the first source's columns ticked)."""
    first = {"source": form.source, "source2": form.source2, "name": form.name,
             "slug": form.slug, "description": form.description}  # fmt: skip
    products = await service.catalogue(session=session, settings=settings, actor=actor)
    shows(request, [p.label_level for p in products])
    context: dict[str, Any] = {
        "form": form,
        "products": products,
        "names": await Directory.load(session, []),
        "sources": [],
        "choices": [],
        "operators": derive_forms.OPERATORS,
        "functions": derive_forms.FUNCTIONS,
        "joins": derive_forms.JOINS,
        "shapes": derive_forms.SHAPES,
        "error": "",
        "control": None,
        "fresh": fresh,
        "back": urlencode({"etape": "1", **{k: v for k, v in first.items() if v}}),
    }
    if form.source and not first_step:
        try:
            sources = await _sources(session, settings, actor, form)
        except FormProblem as exc:
            context.update(error=in_words(request, exc), control=exc.control)
            return context
        context.update(sources=sources, choices=derive_forms.field_choices(sources))
    return context


@router.get("/donnees/deriver", response_class=HTMLResponse)
async def derive_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """Step 1 (the sources, the name); with ``?source=<id>&source2=<id>``, step 2 (the
    computation over their fields); ``etape=1`` goes back to step 1, values kept."""
    service.check_steward(actor)
    form = DeriveForm.of(request.query_params)
    back = request.query_params.get("etape") == "1"
    context = await _context(
        request, session, settings, actor, form, first_step=back, fresh=not back
    )
    return render(request, TEMPLATE, context, status_code=422 if context["error"] else 200)


@router.post("/donnees/deriver", response_class=HTMLResponse)
async def create_derived(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """Creates the derived product and shows its page; any refusal (an incomplete form, a
    definition the sources cannot honour, an identifier taken) changes nothing and shows the
    form again with the reason."""
    posted = await request.form(max_files=0, max_fields=200)
    service.check_steward(actor)
    form = DeriveForm.of(posted)
    form.slug = form.product_slug()
    rows: derive_forms.Rows | None = None
    try:
        await _sources(session, settings, actor, form)
        definition, rows = form.definition()
        async with session.begin_nested():
            product = await derived_create.create_derived(
                session=session,
                settings=settings,
                actor=actor,
                slug=form.slug,
                name=form.name,
                description=form.description,
                tags=[],
                definition=definition,
                rules=None,
                label=None,
            )
    except (Invalid, Conflict, Forbidden) as exc:
        context = await _context(request, session, settings, actor, form)
        context.update(error=in_words(request, exc), control=derive_forms.control_of(exc, rows))
        return render(request, TEMPLATE, context, status_code=exc.status)
    return RedirectResponse(f"/donnees/{product.id}", status_code=303)
