"""Data product pages over HTTP (both engines): the catalogue shows only what the reader may
know of; a product's page shows the rows and columns its rules let through, sorted, filtered
and paged; the stewards of its domain import files through a form, others may not."""

from __future__ import annotations

import html
import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_group, make_org, make_user, sign_in
from tests.products.test_products_api import CSV, create, upload
from tests.web.conftest import Browser
from tests.web.pages import browse_as

NEXT = re.compile(r'id="page-suivante" href="([^"]+)"')


@pytest.fixture
async def product(app: FastAPI, client: AsyncClient) -> str:
    """The hospital capacity product of SANTE (CSV imported), and a secret one beside it."""
    health = await make_org(app, "SANTE")
    await make_org(app, "ARS-IDF", parent="SANTE")
    await make_org(app, "PREF")
    await make_group(app, "MEDICAL")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR",
                    groups=["MEDICAL"])  # fmt: skip
    await make_user(app, "prefet", "PREF", clearance="DR")
    steward = await sign_in(client, "steward")
    created = await create(client, steward, str(health.id))
    assert created.status_code == 201, created.text
    pid: str = created.json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    secret = await create(
        client, steward, str(health.id), slug="lits-secrets", name="Lits secrets",
        label={"level": "DR", "need_to_know": ["MEDICAL"], "audience": []},
    )  # fmt: skip
    assert secret.status_code == 201, secret.text
    return pid


async def test_the_catalogue_lists_visible_products_and_searches(
    client: AsyncClient, new_client: Browser, product: str
) -> None:
    await browse_as(client, "prefet")
    page = await client.get("/donnees")
    assert page.status_code == 200, page.text
    assert "Capacité hospitalière" in page.text and "Lits secrets" not in page.text
    assert f'href="/donnees/{product}"' in page.text and "5 lignes" in page.text
    assert 'href="/donnees" aria-current="page"' in page.text  # the main navigation
    found = await client.get("/donnees", params={"q": "hopitaux"})
    assert "Capacité hospitalière" in found.text
    none = await client.get("/donnees", params={"q": "zzz"})
    assert "Capacité hospitalière" not in none.text and "Aucun produit" in none.text

    steward = await new_client()
    await browse_as(steward, "steward")
    both = await steward.get("/donnees")
    assert "Capacité hospitalière" in both.text and "Lits secrets" in both.text


