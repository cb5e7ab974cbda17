"""The space editor's pages (docs/adr/0044): only editors open it; it offers the products the
officer may read with only the fields they may read; the preview renders an unsaved module as
the officer, a hidden product's exactly as a missing one's; the sharing is saved through the
API (organisations, personal)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import officer
from tests.spaces.test_spaces_api import PUBLIC, SANTE_ONLY, module, product
from tests.web.conftest import Browser
from tests.web.pages import browse_as

DOCUMENT = re.compile(r"data-document='([^']*)'")
CHOICES = re.compile(r"data-choices='([^']*)'")


def unescape(raw: str) -> Any:
    for entity, char in (("&#34;", '"'), ("&#39;", "'"), ("&lt;", "<"), ("&gt;", ">")):
        raw = raw.replace(entity, char)
    return json.loads(raw.replace("&amp;", "&"))


async def space(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/spaces", json={"title": "PC", **body}, headers=headers)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


async def preview(http: AsyncClient, csrf: str, sid: str, body: dict[str, Any]) -> Any:
    return await http.post(
        f"/espaces/{sid}/apercu",
        data={"module": json.dumps(body)},
        headers={"X-CSRF-Token": csrf},
    )


async def test_only_editors_open_the_editor_and_it_offers_what_they_may_read(
    app: FastAPI, client: AsyncClient, new_client: Browser
) -> None:
    chef = await officer(app, client, "chef", "PREF", roles=(Role.WATCH_OFFICER,))
    steward = await officer(app, client, "gestion", "SANTE", roles=(Role.DATA_STEWARD,))
    await officer(app, client, "prefet", "PREF", roles=(Role.AUTHORITY,))
    secret = await product(client, steward, SANTE_ONLY)
    open_ = await product(client, steward, PUBLIC)
    made = await space(client, chef)
    assert made["can_edit"]

    http = await new_client()
    await browse_as(http, "chef")
    page = await http.get(f"/espaces/{made['id']}/modifier")
    assert page.status_code == 200, page.text[:500]
    found = DOCUMENT.search(page.text)
    choices_found = CHOICES.search(page.text)
    assert found and choices_found
    document, choices = unescape(found.group(1)), unescape(choices_found.group(1))
    assert document["etag"] == f'"{made["id"]}.1"'
    assert document["ownOrganisation"] == "PREF"
    assert [p["id"] for p in choices["products"]] == [open_]  # the health-only one: not offered
    assert secret not in page.text
    assert {f["name"] for f in choices["products"][0]["fields"]} >= {"hopital", "lits"}
    names = [k["name"] for k in choices["palette"]]
    assert names == [
        "Fil de la main courante",
        "Carte",
        "Tableau d'un produit",
        "Graphique",
        "Chiffre clé",
        "Texte",
        "Liens et documents",
        "Formulaire",
        "Dernier point de situation",
        "Situations",
    ]
    assert 'id="partage-SANTE"' in page.text
    view = await http.get(f"/espaces/{made['id']}")
    assert f'href="/espaces/{made["id"]}/modifier"' in view.text

    reader = await new_client()
    await browse_as(reader, "prefet")
    assert (await reader.get(f"/espaces/{made['id']}")).status_code == 200
    refused = await reader.get(f"/espaces/{made['id']}/modifier")
    assert refused.status_code == 403
    assert "pas le modifier" in refused.text
    missing = await http.get(f"/espaces/{uuid.uuid4()}/modifier")
    assert missing.status_code == 404


async def test_the_preview_reads_as_the_officer_and_hides_alike(
    app: FastAPI, client: AsyncClient, new_client: Browser
) -> None:
    chef = await officer(app, client, "chef", "PREF", roles=(Role.WATCH_OFFICER,))
    steward = await officer(app, client, "gestion", "SANTE", roles=(Role.DATA_STEWARD,))
    secret = await product(client, steward, SANTE_ONLY)
    open_ = await product(client, steward, PUBLIC)
    made = await space(client, chef)
    http = await new_client()
    csrf = await browse_as(http, "chef")

    shown = await preview(
        http,
        csrf,
        made["id"],
        module("chiffre", "kpi", source="product", product_id=open_, measure="sum:lits"),
    )
    assert shown.status_code == 200, shown.text
    assert '<span class="hv-kpi__value">152</span>' in shown.text  # 40 + 12 + 30 + 20 + 50

    def body(answer: Any) -> str:
        found = re.search(r'<div class="hv-module__body".*</div>', answer.text, re.S)
        assert found, answer.text
        return found.group(0)

    hidden = await preview(http, csrf, made["id"], module("t", "table", product_id=secret))
    gone = await preview(http, csrf, made["id"], module("t", "table", product_id=str(uuid.uuid4())))
    assert hidden.status_code == gone.status_code == 200
    assert body(hidden) == body(gone)
    assert "pas disponible pour vous" in body(hidden)

    wrong = await preview(http, csrf, made["id"], module("f", "feed", limit=500))
    assert wrong.status_code == 200
    assert "modules[0].config.limit" in wrong.text
    broken = await http.post(
        f"/espaces/{made['id']}/apercu", data={"module": "{"}, headers={"X-CSRF-Token": csrf}
    )
    assert broken.status_code == 200
    assert "incompl" in broken.text
    forged = await http.post(f"/espaces/{made['id']}/apercu", data={"module": "{}"})
    assert forged.status_code == 403
    # the preview saves nothing
    stored = await client.get(f"/api/v1/spaces/{made['id']}", headers=chef)
    assert stored.json()["modules"] == [] and stored.json()["version"] == 1


async def test_sharing_and_personal_are_saved_as_a_version(
    app: FastAPI, client: AsyncClient
) -> None:
    chef = await officer(app, client, "chef", "PREF", roles=(Role.WATCH_OFFICER,))
    other = await officer(app, client, "adjoint", "PREF", roles=(Role.OFFICER,))
    await officer(app, client, "medecin", "SANTE", roles=(Role.OFFICER,))
    made = await space(client, chef)
    etag = f'"{made["id"]}.1"'
    shared = await client.patch(
        f"/api/v1/spaces/{made['id']}",
        json={"label": {"level": "NP", "audience": ["PREF", "SANTE"]}, "personal": True},
        headers={**chef, "If-Match": etag},
    )
    assert shared.status_code == 200, shared.text
    assert shared.json()["label"]["audience"] == ["PREF", "SANTE"]
    assert shared.json()["owner"] == "chef" and shared.json()["version"] == 2
    # someone else's personal space: not theirs to give back
    taken = await client.patch(
        f"/api/v1/spaces/{made['id']}",
        json={"personal": False},
        headers={**other, "If-Match": f'"{made["id"]}.2"'},
    )
    assert taken.status_code in (403, 404), taken.text
    back = await client.patch(
        f"/api/v1/spaces/{made['id']}",
        json={"personal": False},
        headers={**chef, "If-Match": f'"{made["id"]}.2"'},
    )
    assert back.status_code == 200 and back.json()["owner"] is None
