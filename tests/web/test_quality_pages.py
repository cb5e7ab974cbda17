"""Data products' quality on the web (both engines): the stewards declare rules through a form
(no code; a bad rule is refused with what is wrong), the product page's "Qualité" section shows
the score and each rule's state, the failing rows are listed under the product's rules, and a
stale product says so in the catalogue and on its page."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from hypervision.db import utcnow
from hypervision.products.models import DataProduct, ProductVersion
from tests.factories import tx
from tests.web.conftest import Browser
from tests.web.pages import browse_as
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with test_product_pages


async def test_a_steward_declares_rules_and_readers_see_their_state(
    app: FastAPI, client: AsyncClient, new_client: Browser, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    mine = DataProduct.id == uuid.UUID(product)
    form = await client.get(f"/donnees/{product}/qualite")
    assert form.status_code == 200 and 'id="regle-ajout"' in form.text
    url = f"/donnees/{product}/qualite"
    bad = {"csrf_token": csrf, "kind": "pattern", "field": "hopital", "pattern": "(["}
    refused = await client.post(url, data=bad)
    assert refused.status_code == 422 and 'id="qualite-erreur"' in refused.text
    assert "expression régulière invalide" in refused.text
    ranged = {"csrf_token": csrf, "kind": "range", "field": "lits", "min": "15", "max": "45"}
    added = await client.post(url, data=ranged)
    assert added.status_code == 303, added.text
    fresh = {"csrf_token": csrf, "kind": "freshness", "max_age": "2", "age_unit": "hours",
             "severity": "warning", "note": "Mise à jour toutes les deux heures"}  # fmt: skip
    assert (await client.post(url, data=fresh)).status_code == 303
    async with tx(app) as session:
        stored = await session.scalar(select(DataProduct.quality_rules).where(mine))
    assert stored is not None and [r["kind"] for r in stored] == ["range", "freshness"]
    assert stored[1]["max_age_minutes"] == 120
    page = await client.get(f"/donnees/{product}")
    assert 'id="table-qualite"' in page.text and 'id="qualite-gerer"' in page.text
    assert f"/donnees/{product}/qualite/echecs?regle={stored[0]['id']}" in page.text
    assert 'id="badge-perime"' not in page.text

    prefet = await new_client()
    await browse_as(prefet, "prefet")
    assert (await prefet.get(url)).status_code == 403
    seen = await prefet.get(f"/donnees/{product}")
    assert 'id="table-qualite"' in seen.text and 'id="qualite-gerer"' not in seen.text
    failing = await prefet.get(f"{url}/echecs", params={"regle": stored[0]["id"]})
    assert failing.status_code == 200, failing.text
    assert "Lariboisière" in failing.text and "SAMU" not in failing.text

    async with tx(app) as session:  # three hours without an import: stale
        await session.execute(update(ProductVersion).values(at=utcnow() - timedelta(hours=3)))
    catalogue = await prefet.get("/donnees")
    assert "Périmé" in catalogue.text
    assert 'id="badge-perime"' in (await prefet.get(f"/donnees/{product}")).text

    pattern = {"csrf_token": csrf, "kind": "pattern", "field": "departement",
               "pattern": r"\d{2}", "severity": "blocking"}  # fmt: skip
    assert (await client.post(url, data=pattern)).status_code == 303
    cochin = "hopital;departement;service;lits;patients;taux\nCochin;7S;Urgences;30;3;0,5\n"
    imported = await client.post(
        f"/donnees/{product}/import",
        data={"csrf_token": csrf, "mode": "append"},
        files={"file": ("cochin.csv", cochin.encode(), "text/csv")},
    )
    assert imported.status_code == 422 and 'id="import-erreur"' in imported.text
    assert "bloquante" in imported.text and "hopital = Cochin" in imported.text
    async with tx(app) as session:
        assert await session.scalar(select(DataProduct.data_version).where(mine)) == 1

    removed = await client.post(url, data={"csrf_token": csrf, "action": "remove",
                                           "rule": stored[0]["id"]})  # fmt: skip
    assert removed.status_code == 303
    async with tx(app) as session:
        left = await session.scalar(select(DataProduct.quality_rules).where(mine))
    assert left is not None and [r["kind"] for r in left] == ["freshness", "pattern"]
