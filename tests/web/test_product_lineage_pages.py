"""A product's lineage and version comparison on the web (both engines): the page lists the
sources and uses the reader may know of as links; "Compare with the previous one" shows
the rows added, removed and changed, never a column the rules hide."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in
from tests.products.test_derived_api import CSV_2, derive, per_department
from tests.products.test_products_api import upload
from tests.web.conftest import Browser
from tests.web.pages import browse_as
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with test_product_pages


async def test_lineage_lists_sources_and_uses(
    app: FastAPI, client: AsyncClient, new_client: Browser, product: str
) -> None:
    steward = await sign_in(client, "steward")
    made = await derive(client, steward, per_department(product))
    assert made.status_code == 201, made.text
    derived = made.json()["id"]
    browser = await new_client()
    await browse_as(browser, "steward")
    page = await browser.get(f"/donnees/{product}")
    assert page.status_code == 200
    assert 'id="lignage"' in page.text and f'href="/donnees/{derived}"' in page.text
    page = await browser.get(f"/donnees/{derived}")
    assert f'href="/donnees/{product}"' in page.text and "Ce produit est dérivé" in page.text
    # The prefect may not know of the derived product (released to SANTE): no trace of it.
    prefect = await new_client()
    await browse_as(prefect, "prefet")
    page = await prefect.get(f"/donnees/{product}")
    assert derived not in page.text and "Lits par département" not in page.text


async def test_compare_with_the_previous_version(
    client: AsyncClient, new_client: Browser, product: str
) -> None:
    steward = await sign_in(client, "steward")
    assert (await upload(client, steward, product, CSV_2)).status_code == 201
    browser = await new_client()
    await browse_as(browser, "prefet")
    page = await browser.get(f"/donnees/{product}")
    link = f'href="/donnees/{product}/comparer?de=1&amp;a=2"'
    assert link in page.text and "Comparer avec la précédente" in page.text
    page = await browser.get(f"/donnees/{product}/comparer", params={"de": 1, "a": 2})
    assert page.status_code == 200, page.text
    assert 'id="table-differences"' in page.text
    assert "Delafontaine" in page.text and "Ligne supprimée" in page.text
    assert "patients" not in page.text  # hidden from the prefect, even as "changed"
    bad = await browser.get(f"/donnees/{product}/comparer", params={"de": 1, "a": 9})
    assert bad.status_code == 422
    missing = await browser.get(
        "/donnees/00000000-0000-4000-8000-000000000000/comparer", params={"de": 1, "a": 2}
    )
    assert missing.status_code == 404


async def test_a_second_steward_releases_a_withheld_derived_product(
    app: FastAPI, client: AsyncClient, new_client: Browser, product: str
) -> None:
    """Its author sees it wait; a second steward of the domain releases it with one button;
    a reader is refused its page until then, and reads it after."""
    await make_user(app, "steward2", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    steward = await sign_in(client, "steward")
    everyone = {"level": "NP", "need_to_know": [], "audience": []}
    made = await derive(client, steward, per_department(product), label=everyone)
    assert made.status_code == 201, made.text
    derived = made.json()["id"]
    author = await new_client()
    await browse_as(author, "steward")
    page = await author.get(f"/donnees/{derived}")
    assert 'id="lignage-attente"' in page.text and 'id="lignage-publier"' not in page.text
    reader = await new_client()
    await browse_as(reader, "prefet")
    refused = await reader.get(f"/donnees/{derived}")
    assert refused.status_code == 403 and "second gestionnaire" in refused.text

    second = await new_client()
    csrf = await browse_as(second, "steward2")
    page = await second.get(f"/donnees/{derived}")
    assert 'id="lignage-publier"' in page.text
    done = await second.post(f"/donnees/{derived}/publier", data={"csrf_token": csrf})
    assert done.status_code == 303, done.text
    page = await second.get(done.headers["location"])
    assert 'id="lignage-attente"' not in page.text
    assert (await reader.get(f"/donnees/{derived}")).status_code == 200
