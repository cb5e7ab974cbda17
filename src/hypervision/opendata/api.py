"""Stewards' API of publications (ADR 0035): propose, list, get, approve, refresh, withdraw,
acknowledge a schema change. Security officers list what is published."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.opendata import service
from hypervision.opendata.models import Publication, Release
from hypervision.opendata.schemas import (
    PublicationCreate,
    PublicationRead,
    ReleaseRead,
    Withdrawal,
)

router = APIRouter(
    prefix="/api/v1", tags=["open data"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
FORMATS = ("csv", "json", "geojson", "parquet")


def downloads(slug: str, release: Release) -> dict[str, str]:
    names = {f["type"] for f in release.fields}
    return {
        fmt: f"/opendata/datasets/{slug}/releases/{release.number}/data.{fmt}"
        for fmt in FORMATS
        if fmt != "geojson" or "geometry" in names
    }


def release_read(slug: str, release: Release) -> ReleaseRead:
    return ReleaseRead(
        number=release.number,
        created_at=release.created_at,
        trigger=release.trigger,
        row_count=release.row_count,
        sha256=release.sha256,
        suppressed=release.suppressed,
        fields=release.fields,
        temporal=release.temporal,
        bbox=release.bbox,
        downloads=downloads(slug, release),
    )


def publication_read(p: Publication) -> PublicationRead:
    return PublicationRead(
        id=p.id,
        product_id=p.product_id,
        slug=p.slug,
        title=p.title,
        description=p.description,
        keywords=p.keywords,
        themes=p.themes,
        licence=p.licence,
        schedule=p.schedule,
        columns=p.columns,
        conditions=p.conditions,
        aggregation=p.aggregation,
        state=p.state,
        held=p.held,
        held_reason=p.held_reason,
        proposed_by=p.proposed_by,
        proposed_at=p.proposed_at,
        approved_by=p.approved_by,
        approved_at=p.approved_at,
        withdrawn_at=p.withdrawn_at,
        withdrawal_reason=p.withdrawal_reason,
        release_count=p.release_count,
    )


@router.post(
    "/publications",
    response_model=PublicationRead,
    status_code=201,
    responses={**NOT_FOUND, **CONFLICT},
)
async def propose(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, body: PublicationCreate
) -> PublicationRead:
    """Propose publishing a data product as a public dataset (stewards of its domain)."""
    publication = await service.propose(session=session, settings=settings, actor=actor, data=body)
    return publication_read(publication)


@router.get("/publications", response_model=list[PublicationRead])
async def list_publications(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    state: Annotated[Literal["proposed", "published", "withdrawn"] | None, Query()] = None,
) -> list[PublicationRead]:
    """Publications of the products you may see; security officers: ``state=published``
    lists every public dataset and since when (``approved_at``)."""
    rows = await service.list_publications(
        session=session, settings=settings, actor=actor, state=state
    )
    return [publication_read(p) for p in rows]


@router.get("/publications/{publication_id}", response_model=PublicationRead, responses=NOT_FOUND)
async def get_publication(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, publication_id: uuid.UUID
) -> PublicationRead:
    publication, _ = await service.get(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    return publication_read(publication)


@router.get(
    "/publications/{publication_id}/releases",
    response_model=list[ReleaseRead],
    responses=NOT_FOUND,
)
async def list_releases(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, publication_id: uuid.UUID
) -> list[ReleaseRead]:
    publication, found = await service.get(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    return [release_read(publication.slug, r) for r in found]


@router.post(
    "/publications/{publication_id}/approve",
    response_model=ReleaseRead,
    responses={**NOT_FOUND, **CONFLICT},
)
async def approve(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, publication_id: uuid.UUID
) -> ReleaseRead:
    """Approve (a second steward of the domain): release 1 is made."""
    publication, release = await service.approve(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    return release_read(publication.slug, release)


@router.post(
    "/publications/{publication_id}/refresh",
    response_model=PublicationRead,
    responses={**NOT_FOUND, **CONFLICT},
)
async def refresh(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, publication_id: uuid.UUID
) -> PublicationRead:
    """A new release now; held (``held: true``, no release) when the product's schema changed
    or it is no longer publishable."""
    publication, _ = await service.refresh(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    return publication_read(publication)


@router.post(
    "/publications/{publication_id}/acknowledge",
    response_model=PublicationRead,
    responses={**NOT_FOUND, **CONFLICT},
)
async def acknowledge(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, publication_id: uuid.UUID
) -> PublicationRead:
    """A steward has reviewed the product's schema change: refreshes resume."""
    publication = await service.acknowledge(
        session=session, settings=settings, actor=actor, publication_id=publication_id
    )
    return publication_read(publication)


@router.post(
    "/publications/{publication_id}/withdraw",
    response_model=PublicationRead,
    responses={**NOT_FOUND, **CONFLICT},
)
async def withdraw(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    publication_id: uuid.UUID,
    body: Withdrawal,
) -> PublicationRead:
    """Withdraw the dataset: every public URL of it answers 410 with the reason."""
    publication = await service.withdraw(
        session=session,
        settings=settings,
        actor=actor,
        publication_id=publication_id,
        reason=body.reason,
    )
    return publication_read(publication)
