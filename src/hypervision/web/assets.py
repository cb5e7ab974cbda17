"""Front-end packages from the npm registry, copied into the package's static folder.

``npm ci --ignore-scripts`` installs them (versions locked by ``package-lock.json``); this module
copies the files the pages use into ``web/static/vendor`` so that the application serves them
itself — never from a CDN — and a wheel or container image built afterwards carries them.

    python -m hypervision.web.assets node_modules
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"

# (path under node_modules, path under static/vendor); folders are copied whole.
MANIFEST: tuple[tuple[str, str], ...] = (
    ("@gouvfr/dsfr/dist/dsfr.min.css", "dsfr/dsfr.min.css"),
    ("@gouvfr/dsfr/dist/dsfr.module.min.js", "dsfr/dsfr.module.min.js"),
    ("@gouvfr/dsfr/dist/dsfr.nomodule.min.js", "dsfr/dsfr.nomodule.min.js"),
    ("@gouvfr/dsfr/dist/utility/icons/icons.min.css", "dsfr/utility/icons/icons.min.css"),
    ("@gouvfr/dsfr/dist/fonts", "dsfr/fonts"),
    ("@gouvfr/dsfr/dist/icons", "dsfr/icons"),
    ("@gouvfr/dsfr/dist/favicon", "dsfr/favicon"),
    ("@gouvfr/dsfr/dist/artwork", "dsfr/artwork"),
    ("htmx.org/dist/htmx.min.js", "htmx/htmx.min.js"),
    ("leaflet/dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet/dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet/dist/images", "leaflet/images"),
)


def missing() -> list[str]:
    """The vendor files the pages need and that are not installed."""
    return [dest for _, dest in MANIFEST if not (VENDOR / dest).exists()]


def install(node_modules: Path) -> None:
    for source, dest in MANIFEST:
        src, out = node_modules / source, VENDOR / dest
        if not src.exists():
            raise SystemExit(f"{src} is missing: run `npm ci --ignore-scripts` first")
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(src, out)
        else:
            shutil.copyfile(src, out)


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "node_modules"))
    print(f"front-end assets installed in {VENDOR}")  # noqa: T201
