"""A chart drawn as static SVG for the PDFs (space reports, docs/adr/0045): the same
``ChartSpec`` the page draws with ECharts, in the same DSFR colours, without script, font
download or interaction, so that WeasyPrint prints it. The PDF still prints the numbers as a
table beside it (``charts.table_of``): the drawing is for the eye, the table is the record.

Bars (grouped or stacked, upright or lying), lines and areas (stacked or not), histograms,
pies and donuts, heat maps. Every text from the data is escaped."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape

from hypervision.core.charts import ChartSpec, number

# The DSFR illustrative colours, in the order web/static/charts.js uses them.
PALETTE = (
    "#465f9d", "#e4794a", "#009081", "#a558a0", "#c3992a", "#417dc4", "#ce614a", "#68a532",
    "#c08c65", "#009099", "#e18b76", "#00a95f", "#bd987a", "#c8aa39", "#aea397", "#b7a73f",
    "#d1b781",
)  # fmt: skip
INK, GRID, BLUE = "#161616", "#dddddd", "#000091"
WIDTH, HEIGHT = 680, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 64  # plot margins (axis labels, legend)
MAX_LABELS = 24  # category labels written along an axis (one in k beyond)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _safe(text: str) -> str:
    """Text from the data as SVG text: escaped, without the characters XML forbids."""
    return escape(NOT_XML.sub("", text))


def _short(text: str, size: int = 18) -> str:
    return _safe(text if len(text) <= size else text[: size - 1] + "…")


def _text(x: float, y: float, content: str, *, anchor: str = "middle", size: int = 10,
          rotate: float | None = None, fill: str = INK) -> str:  # fmt: skip
    turn = f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{turn}>{content}</text>'
    )


def _nice_top(value: float) -> float:
    """A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return 10.0 * power


def _range(spec: ChartSpec) -> tuple[float, float]:
    """The value axis: from min(0, lowest) to the highest (stacked: the highest sum)."""
    columns = list(zip(*(s.values for s in spec.series), strict=True)) or [()]
    if spec.stacked:
        highs = [sum(v for v in col if v is not None and v > 0) for col in columns]
        lows = [sum(v for v in col if v is not None and v < 0) for col in columns]
    else:
        values = [v for s in spec.series for v in s.values if v is not None]
        highs, lows = values or [0.0], values or [0.0]
    high, low = max(highs, default=0.0), min(lows, default=0.0)
    top = _nice_top(high) if high > 0 else 0.0
    bottom = -_nice_top(-low) if low < 0 else 0.0
    return bottom, (top if top > bottom else bottom + 1.0)


def _legend(spec: ChartSpec, names: Sequence[str]) -> list[str]:
    if len(names) < 2:
        return []
    parts, x, y = [], float(LEFT), HEIGHT - 10.0
    for i, name in enumerate(names[:12]):
        parts.append(f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="9" height="9" fill="{colour(i)}"/>')
        parts.append(_text(x + 12, y, _short(name, 16), anchor="start", size=9))
        x += 24 + 6 * min(len(name), 16)
        if x > WIDTH - 90:
            break
    return parts


def _axes(spec: ChartSpec, low: float, high: float, *, lying: bool) -> list[str]:
    """The value axis's grid lines and numbers, and the category labels."""
    parts = []
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for k in range(5):
        value = low + (high - low) * k / 4
        if lying:
            x = LEFT + plot_w * k / 4
            parts.append(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="{GRID}"/>'
            )
            parts.append(_text(x, TOP + plot_h + 14, escape(number(value))))
        else:
            y = TOP + plot_h - plot_h * k / 4
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                f'stroke="{GRID}"/>'
            )
            parts.append(_text(LEFT - 6, y + 3, escape(number(value)), anchor="end"))
    count = len(spec.categories)
    every = max(1, math.ceil(count / MAX_LABELS))
    for i, category in enumerate(spec.categories):
        if i % every:
            continue
        if lying:
            y = TOP + plot_h * (i + 0.5) / count
            parts.append(_text(LEFT - 6, y + 3, _short(category, 10), anchor="end", size=9))
        else:
            x = LEFT + plot_w * (i + 0.5) / count
            rotate = -35.0 if count > 8 else None
            anchor = "end" if rotate else "middle"
            parts.append(_text(x, TOP + plot_h + 14, _short(category), anchor=anchor, size=9,
                               rotate=rotate))  # fmt: skip
    if spec.unit:
        parts.append(_text(4, TOP + 8, _safe(spec.unit), anchor="start", size=9))
    return parts


