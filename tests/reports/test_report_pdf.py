"""A space's report on demand, on both engines: each reader's PDF holds only what they may
read, marked at the highest level it holds; a hidden module is the page's placeholder; a
selection of modules; bad input answered in French; audited as ``space.report``."""

from __future__ import annotations

import io

from fastapi import FastAPI
from httpx import AsyncClient
from pypdf import PdfReader
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from tests.factories import officer, tx
from tests.reports.helpers import (
    DR_TITLE,
    HOSPITALS,
    MARKING,
    NP_TITLE,
    PLACEHOLDER,
    crisis,
)
from tests.synthesis.helpers import pages_text, squeezed
from tests.web.conftest import Browser, new_client  # noqa: F401 - the browsers fixture
from tests.web.pages import browse_as


async def report(client: AsyncClient, headers: dict[str, str], sid: str, query: str = "") -> bytes:
    got = await client.get(f"/api/v1/spaces/{sid}/report.pdf{query}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    return got.content


async def test_each_reader_gets_what_they_may_read_marked_for_it(
    app: FastAPI, client: AsyncClient
) -> None:
    room = await crisis(app, client)

    low = await report(client, room.voisin, room.space_id)
    text = " ".join(pages_text(low))
    assert "Cellule transport et santé" in text and "RAPPORT D'ESPACE" in text
    assert NP_TITLE in text and DR_TITLE not in text
    assert PLACEHOLDER in text  # the product released to SANTE only: the page's placeholder
    assert not any(h in text for h in HOSPITALS)
    assert "Consignes" in text and "Rester joignable" in text
    assert squeezed(MARKING) not in squeezed(text)  # NP only: no marking
    assert "Seuil : seuil de vigilance atteint" in text  # one entry: past the warning at 1
    assert "48.8984, 2.3601" in text.replace("48,8984", "48.8984")  # the map as located entries

    high = await report(client, room.medecin, room.space_id)
    pages = pages_text(high)
    assert all("DIFFUSIONRESTREINTE" in squeezed(p) for p in pages)  # every page is marked
    whole = " ".join(pages)
    assert NP_TITLE in whole and DR_TITLE in whole
    assert all(h in whole for h in HOSPITALS) and PLACEHOLDER not in whole
    assert "Seuil : seuil de vigilance atteint" in whole  # two entries: still below 5
    reader = PdfReader(io.BytesIO(high))
    assert reader.metadata is not None and reader.metadata.title == "Cellule transport et santé"
    assert "Destinataire" in whole  # the reader's name in every page's margin

    async with tx(app) as session:
        audits = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "space.report"))
        )
    assert len(audits) == 2
    assert {tuple(a.labels) for a in audits} == {("NP",), ("NP", "DR")}


async def test_a_selection_of_modules_and_bad_input(app: FastAPI, client: AsyncClient) -> None:
    room = await crisis(app, client, label={"level": "NP", "audience": ["PREF"]})
    only = " ".join(pages_text(await report(client, room.chef, room.space_id, "?module=note")))
    assert "Consignes" in only and NP_TITLE not in only and "une sélection de modules" in only

    unknown = await client.get(
        f"/api/v1/spaces/{room.space_id}/report.pdf?module=note&module=inconnu", headers=room.chef
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["message"] == "Module inconnu dans cet espace : inconnu."

    # SANTE may not read a PREF space: 404, as for a space that does not exist
    hidden = await client.get(f"/api/v1/spaces/{room.space_id}/report.pdf", headers=room.medecin)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["message"] == "Espace introuvable."
    other = await officer(app, client, "autre", "SDIS")
    assert (
        await client.get("/api/v1/spaces/not-an-id/report.pdf", headers=other)
    ).status_code == 422


async def test_the_space_page_links_to_its_report(
    app: FastAPI,
    client: AsyncClient,
    new_client: Browser,  # noqa: F811
) -> None:
    room = await crisis(app, client)
    browser = await new_client()
    await browse_as(browser, "voisin")
    page = await browser.get(f"/espaces/{room.space_id}")
    assert page.status_code == 200
    href = f'href="/api/v1/spaces/{room.space_id}/report.pdf" id="rapport-espace">Rapport PDF<'
    assert href in page.text
    printed = await browser.get(f"/api/v1/spaces/{room.space_id}/report.pdf")
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert DR_TITLE not in " ".join(pages_text(printed.content))
