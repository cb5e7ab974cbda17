"""Data products API: the catalogue, a product, its imports and versions, its rows and
aggregates (issue 17)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN, errors
from hypervision.core.uploads import one_file
from hypervision.identity import throttle
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.principal import Principal
from hypervision.products import export, quality, service
from hypervision.products.models import DataProduct, ProductRuleChange, ProductVersion
from hypervision.products.schemas import (
    AggregateRead,
    Decision,
    ImportRead,
    ProductCreate,
    ProductRead,
    QualitySummaryRead,
    RowsRead,
    RuleChangeRead,
    RulesAnswer,
    RulesChange,
    SchemaChange,
    SchemaChanged,
    StatusChange,
    VersionRead,
)
from hypervision.records.labelling import Directory

router = APIRouter(
    prefix="/api/v1", tags=["data products"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
Filters = Annotated[
    list[str],
    Query(
        alias="filter",
        max_length=20,
        description="field:op:value, op in " + ", ".join(service.OPERATORS),
    ),
]
Version = Annotated[int | None, Query(ge=1, description="a data version (default: current)")]


def product_read(
    product: DataProduct, names: Directory, quality: QualitySummaryRead | None = None
) -> ProductRead:
    return ProductRead(
        id=product.id,
        slug=product.slug,
        name=product.name,
        description=product.description,
        tags=product.tags,
        status=product.status,
        successor_id=product.successor_id,
        domain=names.org(product.organisation_id),
        table_schema=product.table_schema,
        rules=product.rules,
        data_version=product.data_version,
        row_count=product.row_count,
        label=names.label(product.label),
        created_at=product.created_at,
        updated_at=product.updated_at,
        version=product.version,
        quality=quality,
    )


async def summaries(
    session: AsyncSession, actor: Principal, products: list[DataProduct]
) -> dict[uuid.UUID, QualitySummaryRead]:
    """The quality summaries of products already read (and audited) through the policy."""
    found = await quality.summaries(session=session, actor=actor, products=products)
    return {pid: QualitySummaryRead(**vars(s)) for pid, s in found.items()}


def version_read(version: ProductVersion, names: Directory) -> VersionRead:
    return VersionRead(
        number=version.number,
        at=version.at,
        author=names.user(version.actor_id),
        mode=version.mode,
        source=version.source,
        rows_added=version.rows_added,
        rows_changed=version.rows_changed,
        rows_removed=version.rows_removed,
        row_count=version.row_count,
        schema_changes=version.schema_changes,
    )


@router.get("/products", response_model=list[ProductRead])
async def catalogue(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    q: Annotated[str, Query(max_length=200)] = "",
) -> list[ProductRead]:
    """The data products you may know of (``q``: words of their name, description, tags or
    fields)."""
    rows = await service.catalogue(session=session, settings=settings, actor=actor, q=q)
    names = await Directory.load(session, [])
    brief = await summaries(session, actor, rows)
    return [product_read(p, names, brief.get(p.id)) for p in rows]


@router.post("/products", response_model=ProductRead, status_code=201, responses=CONFLICT)
async def create_product(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, body: ProductCreate
) -> ProductRead:
    """Create a product of your domain (data stewards), in draft, with its Table Schema, its
    label and its rules."""
    product = await service.create_product(
        session=session,
        settings=settings,
        actor=actor,
        slug=body.slug,
        name=body.name,
        description=body.description,
        tags=body.tags,
        table_schema=body.table_schema,
        rules=body.rules,
        label=body.label,
    )
    return product_read(product, await Directory.load(session, []))


@router.get("/products/{product_id}", response_model=ProductRead, responses=NOT_FOUND)
async def get_product(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> ProductRead:
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await audit.record(
        session=session,
        actor=actor,
        action="product.read",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
    )
    brief = await summaries(session, actor, [product])
    return product_read(product, await Directory.load(session, []), brief.get(product.id))


@router.post(
    "/products/{product_id}/imports",
    response_model=ImportRead,
    status_code=201,
    responses=NOT_FOUND | CONFLICT | errors(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "mode": {"type": "string", "enum": ["replace", "append", "upsert"]},
                        },
                    }
                }
            },
        }
    },
)
async def import_data(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
) -> ImportRead:
    """Import a file (CSV, XLSX, ODS, JSON, GeoJSON, Parquet) as the product's next data
    version: read, typed and checked whole first; any error refuses the whole file with the
    bad rows and fields (``error.rows``, first 100; ``error.error_count``, ``error.by_field``)."""
    async with one_file(request, settings.product_max_bytes) as (form, upload):
        imported = await service.import_data(
            session=session,
            settings=settings,
            actor=actor,
            product_id=product_id,
            source=upload.file,
            filename=upload.filename or "fichier",
            media_type=upload.content_type,
            mode=str(form.get("mode") or "replace"),
        )
    names = await Directory.load(session, [actor.user_id])
    return ImportRead(
        product=product_read(imported.product, names),
        version=version_read(imported.version, names),
        warnings=imported.warnings,
    )


@router.get(
    "/products/{product_id}/versions", response_model=list[VersionRead], responses=NOT_FOUND
)
async def data_versions(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> list[VersionRead]:
    _, rows = await service.data_versions(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    names = await Directory.load(session, [v.actor_id for v in rows])
    return [version_read(v, names) for v in rows]


@router.get("/products/{product_id}/rows", response_model=RowsRead, responses=NOT_FOUND)
async def rows(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults
    sort: Annotated[str | None, Query(max_length=70, description="field or -field")] = None,
    after: Annotated[str | None, Query(max_length=2000, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
    version: Version = None,
    columns: Annotated[str | None, Query(max_length=2000, description="a,b,c")] = None,
) -> RowsRead:
    """A page of the product's rows that its rules let you see, with the columns they let
    you see; ``next_cursor`` gives the next page (keyset)."""
    page = await service.read_rows(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        conditions=[service.parse_condition(f) for f in filters],
        sort=sort,
        after=after,
        limit=limit,
        version=version,
        columns=[c for c in (columns or "").split(",") if c] or None,
    )
    return RowsRead(
        product_id=page.product.id,
        version=page.version,
        columns=page.columns,
        hidden_columns=page.hidden_columns,
        rows=page.rows,
        next_cursor=page.next_cursor,
    )


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            f.media_type: {"schema": {"type": "string", "format": "binary"}}
            for f in export.FORMATS.values()
        }
    }
}


@router.get(
    "/products/{product_id}/export",
    responses=NOT_FOUND | errors(429) | EXPORT_RESPONSES,
    response_class=StreamingResponse,
)
async def export_rows(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    format: Annotated[str, Query(description="csv, json, geojson or parquet")] = "csv",
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults
    version: Version = None,
) -> StreamingResponse:
    """Every row the product's rules let you see, in the columns you may see, as a file (CSV
    for spreadsheets: UTF-8, ``;``, formulas kept as text). Audited with the row count;
    throttled per user (``export_max_per_window``): 429 with Retry-After."""
    await throttle.reserve_export(session=session, settings=settings, actor=actor)
    exported = await service.export_rows(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        fmt=format,
        conditions=[service.parse_condition(f) for f in filters],
        version=version,
    )
    return StreamingResponse(
        _chunks(exported.file),
        media_type=export.FORMATS[exported.format].media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


MAP_FEATURES = 10_000


@router.get(
    "/products/{product_id}/features",
    responses=NOT_FOUND | {200: {"content": {"application/geo+json": {}}}},
    response_class=StreamingResponse,
)
async def features(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults
) -> StreamingResponse:
    """The product's rows as GeoJSON features for the map (its first geometry field you may
    see; the first 10,000 rows), under its rules; 422 when it has none for you."""
    exported = await service.export_rows(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        fmt="geojson",
        conditions=[service.parse_condition(f) for f in filters],
        action="product.features",
        limit=MAP_FEATURES,
    )
    return StreamingResponse(_chunks(exported.file), media_type="application/geo+json")


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    with file:
        while chunk := file.read(64 * 1024):
            yield chunk


@router.get("/products/{product_id}/aggregate", response_model=AggregateRead, responses=NOT_FOUND)
async def aggregate(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    group_by: Annotated[
        str,
        Query(
            max_length=400,
            description="a,b; a date or datetime field may be bucketed: "
            "field@hour|day|week|month (Paris time, ISO strings)",
        ),
    ] = "",
    measure: Annotated[
        list[str], Query(max_length=10, description="count, or sum|avg|min|max:field")
    ] = ["count"],  # noqa: B006 - FastAPI copies defaults
    filters: Filters = [],  # noqa: B006
    version: Version = None,
) -> AggregateRead:
    """Grouped aggregates over the rows the product's rules let you see."""
    result = await service.aggregate(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        group_by=[g for g in group_by.split(",") if g],
        measures=measure,
        conditions=[service.parse_condition(f) for f in filters],
        version=version,
    )
    return AggregateRead(
        product_id=result.product.id,
        version=result.version,
        group_by=result.group_by,
        measures=result.measures,
        rows=result.rows,
    )


