"""Derived products, lineage and version diffs through the API (issue 17, ADR 0028)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.products import derived_create, diff, lineage
from hypervision.products.api import product_read
from hypervision.products.models import DataProduct
from hypervision.products.schemas import ProductRead
from hypervision.records.labelling import Directory
from hypervision.records.schemas import LabelIn

router = APIRouter(
    prefix="/api/v1", tags=["data products"], dependencies=CREDENTIALS, responses=SIGNED_IN
)


class DerivedCreate(BaseModel):
    slug: str = Field(min_length=2, max_length=63, description="lower-case letters, digits, -")
    name: str = Field(min_length=1, max_length=160)
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    definition: dict[str, Any] = Field(
        description="sources (1 or 2), join (how, on), where (field, op, value), then columns "
        "(field, name) or group_by and measures (fn: count|sum|avg|min|max, field, name)"
    )
    rules: dict[str, Any] | None = Field(default=None, description="the stewards' rule tree")
    label: LabelIn | None = Field(
        default=None, description="default: the least label dominating every source's"
    )


class LineageNode(BaseModel):
    id: uuid.UUID
    type: str = Field(description="product (other kinds of use later)")
    slug: str
    name: str
    domain: str
    status: str
    data_version: int
    relation: str = Field(description="self, source or use")
    derived: bool
    failure: dict[str, Any] | None = Field(
        description="the last recomputation's failure (fr, en, at), None when it succeeded"
    )
    withheld: bool = Field(
        description="derived and waiting for a second steward's release: stewards read it only"
    )
    computed_at_versions: dict[str, int] = Field(
        description="source id -> its data version at the last computation (sources you see)"
    )


class LineageEdge(BaseModel):
    source: uuid.UUID
    target: uuid.UUID
    kind: str = Field(description="derived_product (spaces, syntheses, open data later)")


class LineageRead(BaseModel):
    product_id: uuid.UUID
    definition: dict[str, Any] | None = Field(
        description="the definition, when the product is derived and you see all its sources"
    )
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class DiffRead(BaseModel):
    product_id: uuid.UUID
    from_version: int
    to_version: int
    key: list[str] = Field(description="what matches rows: the primary key, or _row")
    columns: list[str]
    hidden_columns: list[str]
    changes: list[dict[str, Any]] = Field(
        description="change: added (row), removed (row), changed (fields, before, after)"
    )
    next_cursor: str | None


@router.post("/products/derived", response_model=ProductRead, status_code=201, responses=CONFLICT)
async def create_derived(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, body: DerivedCreate
) -> ProductRead:
    """A product of your domain computed from one or two products (filter, join, group by
    with aggregates), recomputed whenever a source gets a new data version. Its label must
    dominate every source's; its sources are read with your rights at each computation."""
    product = await derived_create.create_derived(
        session=session,
        settings=settings,
        actor=actor,
        slug=body.slug,
        name=body.name,
        description=body.description,
        tags=body.tags,
        definition=body.definition,
        rules=body.rules,
        label=body.label,
    )
    return product_read(product, await Directory.load(session, []))


@router.post(
    "/products/{product_id}/release", response_model=ProductRead, responses=CONFLICT | NOT_FOUND
)
async def release_derived(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> ProductRead:
    """Release a derived product that draws whole on a source of its domain whose rules
    restrict readers: until a second data steward of the domain (not its author) releases
    it, only the domain's stewards read its rows (403 ``derived_withheld`` for the others)."""
    product = await derived_create.release_derived(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return product_read(product, await Directory.load(session, []))


def _node(graph: lineage.Lineage, product: DataProduct, names: Directory) -> LineageNode:
    derivation = graph.derivations.get(product.id)
    sources = (derivation.computed_from.get("sources", {}) if derivation else {}).items()
    return LineageNode(
        id=product.id,
        type="product",
        slug=product.slug,
        name=product.name,
        domain=names.org(product.organisation_id),
        status=product.status,
        data_version=product.data_version,
        relation=graph.relation(product.id),
        derived=derivation is not None,
        failure=derivation.failure if derivation else None,
        withheld=derivation.withheld if derivation else False,
        computed_at_versions={
            sid: int(info["version"]) for sid, info in sources if uuid.UUID(sid) in graph.nodes
        },
    )


@router.get("/products/{product_id}/lineage", response_model=LineageRead, responses=NOT_FOUND)
async def product_lineage(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> LineageRead:
    """The graph of the product's sources and uses, through the products you may know of
    only (the others are left out, with what lies beyond them)."""
    graph = await lineage.lineage(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    names = await Directory.load(session, [])
    return LineageRead(
        product_id=graph.product.id,
        definition=graph.definition(),
        nodes=[_node(graph, p, names) for p in graph.nodes.values()],
        edges=[LineageEdge(source=e.source, target=e.target, kind=e.kind) for e in graph.edges],
    )


@router.get("/products/{product_id}/diff", response_model=DiffRead, responses=NOT_FOUND)
async def version_diff(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    from_: Annotated[int, Query(alias="from", ge=1, description="the older data version")],
    to: Annotated[int, Query(ge=1, description="the newer data version")],
    after: Annotated[str | None, Query(max_length=2000, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=diff.PAGE_MAX)] = 100,
) -> DiffRead:
    """Rows added, removed and changed (with the changed fields) from one data version to
    another, under your row and column rules: a column hidden from you never appears."""
    found = await diff.diff(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        old=from_,
        new=to,
        after=after,
        limit=limit,
    )
    return DiffRead(
        product_id=found.product.id,
        from_version=found.old,
        to_version=found.new,
        key=found.key,
        columns=found.columns,
        hidden_columns=found.hidden_columns,
        changes=found.changes,
        next_cursor=found.next_cursor,
    )
