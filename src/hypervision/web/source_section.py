"""The HTTP source section of a product's page (docs/adr/0029), for the stewards of its
domain: the source, its last runs, whether the platform allows sources at all."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.products import sources
from hypervision.products.fetch import Guard
from hypervision.products.models import DataProduct
from hypervision.products.source_models import ProductSource, ProductSourceRun

RUNS_SHOWN = 10
FORMATS = {"csv": "CSV", "json": "JSON", "geojson": "GeoJSON"}


@dataclass
class SourceSection:
    enabled: bool  # the operator allows some host
    source: ProductSource | None
    runs: list[ProductSourceRun]
    formats: dict[str, str] = field(default_factory=lambda: dict(FORMATS))
    error: str = ""
    done: str = ""  # what the last action did, in words


async def source_section(
    session: AsyncSession, settings: Settings, actor: Principal, product: DataProduct
) -> SourceSection:
    """Read through the sources service (stewards only, audited)."""
    _, source, runs = await sources.source_and_runs(
        session=session, settings=settings, actor=actor, product_id=product.id
    )
    return SourceSection(Guard.of(settings).enabled, source, runs[:RUNS_SHOWN])
