"""Zones drawn by watch officers and imported geographic layers: labelled like any record. And
the map cells: counts of located entries per grid cell and label signature (``geo/cells.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, SmallInteger, String, Text, Uuid
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


class MapSignature(Labelled, Base):
    """A label signature of located entries: the label columns the policy reads (level,
    need-to-know, audience, owner organisation). Its id is derived from them
    (``cells.Signature.id``). Under row-level security like the entries it stands for."""

    __tablename__ = "map_signatures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class MapCell(Base):
    """How many located entries of one signature have their centre in one grid cell, by
    severity and status, with the sums of their centres (``geo/cells.py``). Visible with its
    signature."""

    __tablename__ = "map_cells"

    grid: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # the grid's zoom
    gx: Mapped[int] = mapped_column(Integer, primary_key=True)
    gy: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("map_signatures.id"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer)  # every entry, whatever its severity and status
    n_info_open: Mapped[int] = mapped_column(Integer)
    n_info_in_progress: Mapped[int] = mapped_column(Integer)
    n_info_closed: Mapped[int] = mapped_column(Integer)
    n_minor_open: Mapped[int] = mapped_column(Integer)
    n_minor_in_progress: Mapped[int] = mapped_column(Integer)
    n_minor_closed: Mapped[int] = mapped_column(Integer)
    n_major_open: Mapped[int] = mapped_column(Integer)
    n_major_in_progress: Mapped[int] = mapped_column(Integer)
    n_major_closed: Mapped[int] = mapped_column(Integer)
    n_critical_open: Mapped[int] = mapped_column(Integer)
    n_critical_in_progress: Mapped[int] = mapped_column(Integer)
    n_critical_closed: Mapped[int] = mapped_column(Integer)
    sum_lon: Mapped[float] = mapped_column(Float)  # of the entries' centres
    sum_lat: Mapped[float] = mapped_column(Float)


# The protected kinds of the map (records/registry.py; assembled in kinds.py).
ZONE_KIND = Kind("zone", Zone, live=False, missing=("Zone introuvable.", "Zone not found."))
LAYER_KIND = Kind("layer", Layer, live=False, missing=("Couche introuvable.", "Layer not found."))
LAYER_FEATURE_KIND = Kind(
    "layer_feature", LayerFeature, live=False, parent="layer", parent_key="layer_id"
)
