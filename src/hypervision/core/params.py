"""Query parameters every kind's listing shares."""

from __future__ import annotations

from hypervision.core.errors import Invalid


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    try:
        west, south, east, north = (float(part) for part in raw.split(","))
    except ValueError:
        west = south = east = north = float("nan")
    ok = (-180 <= west <= east <= 180) and (-90 <= south <= north <= 90)
    if not ok:
        raise Invalid(
            "bbox attendu : ouest,sud,est,nord en degrés (WGS 84).",
            "bbox expected as west,south,east,north in degrees (WGS 84).",
            extra={"fields": [{"field": "bbox", "message": "invalid"}]},
        )
    return west, south, east, north
