"""Defining a derived product on the web (both engines): a steward chooses the sources (a GET:
no JavaScript needed), then the computation among the fields they may read; the product is
created with its rows computed; readers may not; a refusal says why in French, keeps every
value and creates nothing; a field another domain's rules hide is never offered."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from hypervision.policy.roles import Role
from hypervision.products.models import DataProduct
from tests.factories import make_user, sign_in, tx
from tests.products.test_derived_api import DEPARTMENTS
from tests.products.test_products_api import upload
from tests.web.pages import browse_as, csrf_of, form_fields
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with the product pages' tests

GROUPED = {
    "shape": "groups",
    "group_0": "a.departement",
    "filter_field_0": "a.service",
    "filter_op_0": "ne",
    "filter_value_0": "Réanimation",
    "measure_fn_0": "sum",
    "measure_field_0": "a.lits",
    "measure_name_0": "Lits",
    "measure_fn_1": "count",
    "measure_name_1": "services",
}


def _set(fields: list[tuple[str, str]], **changes: str) -> dict[str, list[str]]:
    """The form's fields with some changed, as httpx sends repeated fields."""
    sent: dict[str, list[str]] = {}
    for name, value in [(k, v) for k, v in fields if k not in changes] + list(changes.items()):
        sent.setdefault(name, []).append(value)
    return sent


async def _step_two(client: AsyncClient, **query: str) -> Response:
    page = await client.get("/donnees/deriver", params=query)
    assert page.status_code == 200, page.text
    assert 'id="derive-formulaire"' in page.text
    return page


async def _products(app: FastAPI) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(DataProduct)) or 0)


async def _rows(client: AsyncClient, pid: str) -> list[dict[str, Any]]:
    headers = await sign_in(client, "steward")
    answer = await client.get(f"/api/v1/products/{pid}/rows", headers=headers)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["rows"]
    return rows


async def test_a_steward_creates_a_grouped_product_through_the_form(
    client: AsyncClient, product: str
) -> None:
    await browse_as(client, "steward")
    catalogue = await client.get("/donnees")
    assert 'href="/donnees/deriver" id="lien-deriver"' in catalogue.text
    first = await client.get("/donnees/deriver")
    assert first.status_code == 200, first.text
    assert 'id="derive-etape1"' in first.text and f'value="{product}"' in first.text
    assert 'id="derive-formulaire"' not in first.text

    # Step 1 sent as a plain GET (no JavaScript): step 2 offers the source's fields.
    page = await _step_two(client, source=product, source2="", name="Lits par département")
    assert 'value="a.lits"' in page.text and 'value="a.departement"' in page.text
    assert 'value="Lits par département"' in page.text
    assert '<option value="le">est au plus</option>' in page.text  # tests in words
    fields = form_fields(page, "derive-formulaire")
    assert ("column", "a.hopital") in fields  # the first source's columns ticked at first
    done = await client.post("/donnees/deriver", data=_set(fields, **GROUPED))
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    shown = await client.get(location)
    assert shown.status_code == 200 and "Lits par département" in shown.text
    assert "Ce produit est dérivé" in shown.text

    derived = location.removeprefix("/donnees/")
    headers = await sign_in(client, "steward")
    made = (await client.get(f"/api/v1/products/{derived}", headers=headers)).json()
    assert made["slug"] == "lits-par-departement"  # made from the name
    assert made["label"]["audience"] == ["SANTE"]  # the least label over a public source
    rows = await _rows(client, derived)
    # Own domain: read whole (SAMU rows included); Delafontaine's Réanimation filtered out.
    assert [(r["departement"], r["lits"], r["services"]) for r in rows] == [
        ("75", 102, 3), ("93", 30, 1),
    ]  # fmt: skip


async def test_a_reader_may_not_derive(client: AsyncClient, product: str) -> None:
    csrf = await browse_as(client, "prefet")
    assert 'id="lien-deriver"' not in (await client.get("/donnees")).text
    page = await client.get("/donnees/deriver")
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    refused = await client.post(
        "/donnees/deriver", data={"csrf_token": csrf, "source": product, "name": "X", **GROUPED}
    )
    assert refused.status_code == 403


