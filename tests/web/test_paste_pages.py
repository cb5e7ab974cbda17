"""Paste from a spreadsheet on a product's page (both engines): tab-separated cells with
French decimals and headers by title are previewed as the schema reads them, then imported
as a new data version; bad cells are listed and nothing is written; only stewards paste."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import sign_in
from tests.web.pages import browse_as
from tests.web.test_product_pages import product

__all__ = ["product"]

# As Excel copies cells: tabs, decimal commas; "taux" by its name, the others too.
CELLS = (
    "hopital\tdepartement\tservice\tlits\tpatients\ttaux\r\n"
    "Cochin\t75\tUrgences\t25\t5\t0,2\r\n"
    "Beaujon\t92\tRéanimation\t14\t12\t0,857\r\n"
)


async def test_a_steward_previews_then_imports_pasted_cells(
    app: FastAPI, client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    assert f'action="/donnees/{product}/coller#coller"' in page.text
    seen = await client.post(
        f"/donnees/{product}/coller",
        data={"csrf_token": csrf, "cells": CELLS, "mode": "upsert", "action": "preview"},
    )
    assert seen.status_code == 200, seen.text
    assert "2 lignes lues" in seen.text and 'id="coller-apercu"' in seen.text
    assert re.search(r"<td>Beaujon</td><td>92</td><td>Réanimation</td><td>14</td><td>12</td>"
                     r"<td>0,857</td>", seen.text)  # fmt: skip
    assert '<option value="upsert" selected>' in seen.text
    steward = await sign_in(client, "steward")
    before = (await client.get(f"/api/v1/products/{product}", headers=steward)).json()
    assert before["data_version"] == 1  # a preview writes nothing

    done = await client.post(
        f"/donnees/{product}/coller",
        data={"csrf_token": csrf, "cells": CELLS, "mode": "upsert", "action": "import"},
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/donnees/{product}?importee=2#import-fait"
    after = (await client.get(f"/api/v1/products/{product}", headers=steward)).json()
    assert (after["data_version"], after["row_count"]) == (2, 7)
    rows = await client.get(
        f"/api/v1/products/{product}/rows", params={"filter": "hopital:eq:Beaujon"},
        headers=steward,
    )  # fmt: skip
    assert rows.json()["rows"][0]["taux"] == 0.857
    versions = (await client.get(f"/api/v1/products/{product}/versions", headers=steward)).json()
    assert versions[0]["source"]["filename"] == "collage.tsv"


async def test_bad_cells_an_empty_paste_and_strangers(client: AsyncClient, product: str) -> None:
    csrf = await browse_as(client, "steward")
    bad = CELLS.replace("\t14\t", "\tquatorze\t")
    refused = await client.post(
        f"/donnees/{product}/coller",
        data={"csrf_token": csrf, "cells": bad, "mode": "append", "action": "import"},
    )
    assert refused.status_code == 422
    assert 'id="coller-erreur"' in refused.text and "rien n&#39;est importé" in refused.text
    assert re.search(r"<tr><td>3</td><td>lits</td><td>[^<]+quatorze", refused.text)
    assert "quatorze" in refused.text.split('id="coller-cellules"')[1]  # the text is kept
    preview = await client.post(
        f"/donnees/{product}/coller",
        data={"csrf_token": csrf, "cells": bad, "action": "preview"},
    )
    assert preview.status_code == 200 and "1 erreur" in preview.text
    empty = await client.post(
        f"/donnees/{product}/coller", data={"csrf_token": csrf, "cells": "  ", "action": "import"}
    )
    assert empty.status_code == 422 and "Collez d&#39;abord" in empty.text

    steward = await sign_in(client, "steward")
    assert (await client.get(f"/api/v1/products/{product}", headers=steward)).json()[
        "data_version"
    ] == 1
    csrf = await browse_as(client, "prefet")
    stranger = await client.post(
        f"/donnees/{product}/coller",
        data={"csrf_token": csrf, "cells": CELLS, "action": "import"},
    )
    assert stranger.status_code == 403
    page = await client.get(f"/donnees/{product}")
    assert "/coller" not in page.text
