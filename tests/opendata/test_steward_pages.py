"""The stewards' open data section (ADR 0035): propose through the form, a second steward
approves, refusals shown with their reason, withdraw with a reason."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.opendata.test_publications import product, stewards
from tests.products.test_products_api import PUBLIC, health
from tests.web.pages import browse_as

__all__ = ["health"]


async def test_propose_approve_and_withdraw_on_the_web(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _ = await stewards(app, client)
    pid = await product(client, first, health)
    dr = await product(client, first, health, slug="secret", label={**PUBLIC, "level": "DR"})
    csrf = await browse_as(client, "steward")
    page = await client.get("/donnees/publications")
    assert page.status_code == 200 and "Proposer une publication" in page.text
    form = {"csrf_token": csrf, "slug": "lits", "title": "Lits", "columns": "hopital, lits"}
    refused = await client.post("/donnees/publications", data={**form, "product_id": dr})
    assert refused.status_code == 422 and "marqué DR" in refused.text
    made = await client.post("/donnees/publications", data={**form, "product_id": pid})
    assert made.status_code == 303, made.text
    listed = await client.get("/donnees/publications")
    pub = re.search(r"/donnees/publications/([0-9a-f-]{36})/withdraw", listed.text)
    assert pub is not None and "Approuver" not in listed.text  # not for the proposer

    second = AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver")
    async with second:
        token = await browse_as(second, "steward2")
        approved = await second.post(
            f"/donnees/publications/{pub.group(1)}/approve", data={"csrf_token": token}
        )
        assert approved.status_code == 303, approved.text
    assert (await client.get("/opendata/api/datasets/lits")).status_code == 200
    empty = await client.post(
        f"/donnees/publications/{pub.group(1)}/withdraw", data={"csrf_token": csrf}
    )
    assert empty.status_code == 422 and "raison" in empty.text
    gone = await client.post(
        f"/donnees/publications/{pub.group(1)}/withdraw",
        data={"csrf_token": csrf, "reason": "Erreur"},
    )
    assert gone.status_code == 303
    assert (await client.get("/opendata/api/datasets/lits")).status_code == 410