def change_read(change: ProductRuleChange, names: Directory) -> RuleChangeRead:
    return RuleChangeRead(
        id=change.id,
        status=change.status,
        rules=change.rules,
        reason=change.reason,
        proposed_by=names.user(change.proposed_by),
        proposed_at=change.proposed_at,
        decided_by=names.user(change.decided_by),
        decided_at=change.decided_at,
    )


@router.post(
    "/products/{product_id}/status",
    response_model=ProductRead,
    responses=NOT_FOUND | CONFLICT,
)
async def set_status(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    body: StatusChange,
) -> ProductRead:
    """Life cycle: draft → active → deprecated (naming a successor), or back to active."""
    product = await service.set_status(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        status=body.status,
        successor_id=body.successor_id,
    )
    return product_read(product, await Directory.load(session, []))


@router.put(
    "/products/{product_id}/schema", response_model=SchemaChanged, responses=NOT_FOUND | CONFLICT
)
async def change_schema(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    body: SchemaChange,
) -> SchemaChanged:
    """A new schema (stewards of the domain): optional fields added, titles and constraints
    changed. A change that would break stored rows or rules (a field removed or retyped,
    another primary key, a new required field) is refused: 409 with ``error.problems``."""
    product, changes = await service.change_schema(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        table_schema=body.table_schema,
    )
    names = await Directory.load(session, [actor.user_id])
    return SchemaChanged(product=product_read(product, names), changes=changes)


