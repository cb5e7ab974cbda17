"""The public datasets as a DCAT-AP catalogue and Table Schemas (``hypervision.dcat``,
ADR 0036): what a harvester such as data.gouv.fr's reads from ``/catalogue.jsonld`` or
``/catalogue.ttl``."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from hypervision.dcat import model
from hypervision.opendata.schemas import DatasetRead

log = logging.getLogger("hypervision.opendata")

TITLE = "Hypervision — données ouvertes"
DESCRIPTION = (
    "Jeux de données publiés par les administrations sur Hypervision, sous licence ouverte, "
    "après décision de deux responsables de données."
)
# Release field types (products' Table Schema types) that the catalogue names otherwise.
TYPES = {"geometry": "geojson"}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def schema_path(slug: str) -> str:
    return f"/opendata/api/datasets/{slug}/schema.json"


def dataset(base_url: str, read: DatasetRead) -> model.Dataset:
    """One public dataset as DCAT describes it (``ValueError`` if it cannot be described)."""
    latest = read.releases[-1] if read.releases else None
    fields = [
        model.Field(
            name=f["name"],
            type=TYPES.get(f["type"], f["type"] if f["type"] in model.FIELD_TYPES else "string"),
            title=f.get("title") or f["name"],
        )
        for f in (latest.fields if latest else read.fields)
    ]
    releases = [
        model.Release(
            number=r.number,
            created=r.created_at,
            row_count=r.row_count,
            checksum_sha256=r.sha256,
            downloads={fmt: base_url + path for fmt, path in r.downloads.items()},
        )
        for r in read.releases
    ]
    start, end = read.temporal[:2] if read.temporal and len(read.temporal) >= 2 else ("", "")
    bbox = read.bbox
    return model.Dataset(
        slug=read.slug,
        title=read.title,
        description=read.description.strip() or read.title,
        keywords=read.keywords,
        themes=read.themes,
        publisher_name=read.publisher or TITLE,
        licence_uri=read.licence,
        issued=read.issued,
        modified=read.modified,
        temporal_start=_day(start) if start else None,
        temporal_end=_day(end) if end else None,
        bbox=(bbox[0], bbox[1], bbox[2], bbox[3]) if bbox and len(bbox) == 4 else None,
        fields=fields,
        releases=releases,
        landing_page=read.url,
        schema_url=base_url + schema_path(read.slug),
    )


EMPTY_SINCE = datetime(2024, 1, 1, tzinfo=UTC)  # an empty catalogue's date: stable for ETags


def catalogue(base_url: str, reads: list[DatasetRead]) -> model.Catalogue:
    """The catalogue of ``reads``; a dataset DCAT cannot describe is left out and logged
    (a harvester then misses it; the public site still lists it)."""
    datasets = []
    for read in reads:
        try:
            datasets.append(dataset(base_url, read))
        except ValueError as exc:
            log.warning("open data: %s left out of the DCAT catalogue: %s", read.slug, exc)
    return model.Catalogue(
        base_url=base_url,
        title=TITLE,
        description=DESCRIPTION,
        publisher_name="Hypervision",
        homepage=base_url + "/opendata",
        modified=max((d.modified for d in datasets), default=EMPTY_SINCE),
        datasets=datasets,
    )
