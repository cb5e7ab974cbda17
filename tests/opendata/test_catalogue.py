"""The published datasets as a DCAT-AP catalogue (ADR 0036), served without sign-in: it
validates against the project's SHACL shapes, a udata-like harvester reads back every
dataset, download and checksum, and each dataset's Table Schema is the one its CSV follows.
Nothing unpublished appears in it. On both engines."""

from __future__ import annotations

import csv
import hashlib
import io

from fastapi import FastAPI
from frictionless import Schema
from httpx import AsyncClient

from hypervision.dcat import graph, harvest
from tests.opendata.test_publications import propose, published
from tests.products.test_products_api import health

__all__ = ["health"]


async def test_the_catalogue_validates_and_harvests(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _second, pid, _pub, _release = await published(app, client, health)
    # A second publication of it, proposed but never approved: never in the catalogue.
    draft = await propose(client, first, pid, slug="brouillon-non-publie", title="Brouillon")
    assert draft.status_code == 201, draft.text

    documents = {}
    for path, fmt, media in (
        ("/catalogue.jsonld", "json-ld", "application/ld+json"),
        ("/catalogue.ttl", "turtle", "text/turtle"),
    ):
        response = await client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(media)
        again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
        conforms, report = graph.validate(harvest.parse(response.text, fmt))  # type: ignore[arg-type]
        assert conforms, report
        documents[fmt] = harvest.harvest(response.text, fmt)  # type: ignore[arg-type]
        assert "brouillon" not in response.text.lower()

    assert documents["json-ld"] == documents["turtle"]
    (dataset,) = documents["json-ld"]
    assert dataset.title and dataset.licences == [
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
    ]
    csv_resource = next(r for r in dataset.resources if r.format == "csv")
    assert csv_resource.media_type == "text/csv" and csv_resource.checksum_type == "sha256"
    downloaded = await client.get(csv_resource.url.removeprefix("https://testserver"))
    assert downloaded.status_code == 200
    assert csv_resource.checksum == hashlib.sha256(downloaded.content).hexdigest()

    assert dataset.schema_url is not None
    schema = await client.get(dataset.schema_url.removeprefix("https://testserver"))
    assert schema.status_code == 200
    descriptor = schema.json()
    assert Schema.validate_descriptor(descriptor).valid
    header = next(csv.reader(io.StringIO(downloaded.text)))
    assert [f["name"] for f in descriptor["fields"]] == header

    unknown = await client.get("/opendata/api/datasets/brouillon-non-publie/schema.json")
    assert unknown.status_code == 404
