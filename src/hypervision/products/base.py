"""What every part of the data products builds on: a product's schema and rules as objects,
who manages it, finding it through the policy, when it last had data. ``service`` and the
modules beside it (quality, derived products, sources) import this, never the other way."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Forbidden
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action, authorize
from hypervision.products.models import PRODUCT_KIND, DataProduct, ProductVersion
from hypervision.products.rules import RuleSet
from hypervision.products.schema import TableSchema
from hypervision.records import access


def schema_of(product: DataProduct) -> TableSchema:
    return TableSchema.from_descriptor(product.table_schema)


def field_types(schema: TableSchema) -> dict[str, str]:
    return {f.name: f.type for f in schema.fields}


def rules_of(settings: Settings, product: DataProduct, schema: TableSchema) -> RuleSet:
    return RuleSet.parse(product.rules, field_types(schema), settings.label_levels)


def check_steward(actor: Principal, product: DataProduct | None = None) -> None:
    """Stewards of the product's domain (its owner organisation) manage it."""
    authorize(actor, Action.WRITE)
    domain = product.organisation_id if product is not None else actor.organisation_id
    if not actor.has_role(Role.DATA_STEWARD) or actor.organisation_id != domain:
        raise Forbidden(
            "Seuls les gestionnaires de données (data stewards) du domaine propriétaire "
            "gèrent ce produit.",
            "Only the data stewards of the owning domain manage this product.",
        )


def is_steward(actor: Principal, product: DataProduct | None = None) -> bool:
    """``check_steward`` as a yes or no (no product: a steward of their own domain)."""
    try:
        check_steward(actor, product)
    except Forbidden:
        return False
    return True


def visible_products(
    session: AsyncSession, settings: Settings, actor: Principal
) -> Select[DataProduct]:
    return access.visible(session, settings, actor, DataProduct)


async def find_product(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> DataProduct:
    query = visible_products(session, settings, actor)
    product: DataProduct = await access.find_in(session, query, PRODUCT_KIND, product_id)
    return product


async def last_imports(
    *, session: AsyncSession, products: Sequence[DataProduct]
) -> dict[uuid.UUID, datetime]:
    """When each of ``products`` (already read through the policy) last had data imported."""
    if not products:
        return {}
    query = (
        select(ProductVersion.product_id, func.max(ProductVersion.at))
        .where(ProductVersion.product_id.in_([p.id for p in products]))
        .group_by(ProductVersion.product_id)
    )
    return {pid: at for pid, at in (await session.execute(query)).all()}