@router.put("/products/{product_id}/rules", response_model=RulesAnswer, responses=NOT_FOUND)
async def propose_rules(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    body: RulesChange,
) -> RulesAnswer:
    """New row and column rules: applied at once when they cannot widen access, otherwise
    waiting for a second steward of the domain (``pending``)."""
    product, change = await service.propose_rules(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        tree=body.rules,
        reason=body.reason,
    )
    names = await Directory.load(session, [actor.user_id])
    return RulesAnswer(
        product=product_read(product, names),
        pending=change_read(change, names) if change else None,
    )


@router.get(
    "/products/{product_id}/rule-changes",
    response_model=list[RuleChangeRead],
    responses=NOT_FOUND,
)
async def pending_rule_changes(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> list[RuleChangeRead]:
    """Rule changes waiting for a second steward (stewards of the domain)."""
    changes = await service.pending_rule_changes(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    names = await Directory.load(session, [c.proposed_by for c in changes])
    return [change_read(c, names) for c in changes]


@router.post(
    "/products/{product_id}/rule-changes/{change_id}",
    response_model=RuleChangeRead,
    responses=NOT_FOUND | CONFLICT,
)
async def decide_rules(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    change_id: uuid.UUID,
    body: Decision,
) -> RuleChangeRead:
    """A second steward (not the proposer) applies or rejects a waiting change."""
    change = await service.decide_rules(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        change_id=change_id,
        approve=body.approve,
    )
    names = await Directory.load(session, [change.proposed_by, change.decided_by])
    return change_read(change, names)
