"""What a feed card shows beyond the entry's fields: a plain-text excerpt of its Markdown body
and the name of the venue it is at. Installed as template globals (``install``), so every
page that includes ``_entry_card.html`` gets them without more context."""

from __future__ import annotations

import math
import re
from typing import Any

from jinja2 import Environment

from hypervision.core.i18n import N_
from hypervision.geo.places import VENUES

# The protection levels in words (a level without a name here shows its code).
LEVEL_NAMES = {"NP": N_("Not protected"), "DR": N_("Restricted distribution")}
EXCERPT = 160  # characters
NEAR_M = 300  # a point this close to a venue is "at" it

_MARKUP = [
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images: their text
    (re.compile(r"^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+", re.MULTILINE), ""),  # block marks
    (re.compile(r"(\*\*|__|\*|_|~~|`+)"), ""),  # emphasis and code
]


def excerpt(body: str, limit: int = EXCERPT) -> str:
    """The body's first words as plain text (Markdown marks removed), cut at a word."""
    text = body or ""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return f"{cut}…"


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6_371_000 * math.hypot(x, y)


def place_name(location: dict[str, Any] | None) -> str | None:
    """The venue a point entry lies at (within ``NEAR_M``), else None."""
    if not location or location.get("type") != "Point":
        return None
    try:
        lon, lat = (float(c) for c in location["coordinates"][:2])
    except (KeyError, TypeError, ValueError):
        return None
    best = min(VENUES, key=lambda v: _metres(lon, lat, v.lon, v.lat), default=None)
    if best is None or _metres(lon, lat, best.lon, best.lat) > NEAR_M:
        return None
    return best.name


def level_words(level: str) -> str:
    """The untranslated words for a protection level (the templates translate them)."""
    return LEVEL_NAMES.get(level, level)


def install(env: Environment) -> None:
    env.globals["level_words"] = level_words
    env.globals["excerpt"] = excerpt
    env.globals["place_name"] = place_name
