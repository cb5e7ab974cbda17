"""A catalogue of open datasets, as plain values (no database, no web framework).

The publications model fills these; ``graph`` turns them into DCAT-AP and ``table_schema``
into a Frictionless Table Schema. The checks below refuse what would make the catalogue
lie or be rejected by a harvester: a naive datetime, an unknown EU data theme, a relative
download URL, a checksum that is not SHA-256 hexadecimal, an impossible bounding box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit

# The EU data-theme authority table (DCAT-AP's vocabulary for dcat:theme).
DATA_THEMES: frozenset[str] = frozenset(
    {
        "AGRI",  # agriculture, fisheries, forestry and food
        "ECON",  # economy and finance
        "EDUC",  # education, culture and sport
        "ENER",  # energy
        "ENVI",  # environment
        "GOVE",  # government and public sector
        "HEAL",  # health
        "INTR",  # international issues
        "JUST",  # justice, legal system and public safety
        "OP_DATPRO",  # provisional data
        "REGI",  # regions and cities
        "SOCI",  # population and society
        "TECH",  # science and technology
        "TRAN",  # transport
    }
)

# Table Schema field types (Frictionless specification v1).
FIELD_TYPES: frozenset[str] = frozenset(
    {
        "string",
        "number",
        "integer",
        "boolean",
        "object",
        "array",
        "date",
        "time",
        "datetime",
        "year",
        "yearmonth",
        "duration",
        "geopoint",
        "geojson",
        "any",
    }
)

# The licences data.gouv.fr recognises for public-sector data, under the URLs it matches.
LICENCE_OUVERTE_2 = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
ODBL = "https://opendatacommons.org/licenses/odbl/1-0/"
LICENCE_LABELS: dict[str, str] = {
    LICENCE_OUVERTE_2: "Licence Ouverte / Open Licence version 2.0",
    ODBL: "Open Data Commons Open Database License (ODbL)",
}

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
LANGUAGE = re.compile(r"^[a-z]{2}$")


def _absolute(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL: {url!r}")
    if any(c in url for c in ' <>"{}|\\^`') or any(ord(c) < 0x21 for c in url):
        raise ValueError(f"{what} holds characters an IRI may not: {url!r}")
    return url


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must carry its time zone (naive datetime)")
    return value


@dataclass(frozen=True)
class Field:
    """One column, with a Table Schema type (``geojson`` for a geometry)."""

    name: str
    type: str
    title: str
    description: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if not FIELD_NAME.match(self.name):
            raise ValueError(f"invalid field name {self.name!r}")
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: {self.type!r} is not a Table Schema type")


@dataclass(frozen=True)
class Release:
    """One refresh of a dataset, never rewritten.

    ``checksum_sha256`` is the SHA-256 of the file downloaded as ``checksum_format`` (the
    canonical CSV by default); the other formats are derived from the same rows, and carry
    a checksum only when ``checksums`` gives theirs. ``byte_sizes`` is optional, per format.
    """

    number: int
    created: datetime
    row_count: int
    checksum_sha256: str
    downloads: dict[str, str]
    checksum_format: str = "csv"
    checksums: dict[str, str] = field(default_factory=dict)
    byte_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.number < 1 or self.row_count < 0:
            raise ValueError("a release number starts at 1 and a row count is not negative")
        _aware(self.created, f"release {self.number} created")
        if not self.downloads:
            raise ValueError(f"release {self.number} has no download")
        for fmt, url in self.downloads.items():
            media_type(fmt)
            _absolute(url, f"release {self.number} {fmt} download")
        if self.checksum_format not in self.downloads:
            raise ValueError(f"release {self.number}: no {self.checksum_format} download")
        for value in (self.checksum_sha256, *self.checksums.values()):
            if not SHA256.match(value):
                raise ValueError(f"release {self.number}: {value!r} is not a SHA-256 in hex")
        for fmt, size in self.byte_sizes.items():
            if fmt not in self.downloads or size < 0:
                raise ValueError(f"release {self.number}: bad byte size for {fmt!r}")

    def checksum(self, fmt: str) -> str | None:
        """The SHA-256 of the file in this format, when known."""
        if fmt in self.checksums:
            return self.checksums[fmt]
        return self.checksum_sha256 if fmt == self.checksum_format else None


@dataclass(frozen=True)
class Dataset:
    """A published dataset: what its page, its Table Schema and its DCAT record say."""

    slug: str
    title: str
    description: str
    keywords: list[str]
    themes: list[str]
    publisher_name: str
    licence_uri: str
    issued: datetime
    modified: datetime
    temporal_start: date | None
    temporal_end: date | None
    bbox: tuple[float, float, float, float] | None  # west, south, east, north (WGS 84)
    fields: list[Field]
    releases: list[Release]
    landing_page: str
    schema_url: str  # where its Table Schema JSON is served (dct:conformsTo)
    schema_version: str = "1.0.0"

    def __post_init__(self) -> None:
        if not SLUG.match(self.slug):
            raise ValueError(f"invalid dataset slug {self.slug!r}")
        if not self.title.strip() or not self.description.strip():
            raise ValueError(f"dataset {self.slug!r} needs a title and a description")
        unknown = [t for t in self.themes if t not in DATA_THEMES]
        if unknown:
            raise ValueError(f"dataset {self.slug!r}: unknown EU data themes {unknown}")
        _absolute(self.licence_uri, "licence")
        _absolute(self.landing_page, "landing page")
        _absolute(self.schema_url, "schema URL")
        _aware(self.issued, "issued")
        _aware(self.modified, "modified")
        if (
            self.temporal_start is not None
            and self.temporal_end is not None
            and self.temporal_end < self.temporal_start
        ):
            raise ValueError(f"dataset {self.slug!r}: temporal coverage ends before it starts")
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
                raise ValueError(f"dataset {self.slug!r}: impossible bounding box {self.bbox}")
        names = [f.name for f in self.fields]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"dataset {self.slug!r}: no field, or a field twice")
        numbers = [r.number for r in self.releases]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"dataset {self.slug!r}: a release number twice")

    @property
    def latest(self) -> Release | None:
        return max(self.releases, key=lambda r: r.number, default=None)


@dataclass(frozen=True)
class Catalogue:
    """The catalogue a harvester reads: who publishes, in which language, which datasets."""

    base_url: str
    title: str
    description: str
    publisher_name: str
    homepage: str
    modified: datetime
    datasets: list[Dataset]
    language: str = "fr"

    def __post_init__(self) -> None:
        _absolute(self.base_url, "base URL")
        _absolute(self.homepage, "homepage")
        _aware(self.modified, "catalogue modified")
        if not LANGUAGE.match(self.language) or self.language not in LANGUAGES:
            raise ValueError(f"unsupported catalogue language {self.language!r}")
        slugs = [d.slug for d in self.datasets]
        if len(set(slugs)) != len(slugs):
            raise ValueError("two datasets share a slug")


# ISO 639-1 -> the EU language authority's code (ISO 639-3 style).
LANGUAGES: dict[str, str] = {"fr": "FRA", "en": "ENG", "de": "DEU", "es": "SPA", "it": "ITA"}

# format -> (IANA media type, EU file-type authority code)
FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv", "CSV"),
    "json": ("application/json", "JSON"),
    "geojson": ("application/geo+json", "GEOJSON"),
    "parquet": ("application/vnd.apache.parquet", "PARQUET"),
}


def media_type(fmt: str) -> str:
    """The IANA media type of a download format: ``media_type("csv") == "text/csv"``.

    Formats are lower-case names (csv, json, geojson, parquet); anything else is refused.
    """
    try:
        return FORMATS[fmt][0]
    except KeyError:
        raise ValueError(f"unknown download format {fmt!r}") from None
