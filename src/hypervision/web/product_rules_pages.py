"""A data product's access rules on the web (issue 17): everyone who may see the product reads
its rules in words; the stewards of its domain write them in a form (no code) and decide, as
the second pair of eyes, on the changes that would widen access."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Conflict, Forbidden
from hypervision.core.i18n import N_
from hypervision.identity.principal import Principal
from hypervision.products import service
from hypervision.products.models import DataProduct, ProductRuleChange
from hypervision.products.rules import RuleError
from hypervision.records.labelling import Directory
from hypervision.web import rule_forms
from hypervision.web.product_pages import read_product
from hypervision.web.render import in_words, render, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
DONE = {
    "applied": N_("The new rules apply from the next request."),
    "pending": N_(
        "These rules could show some readers more: they wait for a second steward of the "
        "domain, and the current rules apply until then."
    ),
    "approved": N_("Change approved: the new rules apply from the next request."),
    "rejected": N_("Change rejected: the rules stay as they were."),
}


def vocabulary(request: Request, product: DataProduct, names: Directory) -> rule_forms.Vocabulary:
    fields = {
        f["name"]: f.get("title") or f["name"] for f in product.table_schema.get("fields", [])
    }
    return rule_forms.Vocabulary(fields, names.orgs, translator(request).gettext)


async def _context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
) -> dict[str, Any]:
    product = await read_product(request, session, settings, actor, product_id)
    steward = service.is_steward(actor, product)
    pending: list[ProductRuleChange] = []
    if steward:
        pending = await service.pending_rule_changes(
            session=session, settings=settings, actor=actor, product_id=product.id
        )
    names = await Directory.load(session, [c.proposed_by for c in pending])
    words = vocabulary(request, product, names)
    gettext = translator(request).gettext
    fields = product.table_schema.get("fields", [])
    return {
        "product": product,
        "names": names,
        "described": rule_forms.describe(product.rules or {}, words),
        "steward": steward,
        "pending": [(c, rule_forms.describe(c.rules, words)) for c in pending],
        "form": rule_forms.form_of(product.rules, names.orgs),
        "row_sides": rule_forms.operand_choices(fields, gettext, rows=True),
        "column_sides": rule_forms.operand_choices(fields, gettext, rows=False),
        "columns": list(fields),
        "operators": rule_forms.OPERATORS,
        "matches": rule_forms.MATCHES,
        "errors": [],
        "reason": "",
        "done": None,
        "error": "",
    }


@router.get("/donnees/{product_id}/regles", response_class=HTMLResponse)
async def rules_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
    fait: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The product's rules in words; for its stewards, the form and the changes awaiting them."""
    context = await _context(request, session, settings, actor, product_id)
    context["done"] = DONE.get(fait)
    return render(request, "product_rules.html", context)


@router.post("/donnees/{product_id}/regles", response_class=HTMLResponse)
async def save_rules(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Adds or removes a rule or a condition (the form comes back), or saves the rules: applied
    at once when they cannot widen access, otherwise kept for a second steward."""
    posted = await request.form(max_files=0, max_fields=4000)
    context = await _context(request, session, settings, actor, product_id)
    product: DataProduct = context["product"]
    if not context["steward"]:
        raise Forbidden(
            "Seuls les gestionnaires de données du domaine écrivent ses règles.",
            "Only the domain's data stewards write its rules.",
        )
    form, action = rule_forms.posted(posted)
    reason = str(posted.get("reason") or "")[:2000]
    context.update(form=form, reason=reason)
    if action != "save":
        return render(request, "product_rules.html", context)
    types = {f["name"]: f.get("type", "string") for f in product.table_schema.get("fields", [])}
    tree = rule_forms.tree_of(form, types, context["names"].orgs)
    try:
        async with session.begin_nested():
            _, change = await service.propose_rules(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product.id,
                tree=tree,
                reason=reason,
            )
    except RuleError as exc:
        gettext = translator(request).gettext
        context["error"] = gettext("The rules were not saved: correct the points below.")
        context["errors"] = [
            (rule_forms.where(p.path, gettext), in_words(request, p)) for p in exc.problems
        ]
        return render(request, "product_rules.html", context, status_code=exc.status)
    done = "pending" if change is not None else "applied"
    return RedirectResponse(f"/donnees/{product.id}/regles?fait={done}", status_code=303)


@router.post("/donnees/{product_id}/regles/{change_id}", response_class=HTMLResponse)
async def decide(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
    change_id: uuid.UUID,
) -> Response:
    """A second steward approves or rejects a change that would widen access."""
    posted = await request.form(max_files=0, max_fields=5)
    approve = posted.get("decision") == "approve"
    try:
        async with session.begin_nested():
            await service.decide_rules(
                session=session,
                settings=settings,
                actor=actor,
                product_id=product_id,
                change_id=change_id,
                approve=approve,
            )
    except (Conflict, Forbidden) as exc:
        context = await _context(request, session, settings, actor, product_id)
        if not context["steward"]:
            raise
        context["error"] = in_words(request, exc)
        return render(request, "product_rules.html", context, status_code=exc.status)
    done = "approved" if approve else "rejected"
    return RedirectResponse(f"/donnees/{product_id}/regles?fait={done}", status_code=303)
