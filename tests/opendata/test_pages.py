"""The public open data pages (ADR 0035): no sign-in, French first, cached; 404 and 410 as
pages."""

from __future__ import annotations

import json
import re
from html import unescape

from fastapi import FastAPI
from httpx import AsyncClient

from tests.opendata.test_publications import propose, published, stewards
from tests.products.test_products_api import create, health

__all__ = ["health"]


async def test_catalogue_and_dataset_pages(app: FastAPI, client: AsyncClient, health: str) -> None:
    first, _, _, pub, release = await published(app, client, health)
    catalogue = await client.get("/opendata?q=lits")
    assert catalogue.status_code == 200
    assert (
        "Données ouvertes" in catalogue.text and 'href="/opendata/lits-hopitaux"' in catalogue.text
    )
    assert catalogue.headers["cache-control"] == "public, max-age=60"
    again = await client.get(
        "/opendata?q=lits", headers={"If-None-Match": catalogue.headers["etag"]}
    )
    assert again.status_code == 304
    none = await client.get("/opendata?q=introuvable")
    assert "Aucun jeu de données ne correspond" in none.text

    page = await client.get("/opendata/lits-hopitaux")
    assert page.status_code == 200
    for shown in ("Lits des hôpitaux", "Schéma", "Premières lignes", "Lariboisière",
                  "Licence Ouverte 2.0", release["downloads"]["csv"]):  # fmt: skip
        assert shown in page.text, shown
    # The chart: beds summed per hospital, drawn by charts.js, its numbers as a table.
    assert "data-chart=" in page.text and "lits par hopital (somme" in page.text
    assert re.search(r"<th scope=\"row\">Bichat</th><td[^>]*>52</td>", page.text)
    assert "data-map=" not in page.text  # no geometry, no map
    assert (await client.get("/opendata/inconnu")).status_code == 404
    await client.post(
        f"/api/v1/publications/{pub}/withdraw", json={"reason": "Données erronées"}, headers=first
    )
    gone = await client.get("/opendata/lits-hopitaux")
    assert gone.status_code == 410 and "Données erronées" in gone.text


async def test_a_located_dataset_has_a_map(app: FastAPI, client: AsyncClient, health: str) -> None:
    first, second = await stewards(app, client)
    schema = {
        "fields": [
            {"name": "site", "type": "string"},
            {"name": "geometry", "type": "geojson"},
            {"name": "agents", "type": "integer"},
        ]
    }
    made = await create(client, first, health, slug="secteurs", table_schema=schema, rules=None)
    pid = made.json()["id"]
    points = {"Stade de France": [2.36, 48.92], "Trocadéro": [2.29, 48.86]}
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": at},
            "properties": {"site": site, "agents": 100 + i},
        }
        for i, (site, at) in enumerate(points.items())
    ]
    collection = json.dumps({"type": "FeatureCollection", "features": features})
    loaded = await client.post(
        f"/api/v1/products/{pid}/imports",
        files={"file": ("secteurs.geojson", collection, "application/geo+json")},
        headers=first,
    )
    assert loaded.status_code == 201, loaded.text
    proposal = await propose(
        client,
        first,
        pid,
        slug="secteurs",
        title="Secteurs",
        columns=["site", "geometry", "agents"],
    )
    assert proposal.status_code == 201, proposal.text
    approved = await client.post(
        f"/api/v1/publications/{proposal.json()['id']}/approve", headers=second
    )
    assert approved.status_code == 200, approved.text
    page = await client.get("/opendata/secteurs")
    assert page.status_code == 200
    found = re.search(r"data-location='([^']*)'", page.text)
    assert found is not None
    shown = json.loads(unescape(found.group(1)))
    assert [f["properties"]["site"] for f in shown["features"]] == list(points)
    assert [f["geometry"]["coordinates"] for f in shown["features"]] == list(points.values())
    assert 'data-map="show"' in page.text and "Carte de 2 lignes localisées" in page.text
    assert "data-chart=" in page.text  # agents per site
    assert "/carte/tuiles" not in page.text  # nothing that needs a sign-in