async def test_a_bad_definition_is_refused_in_words_and_creates_nothing(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    await browse_as(client, "steward")
    page = await _step_two(client, source=product, name="Lits par département")
    fields = form_fields(page, "derive-formulaire")
    before = await _products(app)

    unnamed = await client.post(
        "/donnees/deriver", data=_set(fields, **{**GROUPED, "measure_name_0": ""})
    )
    assert unnamed.status_code == 422, unnamed.text
    assert 'id="derive-erreur"' in unnamed.text
    assert "Calcul 1 : donnez un nom à la colonne du résultat." in unnamed.text
    assert 'id="measure-name-0" name="measure_name_0" maxlength="63" value="" aria-invalid' in (
        unnamed.text
    )
    kept = dict(form_fields(unnamed, "derive-formulaire"))  # every value as it was sent
    assert kept["group_0"] == "a.departement" and kept["measure_field_0"] == "a.lits"
    assert kept["filter_value_0"] == "Réanimation" and kept["name"] == "Lits par département"

    text_sum = await client.post(
        "/donnees/deriver",
        data=_set(fields, **{**GROUPED, "measure_field_0": "a.service"}),
    )
    assert text_sum.status_code == 422, text_sum.text
    assert "« sum » demande un champ numérique" in text_sum.text
    assert 'href="#measure-field-0"' in text_sum.text
    clash = await client.post(
        "/donnees/deriver", data=_set(fields, **{**GROUPED, "measure_name_0": "Département"})
    )
    assert clash.status_code == 422 and "noms de colonne en double : departement" in clash.text
    assert 'href="#measure-name-0"' in clash.text
    assert await _products(app) == before  # nothing half-made

    # The identifier is taken: 409, the form back with the identifier to change.
    made = await client.post("/donnees/deriver", data=_set(fields, **GROUPED))
    assert made.status_code == 303, made.text
    again = await client.post("/donnees/deriver", data=_set(fields, **GROUPED))
    assert again.status_code == 409, again.text
    assert "L&#39;identifiant « lits-par-departement » est déjà pris." in again.text
    assert 'href="#derive-slug"' in again.text
    assert dict(form_fields(again, "derive-formulaire"))["slug"] == "lits-par-departement"
    assert await _products(app) == before + 1


async def test_a_field_hidden_by_another_domains_rules_is_not_offered(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    """The health product hides « patients » from readers outside MEDICAL: the prefecture's
    steward is not offered it, and cannot send it either."""
    await make_user(app, "pref-steward", "PREF", roles=[Role.DATA_STEWARD], clearance="DR")
    await browse_as(client, "pref-steward")
    page = await _step_two(client, source=product, name="Hôpitaux")
    assert 'value="a.lits"' in page.text
    assert "a.patients" not in page.text and ">patients<" not in page.text
    fields = form_fields(page, "derive-formulaire")
    before = await _products(app)
    forged = await client.post(
        "/donnees/deriver",
        data=_set(fields, **{**GROUPED, "measure_field_0": "a.patients"}),
    )
    assert forged.status_code == 422, forged.text
    assert "ne vous est pas lisible" in forged.text and "a.patients" not in forged.text
    assert await _products(app) == before


async def test_two_sources_joined_on_a_shared_field(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    steward = await sign_in(client, "steward")
    body = {"slug": "departements", "name": "Départements", "table_schema": DEPARTMENTS,
            "label": {"level": "NP", "need_to_know": [], "audience": []}}  # fmt: skip
    made = await client.post("/api/v1/products", json=body, headers=steward)
    assert made.status_code == 201, made.text
    dep = made.json()["id"]
    csv = b"code;nom\n75;Paris\n92;Hauts-de-Seine\n"
    assert (await upload(client, steward, dep, csv, name="dep.csv")).status_code == 201
    await browse_as(client, "steward")
    page = await _step_two(client, source=product, source2=dep, name="Hôpitaux et départements")
    assert 'id="join-left-0"' in page.text and 'value="code"' in page.text
    assert "Nom du département — Départements" in page.text  # whose field it is
    fields = form_fields(page, "derive-formulaire")
    before = await _products(app)
    unmatched = await client.post("/donnees/deriver", data=_set(fields, join_how="left"))
    assert unmatched.status_code == 422
    assert "Choisissez au moins un champ commun" in unmatched.text
    assert await _products(app) == before
    chosen = {"join_how": "left", "join_left_0": "departement", "join_right_0": "code",
              "filter_field_0": "a.service", "filter_op_0": "eq",
              "filter_value_0": "Urgences"}  # fmt: skip
    sent = {k: v for k, v in _set(fields, **chosen).items() if k != "column"}
    sent["column"] = ["a.hopital", "b.nom", "a.lits"]
    done = await client.post("/donnees/deriver", data=sent)
    assert done.status_code == 303, done.text
    rows = await _rows(client, done.headers["location"].removeprefix("/donnees/"))
    assert [(r["hopital"], r["nom"], r["lits"]) for r in rows] == [
        ("Bichat", "Paris", 40), ("Avicenne", None, 30), ("Lariboisière", "Paris", 50),
    ]  # fmt: skip


async def test_an_unknown_source_is_asked_again(client: AsyncClient, product: str) -> None:
    await browse_as(client, "steward")
    page = await client.get(
        "/donnees/deriver", params={"source": "00000000-0000-4000-8000-000000000000"}
    )
    assert page.status_code == 422
    assert 'id="derive-etape1"' in page.text and "Produit source inconnu" in page.text
    assert 'aria-invalid="true"' in page.text
    same = await client.get("/donnees/deriver", params={"source": product, "source2": product})
    assert same.status_code == 422 and "deux produits différents" in same.text
    # Back to step 1 from step 2: the values are kept.
    back = await client.get(
        "/donnees/deriver", params={"etape": "1", "source": product, "name": "Lits"}
    )
    assert back.status_code == 200 and 'id="derive-etape1"' in back.text
    assert f'<option value="{product}" selected>' in back.text and 'value="Lits"' in back.text
    assert csrf_of(back)
