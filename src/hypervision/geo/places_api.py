"""Address search API: the venues of the operation and the imported addresses (ADR 0024)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.geo import place_search
from hypervision.identity.deps import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["map"], dependencies=CREDENTIALS, responses=SIGNED_IN)


class PlaceRead(BaseModel):
    id: str = Field(
        description="The address base's identifier; street:<commune_street> for a street (a "
        "query without a number), venue:<name> for a venue."
    )
    name: str = Field(description="Number, street, postcode and town; or the venue's name.")
    kind: Literal["venue", "street", "address"]
    lon: float
    lat: float
    score: float = Field(description="Share of the query's trigrams found (1.0: all).")


class PlaceResults(BaseModel):
    items: list[PlaceRead]


@router.get("/places", response_model=PlaceResults)
async def search_places(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=place_search.MAX_QUERY_LENGTH)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> PlaceResults:
    """Find a venue or an address, tolerating typos ("sait-denis" finds Saint-Denis). Public
    reference data: any signed-in user; not written to the audit trail (ADR 0024). With
    addok as the engine (ADR 0030): 503 while addok's Redis does not answer."""
    del actor  # signed in is all it takes; the dependency refuses everyone else
    hits = await place_search.search_places(
        session=session, query=q, limit=limit, addok_url=settings.addok_url
    )
    return PlaceResults(
        items=[
            PlaceRead(
                id=h.id, name=h.name, kind=h.kind, lon=h.lon, lat=h.lat, score=round(h.score, 3)
            )
            for h in hits
        ]
    )
