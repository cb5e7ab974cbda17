"""Zones: polygons drawn and named by watch officers (venue perimeters, traffic restrictions,
evacuation areas), labelled, versioned and audited like any record."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.core.shapes import AREA_TYPES, Area, GeometryError, check_geometry
from hypervision.db import utcnow
from hypervision.geo.models import ZONE_KIND, Zone
from hypervision.geo.schemas import ZoneCreate, ZoneStatus, ZoneUpdate
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, authorize
from hypervision.records import access, versions
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label


def invalid_geometry(error: GeometryError, field: str = "geometry") -> Invalid:
    return Invalid(
        f"Champ « {field} » : {error.fr}.",
        f"Field '{field}': {error.en}.",
        extra={"fields": [{"field": field, "message": error.en}]},
    )


def _shape(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    try:
        return check_geometry(geometry, AREA_TYPES)[1]
    except GeometryError as error:
        raise invalid_geometry(error) from None


def _plain(geometry: dict[str, Any]) -> dict[str, Any]:
    """Only what GeoJSON geometry needs: no foreign members stored or served again."""
    return {"type": geometry["type"], "coordinates": geometry["coordinates"]}


def visible_zones(session: AsyncSession, settings: Settings, actor: Principal) -> Select[Zone]:
    return access.visible(session, settings, actor, Zone)


async def find_zone(
    *, session: AsyncSession, settings: Settings, actor: Principal, zone_id: uuid.UUID
) -> Zone:
    """The zone, or 404 exactly as if it did not exist when the actor may not see it."""
    return await access.find_in(
        session, visible_zones(session, settings, actor), ZONE_KIND, zone_id
    )


async def zone_area(
    *, session: AsyncSession, settings: Settings, actor: Principal, zone_id: uuid.UUID
) -> Area:
    """A visible zone's shape, for filtering entries (audited as a read of the zone)."""
    zone = await find_zone(session=session, settings=settings, actor=actor, zone_id=zone_id)
    await access.delivered(
        session, actor, action="zone.read", kind="zone", rows=[zone], detail={"use": "filter"}
    )
    return Area.of(zone.geometry)


async def create_zone(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: ZoneCreate
) -> Zone:
    authorize(actor, Action.TRIAGE)
    assert actor.user_id is not None and actor.organisation_id is not None
    bbox = _shape(data.geometry)
    label = await resolve_label(session=session, settings=settings, actor=actor, data=data.label)
    now = utcnow()
    zone = Zone(
        name=data.name,
        kind=data.kind.value,
        description=data.description,
        geometry=_plain(data.geometry),
        status=ZoneStatus.ACTIVE.value,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat = bbox
    zone.set_label(label)
    session.add(zone)
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="zone",
        row=zone,
        action="create",
        before=None,
        summary={"name": zone.name, "kind": zone.kind, "bbox": list(bbox)},
    )
    return zone


async def update_zone(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    zone_id: uuid.UUID,
    data: ZoneUpdate,
    if_match: str | None,
) -> Zone:
    authorize(actor, Action.TRIAGE)
    zone = await find_zone(session=session, settings=settings, actor=actor, zone_id=zone_id)
    check_if_match(zone, if_match)
    before = versions.snapshot(zone)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "geometry" in changes:
        bbox = _shape(changes["geometry"])
        changes["geometry"] = _plain(changes["geometry"])
        zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat = bbox
    for name, value in changes.items():
        setattr(zone, name, value.value if hasattr(value, "value") else value)
    if versions.snapshot(zone) == before:
        return zone
    zone.version += 1
    zone.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="zone",
        row=zone,
        action="update",
        before=before,
        summary={"name": zone.name, "kind": zone.kind},
    )
    return zone


async def list_zones(
    *, session: AsyncSession, settings: Settings, actor: Principal, include_archived: bool = False
) -> list[Zone]:
    query = visible_zones(session, settings, actor).order_by(Zone.name, Zone.id).limit(500)
    if not include_archived:
        query = query.where(Zone.status == ZoneStatus.ACTIVE.value)
    rows = list(await session.scalars(query))
    await access.delivered(session, actor, action="zone.list", kind="zone", rows=rows)
    return rows
