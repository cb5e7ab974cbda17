"""Data products' quality on the web (ADR 0027): the "Qualité" section of a product's page
(``_product_quality.html``), the rows failing a rule, and the stewards' form to declare the
rules without code."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Invalid
from hypervision.core.i18n import N_
from hypervision.identity.principal import Principal
from hypervision.products import quality, quality_read, service
from hypervision.products.models import DataProduct
from hypervision.products.quality_rules import KIND_NAMES
from hypervision.products.rules import RuleError
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
PAGE = 50
KINDS = {
    "required": N_("Required value"),
    "unique": N_("Unique value"),
    "range": N_("Range (minimum, maximum)"),
    "allowed": N_("Allowed values"),
    "pattern": N_("Pattern (regular expression)"),
    "reference": N_("Value found in another product"),
    "freshness": N_("Freshness (updated at least every …)"),
    "row_count": N_("Number of rows"),
}
SEVERITIES = {"warning": N_("Warning: the import goes through, flagged"),
              "blocking": N_("Blocking: the import is refused")}  # fmt: skip
TRIGGERS = {
    "import": N_("import"),
    "schedule": N_("scheduled"),
    "rules": N_("rules changed"),
    "manual": N_("on demand"),
}
assert set(KINDS) == set(KIND_NAMES)


def is_steward(actor: Principal, product: DataProduct) -> bool:
    try:
        service.check_steward(actor, product)
    except Forbidden:
        return False
    return True


async def context(
    session: AsyncSession, settings: Settings, actor: Principal, product: DataProduct
) -> dict[str, Any]:
    """What the product page's "Qualité" section shows (an audited read)."""
    found = await quality_read.view(
        session=session, settings=settings, actor=actor, product_id=product.id
    )
    return {
        "quality_view": found,
        "quality_kinds": KINDS,
        "quality_triggers": TRIGGERS,
        "can_manage_quality": is_steward(actor, product),
    }


@router.get("/donnees/{product_id}/qualite/echecs", response_class=HTMLResponse)
async def failures_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
    regle: Annotated[str, Query(max_length=32)] = "",
    after: Annotated[str, Query(max_length=24)] = "",
) -> Response:
    """The rows that failed a rule in the latest check, as the product's rules let you see them."""
    page = await quality_read.failures(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        rule_id=regle,
        after=after or None,
        limit=PAGE,
    )
    shows(request, [page.product.label_level])
    fields = {f["name"]: f for f in page.product.table_schema.get("fields", [])}
    return render(
        request,
        "product_failures.html",
        {
            "product": page.product,
            "page": page,
            "fields": [fields[n] for n in page.columns if n in fields],
            "quality_kinds": KINDS,
        },
    )


def _form_rules(product: DataProduct) -> list[dict[str, Any]]:
    return [dict(r) for r in product.quality_rules or []]


async def _form(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    error: str = "",
    problems: list[dict[str, Any]] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shows(request, [product.label_level])
    others = [p for p in await service.catalogue(session=session, settings=settings, actor=actor)
              if p.id != product.id]  # fmt: skip
    rules = [(r, r.describe(translator(request).locale == "en")) for r in quality.stored(product)]
    return render(
        request,
        "product_quality_form.html",
        {
            "product": product,
            "rules": rules,
            "fields": product.table_schema.get("fields", []),
            "others": others,
            "quality_kinds": KINDS,
            "severities": SEVERITIES,
            "error": error,
            "problems": problems or [],
            "values": values or {},
        },
        status_code=status_code,
    )


async def _stewarded(
    session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> DataProduct:
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    service.check_steward(actor, product)
    return product


@router.get("/donnees/{product_id}/qualite", response_class=HTMLResponse)
async def rules_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """The stewards' form: the product's quality rules, one removed or added at a time."""
    product = await _stewarded(session, settings, actor, product_id)
    return await _form(request, session, settings, actor, product)


def rule_of(form: dict[str, str]) -> dict[str, Any]:
    """A rule from the form's fields (empty fields left out; numbers kept as typed)."""
    rule: dict[str, Any] = {"kind": form.get("kind", ""), "severity": form.get("severity", "")}
    for name in ("field", "pattern", "product", "product_field", "note"):
        if form.get(name, "").strip():
            rule[name] = form[name].strip()
    for name in ("min", "max"):
        raw = form.get(name, "").strip().replace(",", ".")
        if raw:
            try:
                rule[name] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
            except ValueError:
                rule[name] = raw  # a date, or a mistake the validation names
    if form.get("values", "").strip():
        rule["values"] = [v.strip() for v in form["values"].split(";") if v.strip()]
    if form.get("max_age", "").strip():
        try:
            age = int(form["max_age"])
        except ValueError:
            age = 0
        rule["max_age_minutes"] = age * (60 if form.get("age_unit") == "hours" else 1)
    if rule["kind"] not in ("range", "row_count", "allowed", "pattern", "reference"):
        rule.pop("values", None)
    return {k: v for k, v in rule.items() if v not in ("", None)}


@router.post("/donnees/{product_id}/qualite", response_class=HTMLResponse)
async def save_rules(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    product_id: uuid.UUID,
) -> Response:
    """Add a rule or remove one (stewards of the domain); a bad rule changes nothing and the
    form says what is wrong."""
    product = await _stewarded(session, settings, actor, product_id)
    form = {k: str(v) for k, v in (await request.form(max_files=0, max_fields=20)).items()}
    items = _form_rules(product)
    if form.get("action") == "remove":
        items = [r for r in items if r.get("id") != form.get("rule")]
    else:
        items.append(rule_of(form))
    try:
        async with session.begin_nested():
            await quality.set_rules(
                session=session, settings=settings, actor=actor, product_id=product.id,
                items=items,
            )  # fmt: skip
    except Invalid as exc:
        problems = list(exc.extra.get("problems", [])) if isinstance(exc, RuleError) else []
        return await _form(request, session, settings, actor, product, in_words(request, exc),
                           problems, form, status_code=exc.status)  # fmt: skip
    return RedirectResponse(f"/donnees/{product.id}#qualite", status_code=303)
