"""Where the front-end files installed from the npm registry live (``web/assets.py`` copies
them there): the web pages serve them, the syntheses' PDFs embed their fonts and the offline
map boundaries."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent.parent / "web" / "static"
VENDOR = STATIC / "vendor"
BOUNDARIES = VENDOR / "boundaries"
