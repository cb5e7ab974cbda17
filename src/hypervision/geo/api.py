"""Map API: zones, GeoJSON layers, map data (points or clusters) and the GeoJSON export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hypervision.audit import service as audit
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.openapi import (
    CONFLICT,
    CREDENTIALS,
    NOT_FOUND,
    PRECONDITION,
    SIGNED_IN,
    errors,
)
from hypervision.core.params import parse_bbox
from hypervision.core.uploads import FileTooLarge, one_file
from hypervision.geo import layers, mapdata, zones
from hypervision.geo.models import Layer, Zone
from hypervision.geo.schemas import LayerRead, MapData, ZoneCreate, ZoneRead, ZoneUpdate
from hypervision.identity import throttle
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import entries, present
from hypervision.logbook.api import EntryFilters
from hypervision.records.etags import etag
from hypervision.records.labelling import Directory
from hypervision.records.schemas import LabelIn

router = APIRouter(prefix="/api/v1", tags=["map"], dependencies=CREDENTIALS, responses=SIGNED_IN)
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]
EXPORT_MAX = 10_000
FRANCE = (-180.0, -90.0, 180.0, 90.0)


# The 200 answer of the GeoJSON routes (errors stay application/json).
GEOJSON: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a GeoJSON FeatureCollection",
        "content": {
            "application/geo+json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"const": "FeatureCollection"},
                        "features": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


async def _names(session: DbSession, rows: list[Zone] | list[Layer]) -> Directory:
    return await Directory.load(session, {r.author_id for r in rows})


def zone_read(zone: Zone, names: Directory) -> ZoneRead:
    return ZoneRead(
        id=zone.id,
        name=zone.name,
        kind=zone.kind,
        description=zone.description,
        geometry=zone.geometry,
        status=zone.status,
        organisation=names.org(zone.organisation_id),
        author=names.user(zone.author_id) or "?",
        label=names.label(zone.label),
        version=zone.version,
        updated_at=zone.updated_at,
    )


def layer_read(layer: Layer, names: Directory) -> LayerRead:
    return LayerRead(
        id=layer.id,
        name=layer.name,
        description=layer.description,
        feature_count=layer.feature_count,
        bbox=(layer.min_lon, layer.min_lat, layer.max_lon, layer.max_lat),
        organisation=names.org(layer.organisation_id),
        author=names.user(layer.author_id) or "?",
        label=names.label(layer.label),
        created_at=layer.created_at,
    )


# --- zones -----------------------------------------------------------------------------------


@router.get("/zones", response_model=list[ZoneRead])
async def list_zones(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, archived: bool = False
) -> list[ZoneRead]:
    rows = await zones.list_zones(
        session=session, settings=settings, actor=actor, include_archived=archived
    )
    names = await _names(session, rows)
    return [zone_read(z, names) for z in rows]


@router.post("/zones", response_model=ZoneRead, status_code=201, responses=CONFLICT)
async def create_zone(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    data: ZoneCreate,
    response: Response,
) -> ZoneRead:
    """Draw a zone (watch officers): a GeoJSON Polygon or MultiPolygon, holes allowed."""
    zone = await zones.create_zone(session=session, settings=settings, actor=actor, data=data)
    response.headers["ETag"] = etag(zone)
    return zone_read(zone, await _names(session, [zone]))


@router.get("/zones/{zone_id}", response_model=ZoneRead, responses=NOT_FOUND)
async def get_zone(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    zone_id: uuid.UUID,
    response: Response,
) -> ZoneRead:
    zone = await zones.find_zone(session=session, settings=settings, actor=actor, zone_id=zone_id)
    await audit.record(
        session=session,
        actor=actor,
        action="zone.read",
        resource_type="zone",
        resource_ids=[zone.id],
        labels=[zone.label_level],
    )
    response.headers["ETag"] = etag(zone)
    return zone_read(zone, await _names(session, [zone]))


@router.patch("/zones/{zone_id}", response_model=ZoneRead, responses=PRECONDITION | NOT_FOUND)
async def update_zone(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    zone_id: uuid.UUID,
    data: ZoneUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ZoneRead:
    """Rename, redraw or archive a zone (a new version; ``If-Match`` required)."""
    zone = await zones.update_zone(
        session=session,
        settings=settings,
        actor=actor,
        zone_id=zone_id,
        data=data,
        if_match=if_match,
    )
    response.headers["ETag"] = etag(zone)
    return zone_read(zone, await _names(session, [zone]))


# --- layers ----------------------------------------------------------------------------------


def _codes(value: Any) -> list[str]:
    return [c.strip() for c in str(value or "").split(",") if c.strip()][:50]


@router.post(
    "/layers",
    response_model=LayerRead,
    status_code=201,
    responses=CONFLICT | errors(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "name"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string", "maxLength": 120},
                            "description": {"type": "string", "maxLength": 5000},
                            "level": {"type": "string"},
                            "need_to_know": {"type": "string", "description": "comma-separated"},
                            "audience": {"type": "string", "description": "comma-separated"},
                        },
                    }
                }
            },
        }
    },
)
async def import_layer(
    request: Request, session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> LayerRead:
    """Import a GeoJSON FeatureCollection as a named, labelled layer. Every feature is checked
    first (geometry type, coordinates, rings); any error refuses the whole file with the list
    of bad features (``error.features``: index and message) and nothing is stored."""
    limit = settings.layer_max_bytes
    async with one_file(request, limit, "fichier GeoJSON", "GeoJSON file") as (form, upload):
        data = await upload.read(settings.layer_max_bytes + 1)
        if len(data) > settings.layer_max_bytes:
            raise FileTooLarge()
        level = str(form.get("level") or "")
        label = None
        if level:
            try:
                label = LabelIn(
                    level=level,
                    need_to_know=_codes(form.get("need_to_know")),
                    audience=_codes(form.get("audience")),
                )
            except ValidationError as exc:  # form fields: not checked by FastAPI
                fields = [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ]
                raise Invalid(
                    "Marquage invalide (level, need_to_know, audience).",
                    "Invalid label (level, need_to_know, audience).",
                    extra={"fields": fields},
                ) from None
        layer = await layers.import_layer(
            session=session,
            settings=settings,
            actor=actor,
            name=str(form.get("name") or ""),
            description=str(form.get("description") or ""),
            label=label,
            data=data,
        )
    return layer_read(layer, await _names(session, [layer]))


@router.get("/layers", response_model=list[LayerRead])
async def list_layers(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal
) -> list[LayerRead]:
    rows = await layers.list_layers(session=session, settings=settings, actor=actor)
    names = await _names(session, rows)
    return [layer_read(layer, names) for layer in rows]


@router.get("/layers/{layer_id}/features", responses=GEOJSON | NOT_FOUND)
async def layer_features(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    layer_id: uuid.UUID,
    bbox: Annotated[str | None, Query(max_length=100)] = None,
) -> JSONResponse:
    """The layer's features as a GeoJSON FeatureCollection (within ``bbox`` when given)."""
    _, rows = await layers.layer_features(
        session=session, settings=settings, actor=actor, layer_id=layer_id, bbox=parse_bbox(bbox)
    )
    features = [
        {"type": "Feature", "geometry": f.geometry, "properties": f.properties} for f in rows
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": features},
        media_type="application/geo+json",
    )


