"""API shapes of zones, layers and map data."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from hypervision.core.schemas import Strict, Trimmed
from hypervision.records.schemas import LabelIn, LabelRead

ZoneName = Annotated[str, Trimmed(120, min_length=1)]
Description = Annotated[str, StringConstraints(max_length=5_000)]


class ZoneKind(enum.StrEnum):
    PERIMETER = "perimeter"  # venue perimeter
    TRAFFIC = "traffic"  # traffic restriction
    EVACUATION = "evacuation"
    OTHER = "other"


class ZoneStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class ZoneCreate(Strict):
    name: ZoneName
    kind: ZoneKind = ZoneKind.OTHER
    description: Description = ""
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    label: LabelIn | None = None


class ZoneUpdate(Strict):
    name: ZoneName | None = None
    kind: ZoneKind | None = None
    description: Description | None = None
    geometry: dict[str, Any] | None = None
    status: ZoneStatus | None = None


class ZoneRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: ZoneKind
    description: str
    geometry: dict[str, Any]
    status: ZoneStatus
    organisation: str
    author: str
    label: LabelRead
    version: int
    updated_at: datetime


class LayerRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    feature_count: int
    bbox: tuple[float, float, float, float]
    organisation: str
    author: str
    label: LabelRead
    created_at: datetime


class FeatureError(BaseModel):
    index: int
    message: str


class MapPoint(BaseModel):
    id: uuid.UUID
    lon: float
    lat: float
    title: str
    category: str
    severity: str
    level: str


class MapCluster(BaseModel):
    lon: float
    lat: float
    count: int
    severity: str  # the highest in the cluster
    bbox: tuple[float, float, float, float]


class MapData(BaseModel):
    zoom: int
    clustered: bool
    total: int
    points: list[MapPoint]
    clusters: list[MapCluster]
