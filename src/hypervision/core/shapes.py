"""Geometry checks and exact spatial tests with shapely (both engines: SQL narrows by bounding
box, shapely decides; ADR 0008)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shapely import prepare
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
AREA_TYPES = frozenset({"Polygon", "MultiPolygon"})
MAX_VERTICES = 20_000


class GeometryError(ValueError):
    """A geometry that is not acceptable, with a message a person understands (French, English)."""

    def __init__(self, fr: str, en: str) -> None:
        super().__init__(en)
        self.fr, self.en = fr, en


def _positions(node: Any, depth: int) -> Iterable[tuple[float, float]]:
    if depth == 0:
        if (
            not isinstance(node, list | tuple)
            or len(node) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in node[:2])
        ):
            raise GeometryError("position invalide (attendu : [lon, lat])", "invalid position")
        lon, lat = float(node[0]), float(node[1])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise GeometryError("coordonnée non finie", "non-finite coordinate")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeometryError(
                f"coordonnées hors limites ({lon}, {lat}) : longitude entre -180 et 180, "
                "latitude entre -90 et 90",
                f"coordinates out of range ({lon}, {lat})",
            )
        yield lon, lat
        return
    if not isinstance(node, list | tuple) or not node:
        raise GeometryError("coordonnées manquantes ou vides", "missing or empty coordinates")
    for child in node:
        yield from _positions(child, depth - 1)


DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def check_geometry(
    geometry: Any, allowed: frozenset[str] = GEOMETRY_TYPES
) -> tuple[BaseGeometry, tuple[float, float, float, float]]:
    """The shapely geometry and its bbox, or GeometryError saying what is wrong."""
    if not isinstance(geometry, dict):
        raise GeometryError("géométrie absente ou invalide", "missing or invalid geometry")
    kind = geometry.get("type")
    if kind not in allowed:
        names = ", ".join(sorted(allowed))
        raise GeometryError(
            f"type de géométrie {str(kind)[:30]!r} non accepté (acceptés : {names})",
            f"geometry type {str(kind)[:30]!r} not accepted (accepted: {names})",
        )
    positions = list(_positions(geometry.get("coordinates"), DEPTH[str(kind)]))
    if len(positions) > MAX_VERTICES:
        raise GeometryError(
            f"trop de sommets ({len(positions)}, au plus {MAX_VERTICES})",
            f"too many vertices ({len(positions)}, at most {MAX_VERTICES})",
        )
    coordinates = geometry["coordinates"]
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    for rings in polygons:
        for ring in rings:
            if len(ring) < 4 or list(ring[0][:2]) != list(ring[-1][:2]):
                raise GeometryError(
                    "anneau de polygone non fermé (au moins 4 positions, la dernière égale à la "
                    "première)",
                    "unclosed polygon ring (at least 4 positions, the last equal to the first)",
                )
    if kind in ("LineString", "MultiLineString"):
        lines = [coordinates] if kind == "LineString" else coordinates
        if any(len(line) < 2 for line in lines):
            raise GeometryError("une ligne a au moins 2 positions", "a line needs 2 positions")
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise GeometryError(f"géométrie illisible : {exc}", f"unreadable geometry: {exc}") from None
    if kind in AREA_TYPES and not parsed.is_valid:
        reason = explain_validity(parsed)
        raise GeometryError(
            f"polygone invalide ({reason}) : anneaux fermés, sans auto-intersection",
            f"invalid polygon ({reason}): closed rings, no self-intersection",
        )
    lons, lats = [p[0] for p in positions], [p[1] for p in positions]
    return parsed, (min(lons), min(lats), max(lons), max(lats))


@dataclass(frozen=True)
class Area:
    """A zone's shape ready for many exact tests (prepared), with its bounding box."""

    geometry: BaseGeometry
    bbox: tuple[float, float, float, float]

    @classmethod
    def of(cls, geometry: dict[str, Any]) -> Area:
        parsed, bbox = check_geometry(geometry, AREA_TYPES)
        prepare(parsed)
        return cls(parsed, bbox)

    def holds(self, location: dict[str, Any] | None) -> bool:
        """True when the location touches the area: inside or on its border (not in a hole)."""
        if not location:
            return False
        try:
            return bool(self.geometry.intersects(shape(location)))
        except (ValueError, TypeError, AttributeError, IndexError):
            return False


def bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    """The bounding box (west, south, east, north) of a stored, already checked GeoJSON
    geometry: the min and max of its positions, as ``logbook.entries`` stores them."""
    lons: list[float] = []
    lats: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, list | tuple) and node and isinstance(node[0], int | float):
            lons.append(float(node[0]))
            lats.append(float(node[1]))
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child)

    walk(geometry["coordinates"])
    return min(lons), min(lats), max(lons), max(lats)
