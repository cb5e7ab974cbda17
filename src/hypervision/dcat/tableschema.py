"""A published dataset's Table Schema, in the shape schema.data.gouv.fr publishes them.

Frictionless Table Schema (``fields`` with ``name``, ``type``, ``title``, ``description``;
``missingValues``) plus the metadata schema.data.gouv.fr's schemas carry (``name``,
``title``, ``description``, ``countryCode``, ``homepage``, ``path``, ``created``,
``lastModified``, ``version``). Types are Table Schema's own: a product's ``geometry``
column is published as ``geojson``, as ``hypervision.products.schema`` writes it.
"""

from __future__ import annotations

from typing import Any

from hypervision.dcat.model import Dataset

TABLE_SCHEMA_PROFILE = "https://frictionlessdata.io/schemas/table-schema.json"
# Downloads write an empty cell for a missing value, and nothing else.
MISSING_VALUES: list[str] = [""]


def table_schema(dataset: Dataset) -> dict[str, Any]:
    """The Table Schema descriptor of a dataset (a JSON-ready dict)."""
    fields: list[dict[str, Any]] = []
    for f in dataset.fields:
        descriptor: dict[str, Any] = {"name": f.name, "type": f.type, "title": f.title}
        description = f.description or ""
        if f.unit:
            # Table Schema has no unit property: the unit is said in the description.
            description = f"{description} (unité : {f.unit})".strip()
        if description:
            descriptor["description"] = description
        fields.append(descriptor)
    return {
        "$schema": TABLE_SCHEMA_PROFILE,
        "name": dataset.slug,
        "title": dataset.title,
        "description": dataset.description,
        "countryCode": "FR",
        "homepage": dataset.landing_page,
        "path": dataset.schema_url,
        "keywords": list(dataset.keywords),
        "created": dataset.issued.date().isoformat(),
        "lastModified": dataset.modified.date().isoformat(),
        "version": dataset.schema_version,
        "fields": fields,
        "missingValues": list(MISSING_VALUES),
    }
