"""Editing a small product's rows on the web (both engines): a steward changes a cell or adds
a row, each a new data version; a wrong value is named beside its field and nothing changes;
readers, and stewards from whom the rules hide a column, get no edit form."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in
from tests.web.pages import browse_as, form_fields
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with the product pages' tests

EDIT = re.compile(r'href="(/donnees/[0-9a-f-]+/ligne\?[^"]+)"')


async def _rows(client: AsyncClient, pid: str) -> dict[tuple[str, str], dict[str, Any]]:
    headers = await sign_in(client, "steward")
    answer = await client.get(f"/api/v1/products/{pid}/rows", headers=headers)
    assert answer.status_code == 200, answer.text
    return {(r["hopital"], r["service"]): r for r in answer.json()["rows"]}


def _sent(fields: list[tuple[str, str]], **changes: str) -> dict[str, str]:
    return {**dict(fields), **changes}


async def test_a_steward_changes_a_cell_and_adds_a_row(client: AsyncClient, product: str) -> None:
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    links = [html.unescape(u) for u in EDIT.findall(page.text)]
    bichat = next(u for u in links if "hopital=Bichat" in u and "service=Urgences" in u)
    form = await client.get(bichat)
    assert form.status_code == 200, form.text
    fields = form_fields(form, "ligne-formulaire")
    assert ("f_lits", "40") in fields and ("f_taux", "0,875") in fields
    assert 'name="f_hopital" value="Bichat" readonly' in form.text  # the key is not edited
    saved = await client.post(f"/donnees/{product}/ligne", data=_sent(fields, f_lits="45"))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("?importee=2#import")
    rows = await _rows(client, product)
    assert rows["Bichat", "Urgences"]["lits"] == 45 and rows["Bichat", "Urgences"]["taux"] == 0.875
    assert len(rows) == 5
    back = await client.get(saved.headers["location"])
    assert "Version 2 importée : 0 ajoutée(s), 1 modifiée(s), 0 supprimée(s)" in back.text

    blank = await client.get(f"/donnees/{product}/ligne", params={"nouvelle": "1"})
    added = _sent(form_fields(blank, "ligne-formulaire"), f_hopital="Cochin", f_service="Urgences",
                  f_departement="75", f_lits="22", f_taux="0,5")  # fmt: skip
    created = await client.post(f"/donnees/{product}/ligne", data=added)
    assert created.status_code == 303, created.text
    assert (await _rows(client, product))["Cochin", "Urgences"]["lits"] == 22
    again = await client.post(f"/donnees/{product}/ligne", data=added)
    assert again.status_code in (409, 422), again.text  # its key is taken: nothing written
    assert len(await _rows(client, product)) == 6


async def test_a_wrong_value_is_named_beside_its_field(client: AsyncClient, product: str) -> None:
    before = await _rows(client, product)
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    link = html.unescape(EDIT.findall(page.text)[0])
    fields = form_fields(await client.get(link), "ligne-formulaire")
    refused = await client.post(f"/donnees/{product}/ligne", data=_sent(fields, f_lits="douze"))
    assert refused.status_code == 422, refused.text
    assert 'id="ligne-erreur"' in refused.text and "fr-input-group--error" in refused.text
    assert 'value="douze"' in refused.text  # kept as typed
    assert await _rows(client, product) == before


async def test_readers_and_stewards_missing_a_column_get_no_form(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    await browse_as(client, "prefet")
    page = await client.get(f"/donnees/{product}")
    assert not EDIT.search(page.text) and 'id="ajouter-ligne"' not in page.text
    asked = await client.get(f"/donnees/{product}/ligne", params={"nouvelle": "1"})
    assert asked.status_code == 403

    # A steward of the domain outside MEDICAL: the rules hide "patients" from them.
    await make_user(app, "steward3", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    await browse_as(client, "steward3")
    page = await client.get(f"/donnees/{product}")
    assert not EDIT.search(page.text)
    asked = await client.get(f"/donnees/{product}/ligne", params={"nouvelle": "1"})
    assert asked.status_code == 409 and "masquées" in asked.text
