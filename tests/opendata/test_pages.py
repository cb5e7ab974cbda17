"""The public open data pages (ADR 0035): no sign-in, French first, cached; 404 and 410 as
pages."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from tests.opendata.test_publications import published
from tests.products.test_products_api import health

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
    assert (await client.get("/opendata/inconnu")).status_code == 404
    await client.post(
        f"/api/v1/publications/{pub}/withdraw", json={"reason": "Données erronées"}, headers=first
    )
    gone = await client.get("/opendata/lits-hopitaux")
    assert gone.status_code == 410 and "Données erronées" in gone.text
