"""The map figure of a synthesis, drawn server-side as SVG (no browser, no internet): the Paris
area's boundaries shipped with the app and the entries as numbered dots."""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

from markupsafe import escape

from hypervision.core.assets import BOUNDARIES

WIDTH, HEIGHT = 640, 420
COLOURS = {"info": "#000091", "minor": "#b8860b", "major": "#b34000", "critical": "#ce0500"}
MIN_SPAN = 0.05  # degrees: never zoom in closer than a few kilometres


@cache
def _boundaries() -> list[list[list[tuple[float, float]]]]:
    shapes = []
    for name in ("departements", "paris"):
        path = BOUNDARIES / f"{name}.geojson"
        if not path.exists():
            continue
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            geometry = feature["geometry"]
            polygons = (
                [geometry["coordinates"]]
                if geometry["type"] == "Polygon"
                else geometry["coordinates"]
            )
            for rings in polygons:
                shapes.append([[(float(x), float(y)) for x, y, *_ in ring] for ring in rings])
    return shapes


def _centre(location: dict[str, Any]) -> tuple[float, float] | None:
    points: list[tuple[float, float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list) and node and isinstance(node[0], int | float):
            points.append((float(node[0]), float(node[1])))
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(location.get("coordinates"))
    if not points:
        return None
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def map_svg(located: list[tuple[int, str, dict[str, Any]]]) -> str:
    """``located``: (number in the entries table, severity, GeoJSON location)."""
    dots = [(n, sev, c) for n, sev, loc in located if (c := _centre(loc)) is not None]
    if dots:
        west = min(c[0] for _, _, c in dots)
        east = max(c[0] for _, _, c in dots)
        south = min(c[1] for _, _, c in dots)
        north = max(c[1] for _, _, c in dots)
    else:
        west, east, south, north = 2.25, 2.45, 48.80, 48.92
    mid_lat = (south + north) / 2
    squeeze = math.cos(math.radians(mid_lat))
    span_x = max(east - west, MIN_SPAN) * squeeze * 1.2
    span_y = max(north - south, MIN_SPAN) * 1.2
    scale = min(WIDTH / span_x, HEIGHT / span_y)
    cx, cy = (west + east) / 2, (south + north) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (
            WIDTH / 2 + (lon - cx) * squeeze * scale,
            HEIGHT / 2 - (lat - cy) * scale,
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Carte des entrées">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f5f5fe"/>',
    ]
    half_w, half_h = WIDTH / 2 / (squeeze * scale), HEIGHT / 2 / scale
    view = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    for rings in _boundaries():
        outer = rings[0]
        if (
            max(p[0] for p in outer) < view[0]
            or min(p[0] for p in outer) > view[2]
            or max(p[1] for p in outer) < view[1]
            or min(p[1] for p in outer) > view[3]
        ):
            continue  # outside the figure
        d = " ".join(
            "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in (xy(*p) for p in ring)) + " Z"
            for ring in rings
        )
        parts.append(f'<path d="{d}" fill="#ffffff" stroke="#9a9aca" stroke-width="1"/>')
    for number, severity, (lon, lat) in reversed(dots):  # the first (gravest) drawn on top
        x, y = xy(lon, lat)
        colour = COLOURS.get(severity, "#000091")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{colour}" stroke="#fff" '
            'stroke-width="1.5"/>'
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}" font-size="10" fill="#161616">'
            f"{escape(str(number))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
