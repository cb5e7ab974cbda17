"""A tiny PMTiles base map for the tests: around Paris at zooms 0 to MAX_ZOOM, vector tiles in
the Protomaps basemap layers (earth, water, roads) written with the ``pmtiles`` and
``mapbox-vector-tile`` packages."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import mapbox_vector_tile  # type: ignore[import-untyped]
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write

PARIS = (2.3522, 48.8566)
MAX_ZOOM = 14
EXTENT = 4096


def tile_of(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    n = 2**zoom
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_bytes() -> bytes:
    """Land over the whole tile, water over its southern half, a road across it."""
    e = EXTENT
    layers = [
        {
            "name": "earth",
            "features": [
                {
                    "geometry": f"POLYGON ((0 0, {e} 0, {e} {e}, 0 {e}, 0 0))",
                    "properties": {"kind": "earth"},
                }
            ],
        },
        {
            "name": "water",
            "features": [
                {
                    "geometry": f"POLYGON ((0 {e // 2}, {e} {e // 2}, {e} {e}, 0 {e}, 0 {e // 2}))",
                    "properties": {"kind": "water"},
                }
            ],
        },
        {
            "name": "roads",
            "features": [
                {
                    "geometry": f"LINESTRING (0 {e // 4}, {e} {e // 4})",
                    "properties": {"kind": "major_road", "kind_detail": "primary"},
                }
            ],
        },
    ]
    return gzip.compress(mapbox_vector_tile.encode(layers, default_options={"y_coord_down": True}))


def write_base_map(path: Path, around: tuple[float, float] = PARIS) -> Path:
    """The 3×3 tiles around ``around`` at each zoom (fewer at zooms 0 and 1)."""
    data = tile_bytes()
    ids = set()
    for zoom in range(MAX_ZOOM + 1):
        cx, cy = tile_of(*around, zoom)
        for x in range(cx - 1, cx + 2):
            for y in range(cy - 1, cy + 2):
                if 0 <= x < 2**zoom and 0 <= y < 2**zoom:
                    ids.add(zxy_to_tileid(zoom, x, y))
    with write(str(path)) as writer:
        for tile_id in sorted(ids):
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_zoom": 0,
                "max_zoom": MAX_ZOOM,
                "min_lon_e7": int((around[0] - 1) * 1e7),
                "min_lat_e7": int((around[1] - 1) * 1e7),
                "max_lon_e7": int((around[0] + 1) * 1e7),
                "max_lat_e7": int((around[1] + 1) * 1e7),
                "center_zoom": 12,
                "center_lon_e7": int(around[0] * 1e7),
                "center_lat_e7": int(around[1] * 1e7),
            },
            {"name": "hypervision test base map", "vector_layers": []},
        )
    return path