def _bars(spec: ChartSpec) -> list[str]:
    low, high = _range(spec)
    lying = spec.horizontal
    length = (WIDTH - LEFT - RIGHT) if lying else (HEIGHT - TOP - BOTTOM)
    count = max(len(spec.categories), 1)
    band = ((HEIGHT - TOP - BOTTOM) if lying else (WIDTH - LEFT - RIGHT)) / count
    gap = 0.0 if spec.kind == "histogram" else band * 0.15
    groups = 1 if spec.stacked or spec.kind == "histogram" else len(spec.series)
    thick = (band - 2 * gap) / groups

    def at(value: float) -> float:  # distance along the value axis from its start
        return length * (value - low) / (high - low)

    parts = _axes(spec, low, high, lying=lying)
    for i in range(len(spec.categories)):
        up = down = 0.0
        for j, s in enumerate(spec.series):
            value = s.values[i]
            if value is None:
                continue
            if spec.stacked:
                start = up if value >= 0 else down
                end = start + value
                up, down = (end, down) if value >= 0 else (up, end)
                slot = 0
            else:
                start, end, slot = 0.0, value, j if groups > 1 else 0
            a, b = sorted((at(start), at(end)))
            offset = band * i + gap + thick * slot
            fill = colour(j)
            if lying:
                x, y, w, h = LEFT + a, TOP + offset, b - a, thick
            else:
                x, y, w, h = LEFT + offset, TOP + length - b, thick, b - a
            edge = ' stroke="#ffffff" stroke-width="0.5"' if spec.kind == "histogram" else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{fill}"{edge}/>'
            )
    return parts + _legend(spec, [s.name for s in spec.series])


def _lines(spec: ChartSpec) -> list[str]:
    low, high = _range(spec)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(spec.categories), 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return LEFT + plot_w * (i + 0.5) / count, TOP + plot_h - plot_h * (value - low) / (
            high - low
        )

    parts = _axes(spec, low, high, lying=False)
    base = [0.0] * len(spec.categories)
    for j, s in enumerate(spec.series):
        tops = [
            (base[i] + v if spec.stacked else v) if v is not None else None
            for i, v in enumerate(s.values)
        ]
        drawn = [(i, t) for i, t in enumerate(tops) if t is not None]
        if not drawn:
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, t) for i, t in drawn))
        if spec.kind == "area":
            floor = [
                point(i, base[i] if spec.stacked else max(low, 0.0)) for i, _ in reversed(drawn)
            ]
            under = " ".join(f"{x:.1f},{y:.1f}" for x, y in floor)
            parts.append(
                f'<polygon points="{coords} {under}" fill="{colour(j)}" fill-opacity="0.35"/>'
            )
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour(j)}" stroke-width="2"/>'
        )
        if spec.stacked:
            base = [t if t is not None else b for t, b in zip(tops, base, strict=True)]
    return parts + _legend(spec, [s.name for s in spec.series])


