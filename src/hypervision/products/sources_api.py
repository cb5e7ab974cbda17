"""A product's HTTP source through the API (docs/adr/0029): set it, remove it, read it with
its runs, run it now. The stewards of the product's domain only."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.products import sources
from hypervision.products.source_models import ProductSource, ProductSourceRun
from hypervision.records.labelling import Directory

router = APIRouter(
    prefix="/api/v1", tags=["data products"], dependencies=CREDENTIALS, responses=SIGNED_IN
)


class SourceUpdate(BaseModel):
    url: str = Field(min_length=8, max_length=2000, description="http:// or https://")
    format: str = Field(default="csv", description="csv, json or geojson")
    mode: str = Field(default="replace", description="replace, append or upsert")
    interval_minutes: int = Field(default=60, ge=1, le=sources.MAX_INTERVAL)


class SourceRead(BaseModel):
    url: str
    format: str
    mode: str
    interval_minutes: int
    set_by: str | None
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_status: str | None
    updated_at: datetime


class RunRead(BaseModel):
    id: uuid.UUID
    started_at: datetime
    duration_ms: int
    trigger: str = Field(description="schedule, manual or cli")
    status: str = Field(description="imported, unchanged or failed")
    http_status: int | None
    rows: int | None = Field(description="rows read (imported runs)")
    data_version: int | None = Field(description="the data version it made")
    error: str = Field(description="why it failed, in words")


class SourceAndRuns(BaseModel):
    source: SourceRead | None
    runs: list[RunRead] = Field(description="the last 50 runs, newest first")


def source_read(source: ProductSource, names: Directory) -> SourceRead:
    return SourceRead(
        url=source.url,
        format=source.format,
        mode=source.mode,
        interval_minutes=source.interval_minutes,
        set_by=names.user(source.owner_id),
        enabled=source.enabled,
        next_run_at=source.next_run_at,
        last_run_at=source.last_run_at,
        last_status=source.last_status,
        updated_at=source.updated_at,
    )


def run_read(run: ProductSourceRun) -> RunRead:
    return RunRead(
        id=run.id,
        started_at=run.started_at,
        duration_ms=run.duration_ms,
        trigger=run.trigger,
        status=run.status,
        http_status=run.http_status,
        rows=run.rows,
        data_version=run.data_version,
        error=run.error,
    )


@router.get("/products/{product_id}/source", response_model=SourceAndRuns, responses=NOT_FOUND)
async def get_source(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> SourceAndRuns:
    """The product's HTTP source (``null`` when it has none) and its last runs (stewards of
    its domain)."""
    _, source, runs = await sources.source_and_runs(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    names = await Directory.load(session, [source.owner_id] if source else [])
    return SourceAndRuns(
        source=source_read(source, names) if source else None, runs=[run_read(r) for r in runs]
    )


@router.put("/products/{product_id}/source", response_model=SourceRead, responses=NOT_FOUND)
async def set_source(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    body: SourceUpdate,
) -> SourceRead:
    """Attach or change the product's HTTP source (a CSV, JSON or GeoJSON URL on a host the
    operator allows: ``HYPERVISION_PRODUCT_SOURCE_HOSTS``), polled every
    ``interval_minutes``; its first run is due at once. Runs import in your name."""
    source = await sources.set_source(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        config=sources.SourceConfig(body.url, body.format, body.mode, body.interval_minutes),
    )
    return source_read(source, await Directory.load(session, [source.owner_id]))


@router.delete("/products/{product_id}/source", status_code=204, responses=NOT_FOUND)
async def remove_source(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> Response:
    """Detach the product's source (its runs stay in the history)."""
    await sources.remove_source(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return Response(status_code=204)


@router.post("/products/{product_id}/source/run", response_model=RunRead, responses=NOT_FOUND)
async def run_source(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> RunRead:
    """Fetch and import the source now. The run says how it went: ``imported``,
    ``unchanged`` or ``failed`` with the error (a failed run is still 200: it is recorded)."""
    run = await sources.run_now(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return run_read(run)
