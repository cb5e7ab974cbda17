"""The lineage of a data product (ADR 0028): the graph of its sources (upstream, as far as
they go) and of its uses (downstream: the products derived from it, then theirs).

A product the reader may not know of is left out — not named, not counted, not walked
through — like any hidden record (SECURITY.md 32): what lies beyond it is left out too.
Edges carry a kind (``derived_product`` today) so that other uses (spaces, syntheses,
open-data publications) can join the same graph."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.products import service
from hypervision.products.derived_models import ProductDerivation, ProductInput
from hypervision.products.models import DataProduct
from hypervision.records import access

MAX_NODES = 200


@dataclass
class Edge:
    source: uuid.UUID
    target: uuid.UUID
    kind: str = "derived_product"


@dataclass
class Lineage:
    product: DataProduct
    nodes: dict[uuid.UUID, DataProduct] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    derivations: dict[uuid.UUID, ProductDerivation] = field(default_factory=dict)
    upstream: set[uuid.UUID] = field(default_factory=set)
    downstream: set[uuid.UUID] = field(default_factory=set)

    def definition(self) -> dict[str, Any] | None:
        """The root's definition when it is derived and every source it names is known to
        the reader (a hidden source's id is never given)."""
        derivation = self.derivations.get(self.product.id)
        if derivation is None:
            return None
        named = {uuid.UUID(str(s["product"])) for s in derivation.definition.get("sources", [])}
        return derivation.definition if named <= self.nodes.keys() else None

    def relation(self, node_id: uuid.UUID) -> str:
        if node_id == self.product.id:
            return "self"
        return "source" if node_id in self.upstream else "use"


async def _visible(
    session: AsyncSession, settings: Settings, actor: Principal, ids: Iterable[uuid.UUID]
) -> list[DataProduct]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    query = service.visible_products(session, settings, actor).where(DataProduct.id.in_(wanted))
    return list(await session.scalars(query))


async def lineage(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> Lineage:
    """The graph around a product the reader may see (404 otherwise), only through products
    they may see; audited with every product named."""
    root = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    graph = Lineage(product=root, nodes={root.id: root})
    for upward in (True, False):
        frontier = [root.id]
        while frontier and len(graph.nodes) < MAX_NODES:
            near = ProductInput.derived_id if upward else ProductInput.source_id
            far = ProductInput.source_id if upward else ProductInput.derived_id
            pairs = (await session.execute(select(near, far).where(near.in_(frontier)))).all()
            found = {
                p.id: p for p in await _visible(session, settings, actor, (f for _, f in pairs))
            }
            frontier = []
            for here, there in pairs:
                if there not in found:
                    continue  # hidden: left out, and what lies beyond it
                edge = (
                    Edge(source=there, target=here) if upward else Edge(source=here, target=there)
                )
                if edge not in graph.edges:
                    graph.edges.append(edge)
                if there not in graph.nodes:
                    graph.nodes[there] = found[there]
                    (graph.upstream if upward else graph.downstream).add(there)
                    frontier.append(there)
    rows = await session.scalars(
        select(ProductDerivation).where(ProductDerivation.product_id.in_(list(graph.nodes)))
    )
    graph.derivations = {d.product_id: d for d in rows}
    await access.delivered(
        session, actor, action="product.lineage", kind="product", rows=list(graph.nodes.values())
    )
    return graph