def _pie(spec: ChartSpec) -> list[str]:
    values = [v or 0.0 for v in spec.series[0].values]
    total = sum(values)
    cx, cy, r = WIDTH / 3, (HEIGHT - 10) / 2, (HEIGHT - 40) / 2
    inner = r * 0.55 if spec.kind == "donut" else 0.0
    parts: list[str] = []
    if total <= 0:
        return [_text(cx, cy, "—", size=14)]
    angle = -math.pi / 2
    for i, value in enumerate(values):
        if value <= 0:
            continue
        sweep = 2 * math.pi * value / total
        parts.append(_slice(cx, cy, r, inner, angle, min(sweep, 2 * math.pi - 1e-6), colour(i)))
        angle += sweep
    x, y = WIDTH * 2 / 3 - 40, 24.0
    for i, (category, value) in enumerate(zip(spec.categories, values, strict=True)):
        if y > HEIGHT - 10:
            break
        share = number(round(100 * value / total, 1), "%")
        parts.append(f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="9" height="9" fill="{colour(i)}"/>')
        parts.append(
            _text(x + 14, y, f"{_short(category, 28)} — {escape(share)}", anchor="start", size=9)
        )
        y += 15
    return parts


def _slice(cx: float, cy: float, r: float, inner: float, start: float, sweep: float,
           fill: str) -> str:  # fmt: skip
    end = start + sweep
    big = 1 if sweep > math.pi else 0
    x1, y1 = cx + r * math.cos(start), cy + r * math.sin(start)
    x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
    if inner:
        x3, y3 = cx + inner * math.cos(end), cy + inner * math.sin(end)
        x4, y4 = cx + inner * math.cos(start), cy + inner * math.sin(start)
        path = (
            f"M{x1:.2f},{y1:.2f} A{r:.2f},{r:.2f} 0 {big} 1 {x2:.2f},{y2:.2f} "
            f"L{x3:.2f},{y3:.2f} A{inner:.2f},{inner:.2f} 0 {big} 0 {x4:.2f},{y4:.2f} Z"
        )
    else:
        path = (f"M{cx:.2f},{cy:.2f} L{x1:.2f},{y1:.2f} "
                f"A{r:.2f},{r:.2f} 0 {big} 1 {x2:.2f},{y2:.2f} Z")  # fmt: skip
    return f'<path d="{path}" fill="{fill}" stroke="#ffffff" stroke-width="1"/>'


def _heatmap(spec: ChartSpec) -> list[str]:
    values = [v for s in spec.series for v in s.values if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    cols, rows = max(len(spec.categories), 1), max(len(spec.rows), 1)
    w, h = plot_w / cols, plot_h / rows
    parts: list[str] = []
    for r_i, s in enumerate(spec.series):
        for c_i, value in enumerate(s.values):
            share = 0.0 if value is None or high == low else (value - low) / (high - low)
            fill = "#f6f6f6" if value is None else BLUE
            opacity = 1.0 if value is None else 0.08 + 0.92 * share
            parts.append(
                f'<rect x="{LEFT + c_i * w:.1f}" y="{TOP + r_i * h:.1f}" width="{w:.1f}" '
                f'height="{h:.1f}" fill="{fill}" fill-opacity="{opacity:.2f}" stroke="#ffffff"/>'
            )
        parts.append(_text(LEFT - 6, TOP + (r_i + 0.5) * h + 3, _short(spec.rows[r_i], 10),
                           anchor="end", size=9))  # fmt: skip
    every = max(1, math.ceil(cols / MAX_LABELS))
    for c_i, category in enumerate(spec.categories):
        if c_i % every == 0:
            x = LEFT + (c_i + 0.5) * w
            parts.append(_text(x, TOP + plot_h + 14, _short(category), anchor="end", size=9,
                               rotate=-35.0))  # fmt: skip
    return parts


def svg_of(spec: ChartSpec, title: str = "") -> str:
    """The chart as one ``<svg>`` element (its title for screen readers of the PDF)."""
    if spec.kind in ("pie", "donut"):
        parts = _pie(spec)
    elif spec.kind == "heatmap":
        parts = _heatmap(spec)
    elif spec.kind in ("line", "area"):
        parts = _lines(spec)
    else:
        parts = _bars(spec)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'font-family="Marianne, DejaVu Sans, sans-serif"><title>{_safe(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )
