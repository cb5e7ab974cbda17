"""Geographic layers imported from GeoJSON: validated whole (every feature, with its own error)
before anything is written; labelled like any record; read by bounding box."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.core.shapes import GeometryError, check_geometry
from hypervision.criteria import box_meets
from hypervision.db import utcnow
from hypervision.geo.models import LAYER_KIND, Layer, LayerFeature
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, authorize
from hypervision.records import access, versions
from hypervision.records.labelling import resolve_label
from hypervision.records.schemas import LabelIn

MAX_FEATURES = 50_000
MAX_ERRORS = 100
MAX_PROPERTIES_BYTES = 10_000
MAX_VERTICES_TOTAL = 500_000  # an estimate from the coordinates' text, before any parsing


def _refuse(fr: str, en: str, errors: list[dict[str, Any]] | None = None) -> Invalid:
    extra: dict[str, Any] = {"fields": [{"field": "file", "message": en}]}
    if errors is not None:
        extra["features"] = errors
    return Invalid(fr, en, code="invalid_geojson", extra=extra)


def parse_features(data: bytes) -> list[tuple[dict[str, Any], dict[str, Any], tuple[float, ...]]]:
    """Every feature's geometry, properties and bbox — or Invalid listing each bad feature
    (its index and what is wrong), so that nothing is half-imported."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _refuse(
            f"Fichier GeoJSON illisible : {str(exc)[:200]}.",
            f"Unreadable GeoJSON file: {str(exc)[:200]}.",
        ) from None
    if isinstance(document, dict) and document.get("type") == "Feature":
        document = {"type": "FeatureCollection", "features": [document]}
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise _refuse(
            "Un GeoJSON de type FeatureCollection (ou Feature) est attendu.",
            "A GeoJSON FeatureCollection (or Feature) is expected.",
        )
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise _refuse("La couche ne contient aucun objet.", "The layer holds no feature.")
    if len(features) > MAX_FEATURES:
        raise _refuse(
            f"Trop d'objets ({len(features)}, au plus {MAX_FEATURES}).",
            f"Too many features ({len(features)}, at most {MAX_FEATURES}).",
        )
    parsed: list[tuple[dict[str, Any], dict[str, Any], tuple[float, ...]]] = []
    errors: list[dict[str, Any]] = []
    vertices = sum(
        len(json.dumps(f.get("geometry", {}).get("coordinates", []))) // 8
        for f in features
        if isinstance(f, dict) and isinstance(f.get("geometry"), dict)
    )
    if vertices > MAX_VERTICES_TOTAL:
        raise _refuse(
            f"Couche trop détaillée (au plus {MAX_VERTICES_TOTAL} sommets) : simplifiez-la.",
            f"Layer too detailed (at most {MAX_VERTICES_TOTAL} vertices): simplify it.",
        )
    for index, feature in enumerate(features):
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise GeometryError("objet de type Feature attendu", "a Feature is expected")
            properties = feature.get("properties") or {}
            if not isinstance(properties, dict):
                raise GeometryError(
                    "« properties » doit être un objet", "properties must be an object"
                )
            if len(json.dumps(properties, ensure_ascii=False)) > MAX_PROPERTIES_BYTES:
                raise GeometryError("propriétés trop volumineuses", "properties too large")
            _, bbox = check_geometry(feature.get("geometry"))
            parsed.append((feature["geometry"], properties, bbox))
        except GeometryError as error:
            errors.append({"index": index, "message": error.fr, "message_en": error.en})
            if len(errors) >= MAX_ERRORS:
                break
    if errors:
        count = f"{len(errors)}{'+' if len(errors) >= MAX_ERRORS else ''}"
        first = errors[0]
        raise _refuse(
            f"{count} objet(s) invalide(s) : rien n'est importé "
            f"(premier : n° {first['index']}, {first['message']}).",
            f"{count} invalid feature(s): nothing is imported "
            f"(first: #{first['index']}, {first['message_en']}).",
            errors,
        )
    return parsed


def visible_layers(session: AsyncSession, settings: Settings, actor: Principal) -> Select[Layer]:
    return access.visible(session, settings, actor, Layer)


async def import_layer(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    name: str,
    description: str,
    label: LabelIn | None,
    data: bytes,
) -> Layer:
    authorize(actor, Action.WRITE)
    assert actor.user_id is not None and actor.organisation_id is not None
    name = " ".join(name.split())[:120]
    if not name:
        raise Invalid(
            "Donnez un nom à la couche.",
            "Give the layer a name.",
            extra={"fields": [{"field": "name", "message": "required"}]},
        )
    if len(data) > settings.layer_max_bytes:
        raise _refuse(
            f"Fichier trop volumineux (au plus {settings.layer_max_bytes // 1_000_000} Mo).",
            f"File too large (at most {settings.layer_max_bytes // 1_000_000} MB).",
        )
    features = await asyncio.to_thread(parse_features, data)  # CPU: off the event loop
    resolved = await resolve_label(session=session, settings=settings, actor=actor, data=label)
    boxes = [f[2] for f in features]
    layer = Layer(
        name=name,
        description=description[:5000],
        feature_count=len(features),
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=utcnow(),
        version=1,
        min_lon=min(b[0] for b in boxes),
        min_lat=min(b[1] for b in boxes),
        max_lon=max(b[2] for b in boxes),
        max_lat=max(b[3] for b in boxes),
    )
    layer.set_label(resolved)
    session.add(layer)
    await session.flush()
    session.add_all(
        LayerFeature(
            layer_id=layer.id,
            position=position,
            geometry=geometry,
            properties=properties,
            min_lon=bbox[0],
            min_lat=bbox[1],
            max_lon=bbox[2],
            max_lat=bbox[3],
        )
        for position, (geometry, properties, bbox) in enumerate(features)
    )
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="layer",
        row=layer,
        action="create",
        before=None,
        summary={"name": layer.name, "feature_count": layer.feature_count},
    )
    return layer


async def find_layer(
    *, session: AsyncSession, settings: Settings, actor: Principal, layer_id: uuid.UUID
) -> Layer:
    query = visible_layers(session, settings, actor)
    return await access.find_in(session, query, LAYER_KIND, layer_id)


async def list_layers(
    *, session: AsyncSession, settings: Settings, actor: Principal
) -> list[Layer]:
    rows = list(
        await session.scalars(
            visible_layers(session, settings, actor).order_by(Layer.name, Layer.id).limit(500)
        )
    )
    await access.delivered(session, actor, action="layer.list", kind="layer", rows=rows)
    return rows


async def layer_features(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    layer_id: uuid.UUID,
    bbox: tuple[float, float, float, float] | None,
    limit: int = 5_000,
) -> tuple[Layer, list[LayerFeature]]:
    """A visible layer's features (within ``bbox`` when given), audited."""
    layer = await find_layer(session=session, settings=settings, actor=actor, layer_id=layer_id)
    query = select(LayerFeature).where(LayerFeature.layer_id == layer.id)
    if bbox:
        query = query.where(box_meets(LayerFeature, bbox))
    rows = list(await session.scalars(query.order_by(LayerFeature.position).limit(limit)))
    await access.delivered(
        session,
        actor,
        action="layer.read",
        kind="layer",
        rows=[layer],
        detail={"features": len(rows)},
    )
    return layer, rows
