"""The anonymous public reader (ADR 0035): the lowest clearance, no organisation, no group, no
role. Open data compiles the one policy — the label's visibility rule, the stewards' row and
column rules, derived products' checks — for this principal; nothing is hand-coded beside it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from hypervision.policy.rules import Subject, visible_filter
from hypervision.products.models import DataProduct
from hypervision.records import access


def public_principal(settings: Settings, request_id: str | None = None) -> Principal:
    return Principal(
        user_id=None,
        username="public",
        organisation_id=None,
        organisation_ancestry=(),
        clearance=settings.label_levels[0],
        roles=frozenset(),
        groups=frozenset(),
        scopes=frozenset(),
        surface="opendata",
        request_id=request_id,
    )


def public_filter(session: AsyncSession, settings: Settings) -> ColumnElement[bool]:
    """The products the public principal may see (the label's rule, compiled for it)."""
    subject = Subject.of(settings, public_principal(settings))
    return visible_filter(subject, DataProduct, access.dialect_of(session))


async def public_product(
    session: AsyncSession, settings: Settings, product_id: uuid.UUID
) -> DataProduct | None:
    found: DataProduct | None = await session.scalar(
        select(DataProduct).where(DataProduct.id == product_id, public_filter(session, settings))
    )
    return found


async def bind_public(session: AsyncSession, settings: Settings) -> None:
    """Make the public principal the identity of the transaction (PostgreSQL RLS)."""
    await rls.bind(session, settings, public_principal(settings))


@asynccontextmanager
async def public_context(session: AsyncSession, settings: Settings) -> AsyncIterator[None]:
    """The public principal's context for the block (PostgreSQL), then the caller's back."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = await session.scalar(select(func.current_setting(rls.SETTING, True)))
    await bind_public(session, settings)
    try:
        yield
    finally:
        await rls.set_context(session, before or "")
