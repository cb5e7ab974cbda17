"""Zones drawn by watch officers and imported geographic layers: labelled like any record. And
the map cells: counts of located entries per grid cell and label signature (``geo/cells.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class BoundingBox:
    """The bbox columns that let SQL discard far-away shapes before the exact test."""

    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)


class Zone(Labelled, Versioned, BoundingBox, Base):
    __tablename__ = "zones"
    SNAPSHOT_FIELDS = (
        "name",
        "kind",
        "description",
        "geometry",
        "status",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text, default="")
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)  # Polygon or MultiPolygon
    status: Mapped[str] = mapped_column(String(16), default="active")
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Layer(Labelled, Versioned, BoundingBox, Base):
    __tablename__ = "layers"
    SNAPSHOT_FIELDS = (
        "name",
        "description",
        "feature_count",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    feature_count: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class LayerFeature(BoundingBox, Base):
    """One feature of a layer; it has its layer's label (read only through its layer)."""

    __tablename__ = "layer_features"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    layer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("layers.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)


# The protected kinds of the map (records/registry.py; assembled in kinds.py).
ZONE_KIND = Kind("zone", Zone, live=False, missing=("Zone introuvable.", "Zone not found."))
LAYER_KIND = Kind("layer", Layer, live=False, missing=("Couche introuvable.", "Layer not found."))
LAYER_FEATURE_KIND = Kind(
    "layer_feature", LayerFeature, live=False, parent="layer", parent_key="layer_id"
)
