"""Publications (ADR 0035): a steward proposes publishing a data product as a public dataset,
a second steward of the domain approves it (four eyes) and release 1 is made; refreshes make
new releases; a change of the product's schema holds the next one until a steward
acknowledges it; a steward withdraws a dataset with a reason. Only what the public principal
may read under the product's own policy is publishable. Every decision writes the row, its
audit record and its outbox event in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.events.outbox import emit
from hypervision.identity.principal import Principal
from hypervision.opendata import releases
from hypervision.opendata.models import (
    PUBLICATION_KIND,
    Publication,
    PublicationState,
    Release,
    Schedule,
)
from hypervision.opendata.public_principal import (
    public_context,
    public_filter,
    public_principal,
)
from hypervision.opendata.schemas import LICENCES, PublicationCreate
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action, authorize
from hypervision.products import derived
from hypervision.products import service as products
from hypervision.products.models import DataProduct
from hypervision.records import access

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EVERY = {Schedule.DAILY.value: timedelta(days=1), Schedule.HOURLY.value: timedelta(hours=1)}


class NotPublishable(Invalid):
    code = "not_publishable"


def schema_fingerprint(product: DataProduct) -> str:
    fields = [(f.get("name"), f.get("type")) for f in product.table_schema.get("fields", [])]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _label_reasons(settings: Settings, product: DataProduct) -> list[tuple[str, str]]:
    reasons = []
    lowest = settings.label_levels[0]
    if product.label_level != lowest:
        reasons.append(
            (
                f"le produit est marqué {product.label_level} : seul le niveau {lowest} se publie",
                f"the product is labelled {product.label_level}: only {lowest} may be published",
            )
        )
    if product.need_to_know:
        reasons.append(
            (
                "le produit est réservé à des groupes (besoin d'en connaître)",
                "the product is restricted to need-to-know groups",
            )
        )
    if product.audience:
        reasons.append(
            (
                "le produit n'est diffusé qu'à certaines organisations",
                "the product is released to some organisations only",
            )
        )
    return reasons or [("le produit n'est pas lisible du public", "the public may not read it")]


async def check_publishable(
    *,
    session: AsyncSession,
    settings: Settings,
    product: DataProduct,
    columns: Sequence[str],
    conditions: Sequence[str],
    aggregation: dict[str, Any] | None,
) -> None:
    """Refuse (422/403, the reason in words) unless the public principal may read, under the
    product's label and its stewards' rules, every chosen column and every chosen row."""
    async with public_context(session, settings):  # the label's rule, and RLS behind it
        seen = await session.scalar(
            select(func.count()).where(
                DataProduct.id == product.id, public_filter(session, settings)
            )
        )
    if seen != 1:
        reasons = _label_reasons(settings, product)
        raise NotPublishable(
            "Publication impossible : " + " ; ".join(r[0] for r in reasons) + ".",
            "Cannot publish: " + "; ".join(r[1] for r in reasons) + ".",
        )
    public = public_principal(settings)
    try:
        await derived.check_reader(
            session=session, settings=settings, actor=public, product=product
        )
    except AppError as exc:
        raise Forbidden(
            f"Publication impossible : {exc.fr}", f"Cannot publish: {exc.en}", code=exc.code
        ) from None
    dialect = session.get_bind().dialect.name
    reading = products.reading_for(settings, public, product, dialect)
    used = list(columns)
    if aggregation:
        used = list(aggregation["group_by"])
        for raw in aggregation["measures"]:
            used += [n for n in [releases.parse_measure(raw)[1]] if n]
    if not used:
        raise Invalid("Choisissez au moins une colonne.", "Choose at least one column.")
    for name in used:
        if name in reading.types and name not in reading.columns:
            raise Forbidden(
                f"Publication impossible : les règles du produit cachent la colonne « {name} » "
                "au public.",
                f"Cannot publish: the product's rules hide the column {name!r} from the public.",
                code="not_publishable",
            )
        reading.column(name, "columns")  # 422 for an unknown field
    where = [reading.condition(products.parse_condition(c)) for c in conditions]
    table = reading.table
    names = list(reading.types)
    hidden = reading.rules.row_filter(reading.reader, {n: table.c[n] for n in names}, dialect)
    async with derived.system_context(session, settings):
        count = await session.scalar(
            select(func.count())
            .select_from(table)
            .where(table.c._to.is_(None), *where, not_(func.coalesce(hidden, false())))
        )
    if count:
        raise Forbidden(
            f"Publication impossible : les règles du produit cachent au public {count} ligne(s) "
            "de cette sélection. Filtrez-les ou revoyez les règles.",
            f"Cannot publish: the product's rules hide {count} row(s) of this selection from "
            "the public. Filter them out or review the rules.",
            code="not_publishable",
        )


async def _event(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    publication: Publication,
    product: DataProduct,
    detail: dict[str, Any] | None = None,
) -> None:
    detail = {"slug": publication.slug, "state": publication.state, **(detail or {})}
    await audit.record(
        session=session,
        actor=actor,
        action=f"opendata.{action}",
        surface="api" if actor else "schedule",
        resource_type="opendata_publication",
        resource_ids=[publication.id, product.id],
        labels=[product.label_level],
        detail=detail,
    )
    # Not a topic of the live stream (the kind is not ``live``): consumers of the outbox
    # (a harvester's webhook, the catalogue's cache) read it.
    await emit(
        session,
        type=f"opendata.{action}",
        resource_type="opendata_publication",
        resource_id=publication.id,
        label=product.label.as_dict(),
        payload={"product": str(product.id), **detail},
    )


async def propose(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: PublicationCreate
) -> Publication:
    product = await products.find_product(
        session=session, settings=settings, actor=actor, product_id=data.product_id
    )
    products.check_steward(actor, product)
    assert actor.user_id is not None
    if not SLUG.match(data.slug):
        raise Invalid(
            "Identifiant invalide : minuscules, chiffres et tirets (2 à 63 caractères).",
            "Invalid identifier: lower-case letters, digits and dashes (2 to 63 characters).",
            extra={"fields": [{"field": "slug", "message": "invalid"}]},
        )
    if data.aggregation and data.columns:
        raise Invalid(
            "Une publication agrégée se définit par ses groupes, pas par des colonnes.",
            "An aggregated publication is defined by its groups, not by columns.",
        )
    aggregation = data.aggregation.model_dump() if data.aggregation else None
    columns = data.columns or (
        [] if aggregation else [f["name"] for f in product.table_schema["fields"]]
    )
    await check_publishable(
        session=session,
        settings=settings,
        product=product,
        columns=columns,
        conditions=data.conditions,
        aggregation=aggregation,
    )
    if await session.scalar(select(Publication.id).where(Publication.slug == data.slug)):
        raise Conflict(
            "Cet identifiant de jeu de données est déjà pris.", "This dataset slug is taken."
        )
    publication = Publication(
        product_id=product.id,
        organisation_id=product.organisation_id,
        slug=data.slug,
        title=" ".join(data.title.split())[:160],
        description=data.description,
        keywords=[k.strip()[:60] for k in data.keywords if k.strip()],
        themes=list(data.themes),
        licence=LICENCES[data.licence],
        schedule=data.schedule,
        columns=columns,
        conditions=list(data.conditions),
        aggregation=aggregation,
        proposed_by=actor.user_id,
        source_schema=schema_fingerprint(product),
    )
    session.add(publication)
    await session.flush()
    await _event(session, actor, "propose", publication, product)
    return publication


def _visible_publications(session: AsyncSession, settings: Settings, actor: Principal) -> Any:
    products_seen = access.visible(session, settings, actor, DataProduct).subquery()
    return select(Publication).join(products_seen, products_seen.c.id == Publication.product_id)


async def find(
    *, session: AsyncSession, settings: Settings, actor: Principal, publication_id: uuid.UUID
) -> tuple[Publication, DataProduct]:
    query = _visible_publications(session, settings, actor)
    publication: Publication = await access.find_in(
        session, query, PUBLICATION_KIND, publication_id
    )
    product = await session.get(DataProduct, publication.product_id)
    assert product is not None
    return publication, product


async def get(
    *, session: AsyncSession, settings: Settings, actor: Principal, publication_id: uuid.UUID
) -> tuple[Publication, list[Release]]:
    publication, product = await find(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    found = await session.scalars(
        select(Release).where(Release.publication_id == publication.id).order_by(Release.number)
    )
    await audit.record(
        session=session,
        actor=actor,
        action="opendata.publication",
        resource_type="opendata_publication",
        resource_ids=[publication.id],
        labels=[product.label_level],
    )
    return publication, list(found)


async def list_publications(
    *, session: AsyncSession, settings: Settings, actor: Principal, state: str | None
) -> list[Publication]:
    """Publications of the products the actor may see; a security officer lists every
    published one (what is public, and since when)."""
    if state == PublicationState.PUBLISHED.value and actor.has_role(Role.SECURITY_OFFICER):
        query = (
            select(Publication)
            .join(DataProduct, DataProduct.id == Publication.product_id)
            .where(public_filter(session, settings))
        )
    else:
        authorize(actor, Action.READ)
        query = _visible_publications(session, settings, actor)
    if state:
        query = query.where(Publication.state == state)
    rows = list(await session.scalars(query.order_by(Publication.proposed_at.desc()).limit(500)))
    await audit.record(
        session=session,
        actor=actor,
        action="opendata.publications",
        resource_type="opendata_publication",
        resource_ids=[p.id for p in rows],
    )
    return rows


def _check_state(publication: Publication, *states: PublicationState) -> None:
    if publication.state not in states:
        raise Conflict(
            f"Cette publication est à l'état « {publication.state} ».",
            f"This publication is {publication.state}.",
        )


async def approve(
    *, session: AsyncSession, settings: Settings, actor: Principal, publication_id: uuid.UUID
) -> tuple[Publication, Release]:
    """Approve a proposed publication (a second steward of its domain): release 1 is made.
    Returns the publication with it (its slug names the release's downloads)."""
    publication, product = await find(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    products.check_steward(actor, product)
    _check_state(publication, PublicationState.PROPOSED)
    if actor.user_id == publication.proposed_by:
        raise Forbidden(
            "Quatre yeux : un second gestionnaire de données du domaine approuve la "
            "publication, pas celui qui l'a proposée.",
            "Four eyes: a second data steward of the domain approves, not the proposer.",
            code="four_eyes",
        )
    await check_publishable(
        session=session,
        settings=settings,
        product=product,
        columns=publication.columns,
        conditions=publication.conditions,
        aggregation=publication.aggregation,
    )
    now = utcnow()
    publication.state = PublicationState.PUBLISHED.value
    publication.approved_by, publication.approved_at = actor.user_id, now
    publication.source_schema = schema_fingerprint(product)
    release = await _release(session, settings, publication, product, actor, "approval", now)
    await _event(session, actor, "approve", publication, product, {"release": release.number})
    return publication, release


async def _release(
    session: AsyncSession,
    settings: Settings,
    publication: Publication,
    product: DataProduct,
    actor: Principal | None,
    trigger: str,
    now: datetime,
) -> Release:
    release = await releases.make_release(
        session=session,
        settings=settings,
        publication=publication,
        product=product,
        created_by=actor.user_id if actor else None,
        trigger=trigger,
    )
    publication.modified_at = now
    every = EVERY.get(publication.schedule)
    publication.next_refresh_at = now + every if every else None
    return release


async def refresh_one(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal | None,
    publication: Publication,
    product: DataProduct,
    trigger: str,
    now: datetime | None = None,
) -> Release | None:
    """A new release, or None when the refresh is held (schema changed, or the product is no
    longer publishable): the publication is then flagged until a steward acknowledges.
    ``now``: the time the next scheduled refresh counts from (the round's)."""
    now = now or utcnow()
    if publication.held:
        return None
    reason: tuple[str, str] | None = None
    if schema_fingerprint(product) != publication.source_schema:
        reason = (
            "Le schéma du produit a changé depuis la publication : en attente de revue par un "
            "gestionnaire de données.",
            "The product's schema changed since publication: awaiting steward review.",
        )
    else:
        try:
            await check_publishable(
                session=session,
                settings=settings,
                product=product,
                columns=publication.columns,
                conditions=publication.conditions,
                aggregation=publication.aggregation,
            )
        except AppError as exc:
            reason = (exc.fr, exc.en)
    if reason is not None:
        publication.held, publication.held_reason = True, f"{reason[0]} | {reason[1]}"
        publication.next_refresh_at = None
        await _event(session, actor, "hold", publication, product, {"trigger": trigger})
        return None
    release = await _release(session, settings, publication, product, actor, trigger, now)
    await _event(session, actor, "release", publication, product, {"release": release.number})
    return release


async def refresh(
    *, session: AsyncSession, settings: Settings, actor: Principal, publication_id: uuid.UUID
) -> tuple[Publication, Release | None]:
    publication, product = await find(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    products.check_steward(actor, product)
    _check_state(publication, PublicationState.PUBLISHED)
    if publication.held:
        raise Conflict(
            "Publication en attente de revue : " + publication.held_reason.split(" | ")[0],
            "Publication awaiting steward review.",
            code="publication_held",
        )
    release = await refresh_one(
        session=session,
        settings=settings,
        actor=actor,
        publication=publication,
        product=product,
        trigger="manual",
    )
    return publication, release


async def acknowledge(
    *, session: AsyncSession, settings: Settings, actor: Principal, publication_id: uuid.UUID
) -> Publication:
    """A steward has reviewed the change: the publication's columns must still be publishable
    under the product's current schema and rules; refreshes resume."""
    publication, product = await find(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    products.check_steward(actor, product)
    _check_state(publication, PublicationState.PUBLISHED)
    if not publication.held:
        raise Conflict("Rien à revoir.", "Nothing to review.")
    await check_publishable(
        session=session,
        settings=settings,
        product=product,
        columns=publication.columns,
        conditions=publication.conditions,
        aggregation=publication.aggregation,
    )
    publication.held, publication.held_reason = False, ""
    publication.source_schema = schema_fingerprint(product)
    every = EVERY.get(publication.schedule)
    publication.next_refresh_at = utcnow() if every else None
    await _event(session, actor, "acknowledge", publication, product)
    return publication


async def withdraw(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    publication_id: uuid.UUID,
    reason: str,
) -> Publication:
    publication, product = await find(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    products.check_steward(actor, product)
    _check_state(publication, PublicationState.PROPOSED, PublicationState.PUBLISHED)
    publication.state = PublicationState.WITHDRAWN.value
    publication.withdrawn_by, publication.withdrawn_at = actor.user_id, utcnow()
    publication.withdrawal_reason = " ".join(reason.split())[:2000]
    publication.next_refresh_at = None
    publication.modified_at = utcnow()
    await _event(session, actor, "withdraw", publication, product)
    return publication


async def due(session: AsyncSession, now: datetime) -> list[tuple[Publication, DataProduct]]:
    """Published, scheduled, not held publications whose next refresh has come (system)."""
    found = await session.execute(
        select(Publication, DataProduct)
        .join(DataProduct, DataProduct.id == Publication.product_id)
        .where(
            Publication.state == PublicationState.PUBLISHED.value,
            Publication.held.is_(False),
            Publication.next_refresh_at.is_not(None),
            Publication.next_refresh_at <= now,
        )
    )
    return [(p, d) for p, d in found.all()]


def not_found() -> NotFound:
    return NotFound("Jeu de données introuvable.", "Dataset not found.")
