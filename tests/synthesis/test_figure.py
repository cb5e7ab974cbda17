"""The synthesis map stays legible when entries crowd one place: no two markers overlap, no
label overlaps a marker or another label, and every entry's number is on the map."""

from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET
from typing import Any

from hypervision.synthesis.figure import map_svg

NS = "{http://www.w3.org/2000/svg}"
CHAR = 0.62  # a character is about this much of the font size wide
SEVERITIES = ("info", "minor", "major", "critical")


def crowded(count: int, spread: float, seed: int) -> list[tuple[int, str, dict[str, Any]]]:
    """``count`` entries within ``spread`` degrees of the Stade de France, and a few far."""
    pick = random.Random(seed)
    located: list[tuple[int, str, dict[str, Any]]] = []
    for n in range(1, count + 1):
        lon = 2.3601 + pick.uniform(-spread, spread)
        lat = 48.9245 + pick.uniform(-spread, spread)
        if n % 7 == 0:  # some elsewhere in Paris: the figure zooms out, the crowd tightens
            lon, lat = 2.29 + pick.uniform(0, 0.1), 48.84 + pick.uniform(0, 0.04)
        point = {"type": "Point", "coordinates": [lon, lat]}
        located.append((n, SEVERITIES[n % 4], point))
    return located


def boxes(svg: str) -> tuple[list[tuple[float, float, float]], list[tuple[float, ...]], str]:
    root = ET.fromstring(svg)  # noqa: S314 - our own drawing, not outside input
    circles = [
        (float(c.get("cx", 0)), float(c.get("cy", 0)), float(c.get("r", 0)))
        for c in root.iter(f"{NS}circle")
    ]
    texts: list[tuple[float, ...]] = []
    words = []
    for t in root.iter(f"{NS}text"):
        size, content = float(t.get("font-size", 10)), t.text or ""
        words.append(content)
        width = len(content) * size * CHAR
        x, y = float(t.get("x", 0)), float(t.get("y", 0))
        x0 = x - width / 2 if t.get("text-anchor") == "middle" else x
        texts.append((x0, y - size * 0.75, x0 + width, y + size * 0.2))
    return circles, texts, " ".join(words)


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def numbers_shown(words: str) -> set[int]:
    shown: set[int] = set()
    for first, last in re.findall(r"(?<![×\d])(\d+)(?:-(\d+))?", words):
        shown.update(range(int(first), int(last or first) + 1))
    return shown


def test_crowded_entries_stay_legible() -> None:
    for seed, count, spread in ((1, 30, 0.002), (2, 12, 0.0005), (3, 60, 0.004), (4, 5, 0.0)):
        located = crowded(count, spread, seed)
        circles, texts, words = boxes(map_svg(located))
        for i, a in enumerate(circles):
            for b in circles[i + 1 :]:
                assert math.hypot(a[0] - b[0], a[1] - b[1]) >= a[2] + b[2], (seed, a, b)
        for i, box in enumerate(texts):
            for other in texts[i + 1 :]:
                assert not overlap(box, other), (seed, words, box, other)
        rects = [
            tuple(float(r.get(k, 0)) for k in ("x", "y", "width", "height"))
            for r in ET.fromstring(map_svg(located)).iter(f"{NS}rect")  # noqa: S314
        ][1:]  # the first is the background
        for x, y, w, h in rects:
            label = (x, y, x + w, y + h)
            assert x >= 0 and x + w <= 640 and y >= 0 and y + h <= 420, (seed, label)
            for cx, cy, r in circles:
                assert not overlap(label, (cx - r, cy - r, cx + r, cy + r)), (seed, label)
        assert numbers_shown(words) >= set(range(1, count + 1)), (seed, words)


def test_a_lone_entry_has_its_number_in_its_marker() -> None:
    svg = map_svg([(4, "critical", {"type": "Point", "coordinates": [2.35, 48.85]})])
    circles, _, words = boxes(svg)
    assert len(circles) == 1 and words == "4" and 'fill="#ce0500"' in svg
