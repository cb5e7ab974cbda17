"""The import wizard (both engines): a file's first rows with each column matched to a field
(by name, then by title), another mapping chosen by the steward, the import with it; a refused
file keeps the preview and the file; only its sender, for that product, may import it."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient, Response

from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in
from tests.web.pages import browse_as, form_fields
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with the product pages' tests

# "Lits" matches the field lits by name; "Taux d'occupation" no field: ignored by default.
FILE = (
    "Hôpital;Département;Service;Lits;Patients;Taux d'occupation\n"
    "Bichat;75;Urgences;41;35;0,875\n"
    "Cochin;75;Urgences;22;20;0,9\n"
).encode()


async def _preview(client: AsyncClient, csrf: str, pid: str, data: bytes) -> Response:
    return await client.post(
        f"/donnees/{pid}/import/apercu",
        data={"csrf_token": csrf, "mode": "replace"},
        files={"file": ("lits.csv", data, "text/csv")},
    )


async def test_preview_map_and_import(client: AsyncClient, product: str) -> None:
    csrf = await browse_as(client, "steward")
    shown = await _preview(client, csrf, product, FILE)
    assert shown.status_code == 200, shown.text
    fields = dict(form_fields(shown, "import-apercu"))
    assert fields["colonne_0"] == "hopital" and fields["colonne_3"] == "lits"
    assert fields["colonne_5"] == ""  # no field of that name or title
    assert "Cochin" in shown.text
    fields["colonne_5"] = "taux"  # the steward maps it
    done = await client.post(f"/donnees/{product}/import/confirmer", data=fields)
    assert done.status_code == 303, done.text
    headers = await sign_in(client, "steward")
    rows = (await client.get(f"/api/v1/products/{product}/rows", headers=headers)).json()["rows"]
    assert {(r["hopital"], r["lits"], r["taux"]) for r in rows} == {
        ("Bichat", 41, 0.875), ("Cochin", 22, 0.9)}  # fmt: skip
    again = await client.post(f"/donnees/{product}/import/confirmer", data=fields)
    assert again.status_code == 404  # the file went with its import


async def test_a_refused_file_keeps_its_preview(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    bad = FILE.replace(b";41;", b";quarante;")
    shown = await _preview(client, csrf, product, bad)
    fields = dict(form_fields(shown, "import-apercu"))
    refused = await client.post(f"/donnees/{product}/import/confirmer", data=fields)
    assert refused.status_code == 422, refused.text
    assert 'id="import-erreur"' in refused.text and "quarante" in refused.text
    assert 'name="token"' in refused.text  # the same preview, to map again

    # Another steward of the domain cannot use this preview; nor can a reader.
    await make_user(app, "steward2", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR",
                    groups=["MEDICAL"])  # fmt: skip
    other = await browse_as(client, "steward2")
    stolen = await client.post(
        f"/donnees/{product}/import/confirmer", data={**fields, "csrf_token": other}
    )
    assert stolen.status_code == 404
    token = re.search(r'name="token" value="([0-9a-f]+)"', refused.text)
    assert token and len(token.group(1)) == 32


async def test_an_unreadable_file_is_refused_on_the_product_page(
    client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    refused = await _preview(client, csrf, product, b"")
    assert refused.status_code == 422
    assert 'id="import-erreur"' in refused.text
    assert "vide" in refused.text