async def test_the_product_page_shows_what_the_rules_let_through(
    client: AsyncClient, new_client: Browser, product: str
) -> None:
    await browse_as(client, "prefet")
    page = await client.get(f"/donnees/{product}")
    assert page.status_code == 200, page.text
    assert "Avicenne" in page.text and "Lariboisière" in page.text
    assert "SAMU" not in page.text  # a row rule: health organisations only
    assert "patients</" not in page.text  # a column rule: MEDICAL only (header, schema, filter)
    assert "Brouillon" in page.text and "Schéma" in page.text
    assert '/import"' not in page.text  # not a steward: no import form
    refused = await client.get(
        f"/donnees/{product}", params={"field": "patients", "op": "gt", "value": "5"}
    )
    assert refused.status_code == 422 and 'id="filtre-erreur"' in refused.text
    assert "patients" in refused.text and "Avicenne" in refused.text  # every row, the error
    filtered = await client.get(
        f"/donnees/{product}", params={"field": "hopital", "op": "eq", "value": "Bichat"}
    )
    assert "Bichat" in filtered.text and "Avicenne" not in filtered.text
    missing = await client.get("/donnees/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404

    steward = await new_client()
    await browse_as(steward, "steward")
    full = await steward.get(f"/donnees/{product}")
    assert "SAMU" in full.text and "<code>patients</code>" in full.text


async def test_sort_and_next_page(client: AsyncClient, product: str) -> None:
    rows = "".join(f"H{i:03};75;Urgences;{i};1;0,5\n" for i in range(1, 61))
    data = ("hopital;departement;service;lits;patients;taux\n" + rows).encode()
    steward = await sign_in(client, "steward")
    assert (await upload(client, steward, product, data)).status_code == 201
    await browse_as(client, "prefet")
    first = await client.get(f"/donnees/{product}", params={"sort": "-lits"})
    assert first.status_code == 200, first.text
    assert 'aria-sort="descending"' in first.text
    assert "H060" in first.text and "H011" in first.text and "H010" not in first.text
    assert first.text.index("H060") < first.text.index("H059")
    link = NEXT.search(first.text)
    assert link, "no next page link"
    second = await client.get(html.unescape(link.group(1)))
    assert second.status_code == 200, second.text
    assert "H010" in second.text and "H001" in second.text and "H011" not in second.text
    assert NEXT.search(second.text) is None


async def test_a_steward_imports_a_file_and_sees_a_refusal(
    client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    assert f'action="/donnees/{product}/import/apercu"' in page.text
    bad = CSV + "Cochin;75;Urgences;douze;3;0,5\n".encode("cp1252")
    refused = await client.post(
        f"/donnees/{product}/import",
        data={"csrf_token": csrf, "mode": "replace"},
        files={"file": ("capacite.csv", bad, "text/csv")},
    )
    assert refused.status_code == 422, refused.text
    assert 'id="import-erreur"' in refused.text
    assert re.search(r"<tr><td>7</td><td>lits</td><td>[^<]+</td></tr>", refused.text)
    change = b"hopital;departement;service;lits;patients;taux\nCochin;75;Urgences;25;5;0,2\n"
    done = await client.post(
        f"/donnees/{product}/import",
        data={"csrf_token": csrf, "mode": "append"},
        files={"file": ("cochin.csv", change, "text/csv")},
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/donnees/{product}?importee=2#import"
    after = await client.get(done.headers["location"])
    assert 'id="import-fait"' in after.text and "Version 2 importée" in after.text
    assert "Cochin" in after.text and "cochin.csv" in after.text


async def test_others_get_no_form_and_cannot_import(client: AsyncClient, product: str) -> None:
    csrf = await browse_as(client, "prefet")
    refused = await client.post(
        f"/donnees/{product}/import",
        data={"csrf_token": csrf, "mode": "append"},
        files={"file": ("capacite.csv", CSV, "text/csv")},
    )
    assert refused.status_code == 403
    steward = await sign_in(client, "steward")
    rows = await client.get(f"/api/v1/products/{product}", headers=steward)
    assert rows.json()["data_version"] == 1


async def test_a_steward_publishes_and_deprecates_and_anyone_exports(
    client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    assert 'name="status" value="active"' in page.text
    assert 'name="status" value="deprecated"' not in page.text  # a draft is published first
    assert f"/api/v1/products/{product}/export?format=csv" in page.text
    assert "format=geojson" not in page.text  # no geometry field
    published = await client.post(
        f"/donnees/{product}/statut", data={"csrf_token": csrf, "status": "active"}
    )
    assert published.status_code == 303, published.text
    page = await client.get(f"/donnees/{product}")
    assert 'name="status" value="deprecated"' in page.text
    refused = await client.post(
        f"/donnees/{product}/statut", data={"csrf_token": csrf, "status": "draft"}
    )
    assert refused.status_code == 409 and 'id="statut-erreur"' in refused.text
    steward = await sign_in(client, "steward")
    product_read = await client.get(f"/api/v1/products/{product}", headers=steward)
    assert product_read.json()["status"] == "active"

    csrf = await browse_as(client, "prefet")
    page = await client.get(f"/donnees/{product}")
    assert 'name="status"' not in page.text
    assert f"/api/v1/products/{product}/export?format=csv" in page.text
    denied = await client.post(
        f"/donnees/{product}/statut", data={"csrf_token": csrf, "status": "deprecated"}
    )
    assert denied.status_code == 403
    sheet = await client.get(f"/api/v1/products/{product}/export?format=csv")
    assert sheet.status_code == 200 and "SAMU" not in sheet.text  # the prefect's rows