# --- map data and export -----------------------------------------------------------------------


@router.get("/map/entries", response_model=MapData, responses=NOT_FOUND)
async def map_entries(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    filters: EntryFilters,
    view: Annotated[
        str, Query(alias="view", min_length=1, max_length=100, description="west,south,east,north")
    ],
    zoom: Annotated[int, Query(ge=0, le=22)] = 12,
) -> Response:
    """What the map shows in ``view`` at ``zoom``: the entries themselves when there are at
    most a few hundred, otherwise clusters (count, centre, highest severity, extent). Wide
    views are counted from the map cells: a cluster at the view's edge counts its whole cell."""
    bbox = parse_bbox(view)
    if bbox is None:  # an empty view
        raise Invalid(
            "view attendu : ouest,sud,est,nord en degrés (WGS 84).",
            "view expected as west,south,east,north in degrees (WGS 84).",
            extra={"fields": [{"field": "view", "message": "required"}]},
        )
    result = await mapdata.map_entries(
        session=session, settings=settings, actor=actor, filters=filters, bbox=bbox, zoom=zoom
    )
    # Validated once and serialised by pydantic: a street-level answer holds hundreds of
    # points, which FastAPI's response_model would validate and encode a second time.
    data = MapData.model_validate(result.__dict__)
    return Response(data.model_dump_json(), media_type="application/json")


@router.get("/map/export", responses=GEOJSON | NOT_FOUND | errors(429))
async def export_geojson(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    filters: EntryFilters,
    layer: Annotated[list[uuid.UUID] | None, Query(max_length=20)] = None,
    with_zones: bool = True,
) -> JSONResponse:
    """What the map shows, as one GeoJSON FeatureCollection: the located entries (at most
    10,000, newest first), the zones and the chosen layers — each read through the policy and
    audited. Throttled per user (``export_max_per_window``): 429 with Retry-After."""
    await throttle.reserve_export(session=session, settings=settings, actor=actor)
    rows, _ = await entries.list_entries(
        session=session,
        settings=settings,
        actor=actor,
        filters=filters,
        cursor=None,
        limit=EXPORT_MAX,
    )
    reads = await present.entries_read(
        session, [e for e in rows if e.location], settings=settings, actor=actor
    )
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": e.location,
            "properties": {
                "kind": "entry",
                "id": str(e.id),
                "title": e.title,
                "category": e.category,
                "severity": e.severity.value,
                "status": e.status.value,
                "occurred_at": e.occurred_at.isoformat(),
                "organisation": e.organisation,
                "level": e.label.level,
            },
        }
        for e in reads
    ]
    if with_zones:
        for zone in await zones.list_zones(session=session, settings=settings, actor=actor):
            features.append(
                {
                    "type": "Feature",
                    "geometry": zone.geometry,
                    "properties": {
                        "kind": "zone",
                        "id": str(zone.id),
                        "name": zone.name,
                        "zone_kind": zone.kind,
                        "level": zone.label_level,
                    },
                }
            )
    for layer_id in layer or []:
        found, shapes = await layers.layer_features(
            session=session, settings=settings, actor=actor, layer_id=layer_id, bbox=filters.bbox
        )
        features.extend(
            {
                "type": "Feature",
                "geometry": f.geometry,
                "properties": {**f.properties, "layer": found.name, "level": found.label_level},
            }
            for f in shapes
        )
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M")
    return JSONResponse(
        {"type": "FeatureCollection", "features": features},
        media_type="application/geo+json",
        headers={"Content-Disposition": f'attachment; filename="hypervision-{stamp}.geojson"'},
    )
