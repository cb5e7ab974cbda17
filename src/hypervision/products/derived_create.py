"""Creating a derived product (ADR 0028): a product of the steward's domain whose schema
comes from its definition and whose label dominates its sources', computed at once; and its
release by a second steward when it draws whole on a source whose rules restrict readers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.products import base, derived_labels, service
from hypervision.products import definition as defs
from hypervision.products.derived import compute, derivation_of, sources_for, system_context
from hypervision.products.derived_models import ProductDerivation, ProductInput
from hypervision.products.models import DataProduct
from hypervision.records import versions
from hypervision.records.schemas import LabelIn


async def create_derived(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    slug: str,
    name: str,
    description: str,
    tags: Sequence[str],
    definition: Mapping[str, Any],
    rules: Mapping[str, Any] | None,
    label: LabelIn | None,
) -> DataProduct:
    """A derived product of the steward's domain, computed at once (version 1 of its data):
    its schema comes from the definition; its label, given or the least that dominates its
    sources, must dominate each of them (422 naming the source otherwise)."""
    service.check_steward(actor)
    assert actor.organisation_id is not None and actor.user_id is not None
    parsed = defs.parse(definition)
    owner = str(actor.organisation_id)
    sources = await sources_for(session, settings, actor, owner, parsed, creating=True)
    plan = defs.compile_plan(parsed, sources)
    labels = [s.product.label for s in sources]
    lineage = await derived_labels.ancestries(
        session, {owner, *(a for lab in labels for a in lab.audience)}
    )
    if label is None:
        least = derived_labels.least(settings, owner, labels, lineage)
        if least is None:
            raise defs.bad(
                "label",
                "les diffusions des sources n'ont rien en commun : donnez un marquage.",
                "the sources' audiences share nothing: give a label.",
            )
        label = await derived_labels.as_input(session, least)
    product = await service.create_product(
        session=session,
        settings=settings,
        actor=actor,
        slug=slug,
        name=name,
        description=description,
        tags=tags,
        table_schema=plan.table_schema,
        rules=rules,
        label=label,
    )
    lineage = await derived_labels.ancestries(
        session, {owner, *product.audience, *(a for lab in labels for a in lab.audience)}
    )
    for i, source in enumerate(sources):
        found = derived_labels.problems(settings, product.label, source.product.label, lineage)
        if found:
            fr, en = "; ".join(p[0] for p in found), "; ".join(p[1] for p in found)
            raise defs.bad(
                f"definition.sources[{i}].product",
                f"le marquage du produit dérivé ne couvre pas celui de la source ({fr}).",
                f"the derived product's label does not cover the source's ({en}).",
            )
    session.add(
        ProductDerivation(
            product_id=product.id,
            definition=parsed.model_dump(mode="json", exclude_defaults=True),
            defined_by=actor.user_id,
            defined_at=utcnow(),
            computed_from={},
            failure=None,
            needs_release=any(
                str(s.product.organisation_id) == owner and restricts(settings, s.product)
                for s in sources
            ),
        )
    )
    for source in sources:
        session.add(ProductInput(derived_id=product.id, source_id=source.product.id))
    await session.flush()
    derivation = await derivation_of(session, product.id)
    assert derivation is not None
    async with system_context(session, settings):
        await compute(session, settings, actor, product, derivation, "create")
    return product


def restricts(settings: Settings, source: DataProduct) -> bool:
    """Whether the stewards' rules of ``source`` (read whole by a derived product of its own
    domain) hide some rows or columns from readers its label lets in."""
    schema = base.schema_of(source)
    return base.rules_of(settings, source, schema).restricts()


async def release_derived(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> DataProduct:
    """A second steward of the domain releases a withheld derived product (four eyes, ADR
    0028): from then on its readers read it under its own label and rules. A new version of
    the product, its event and audit record."""
    product = await base.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    base.check_steward(actor, product)
    derivation = await derivation_of(session, product.id)
    if derivation is None or not derivation.withheld:
        raise Conflict(
            "Ce produit n'attend pas de publication.", "This product is not waiting for release."
        )
    if derivation.defined_by == actor.user_id:
        raise Forbidden(
            "Un second gestionnaire de données du domaine publie ce produit, pas son auteur.",
            "A second data steward of the domain releases this product, not its author.",
            code="four_eyes",
        )
    before = versions.snapshot(product)
    derivation.released_by = actor.user_id
    derivation.released_at = utcnow()
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="release",
        before=before,
        summary={"defined_by": str(derivation.defined_by)},
    )
    return product
