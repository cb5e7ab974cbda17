"""The map figure of a synthesis, drawn server-side as SVG (no browser, no internet): the Paris
area's boundaries shipped with the app and the entries as numbered dots. Dots closer than their
size are merged into one marker (the gravest colour, the count inside) and every label is put
where it overlaps no dot and no other label: the numbers stay legible however crowded."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from markupsafe import escape

from hypervision.core.assets import BOUNDARIES

WIDTH, HEIGHT = 640, 420
COLOURS = {"info": "#000091", "minor": "#b8860b", "major": "#b34000", "critical": "#ce0500"}
MIN_SPAN = 0.05  # degrees: never zoom in closer than a few kilometres
RADIUS = 9  # a marker's radius, in figure units
FONT = 10  # a label's font size; a character is about FONT * CHAR wide
CHAR = 0.62
GRAVITY = {"critical": 3, "major": 2, "minor": 1, "info": 0}
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


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


def centre(location: dict[str, Any]) -> tuple[float, float] | None:
    """The mean of a GeoJSON geometry's points (lon, lat), or None (also used by reports)."""
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
    dots = [(n, sev, c) for n, sev, loc in located if (c := centre(loc)) is not None]
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
    parts.extend(_markers([(n, sev, *xy(lon, lat)) for n, sev, (lon, lat) in dots]))
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Marker:
    x: float
    y: float
    numbers: list[int]
    severity: str


def _cluster(dots: list[tuple[int, str, float, float]]) -> list[Marker]:
    """Dots nearer than a marker's width join the first marker there (which keeps its place:
    two markers are never closer than their width)."""
    markers: list[Marker] = []
    for number, severity, x, y in sorted(dots):
        near = next((m for m in markers if math.hypot(m.x - x, m.y - y) < 2 * RADIUS + 2), None)
        if near is None:
            markers.append(Marker(x, y, [number], severity))
            continue
        near.numbers.append(number)
        if GRAVITY.get(severity, 0) > GRAVITY.get(near.severity, 0):
            near.severity = severity
    return markers


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _numbers_text(numbers: list[int]) -> str:
    """1, 2, 3, 5 → "1-3, 5": short labels, fewer collisions."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _place(marker: Marker, width: float, taken: list[Box]) -> tuple[Box, bool]:
    """A box of ``width`` beside the marker that overlaps nothing taken and stays inside the
    figure: tried all around, further out each round (then joined by a leader line)."""
    height = FONT + 4
    fallback: Box | None = None
    for distance in (RADIUS + 2, RADIUS + 14, RADIUS + 30, RADIUS + 52, RADIUS + 80):
        for angle in range(0, 360, 30):
            dx, dy = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
            cx, cy = marker.x + dx * (distance + width / 2), marker.y + dy * (distance + height / 2)
            box = (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)
            if box[0] < 1 or box[1] < 1 or box[2] > WIDTH - 1 or box[3] > HEIGHT - 1:
                continue
            fallback = fallback or box
            if not any(_overlaps(box, other) for other in taken):
                return box, distance > RADIUS + 2
    return fallback or (0.0, 0.0, width, height), True


def _markers(dots: list[tuple[int, str, float, float]]) -> list[str]:
    markers = _cluster(dots)
    taken: list[Box] = [
        (m.x - RADIUS - 1, m.y - RADIUS - 1, m.x + RADIUS + 1, m.y + RADIUS + 1) for m in markers
    ]
    out: list[str] = []
    labels: list[str] = []
    # the gravest first: they get the nearest places
    order = sorted(markers, key=lambda m: (-GRAVITY.get(m.severity, 0), min(m.numbers)))
    for marker in order:
        colour = COLOURS.get(marker.severity, "#000091")
        inside = str(marker.numbers[0]) if len(marker.numbers) == 1 else f"{len(marker.numbers)}"
        out.append(
            f'<circle cx="{marker.x:.1f}" cy="{marker.y:.1f}" r="{RADIUS}" fill="{colour}" '
            'stroke="#fff" stroke-width="1.5"/>'
        )
        if len(marker.numbers) == 1 and len(inside) <= 2:
            size = 9 if len(inside) == 1 else 8
            out.append(
                f'<text x="{marker.x:.1f}" y="{marker.y + size * 0.35:.1f}" font-size="{size}" '
                'font-weight="700" fill="#fff" text-anchor="middle" data-inside="1">'
                f"{escape(inside)}</text>"
            )
            continue
        # several entries here (or a long number): the numbers on a label beside the marker
        text = _numbers_text(marker.numbers)
        width = len(text) * FONT * CHAR + 6
        box, far = _place(marker, width, taken)
        taken.append(box)
        if far:
            mx, my = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            out.append(
                f'<line x1="{marker.x:.1f}" y1="{marker.y:.1f}" x2="{mx:.1f}" y2="{my:.1f}" '
                'stroke="#3a3a3a" stroke-width=".8"/>'
            )
        if len(marker.numbers) > 1:
            out.append(
                f'<text x="{marker.x:.1f}" y="{marker.y + 3:.1f}" font-size="8" font-weight="700" '
                f'fill="#fff" text-anchor="middle" data-inside="1">×{len(marker.numbers)}</text>'
            )
        labels.append(
            f'<rect x="{box[0]:.1f}" y="{box[1]:.1f}" width="{box[2] - box[0]:.1f}" '
            f'height="{box[3] - box[1]:.1f}" fill="#fff" stroke="{colour}" stroke-width=".8"/>'
            f'<text x="{box[0] + 3:.1f}" y="{box[3] - 4:.1f}" font-size="{FONT}" '
            f'fill="#161616">{escape(text)}</text>'
        )
    return out + labels  # labels on top of leader lines and markers
