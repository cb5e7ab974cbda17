"""The PDF opened with pypdf: the protection marking at the top and bottom of every page, the
watermark naming its reader on every page, the metadata; and nothing above the reader's
clearance in it (an NP reader never gets a DR synthesis, nor a DR entry in an NP one)."""

from __future__ import annotations

import io
import re

from fastapi import FastAPI
from httpx import AsyncClient
from pypdf import PdfReader

from tests.synthesis.helpers import MARKING, RESTRICTED, Room, pages_text, squeezed

WATERMARK = r"{name} — \d\d/\d\d/\d{{4}} \d\d:\d\d"  # "<reader> — dd/mm/yyyy hh:mm"


async def test_restricted_pdf_is_marked_and_watermarked_on_every_page(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    secret = await room.entry("antoine", "Renseignement sur un rassemblement", label=RESTRICTED)
    for n in range(12):  # enough rows for the entries table to run over a page
        await room.entry("antoine", f"Bouchon numéro {n} porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de situation de 19 h"))["id"]
    await room.sent("claire", "marc", sid, users=["prefet"])
    data = await room.pdf("prefet", sid)

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 3  # cover, figures and map, narrative and entries
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "Point de situation de 19 h"
    assert meta.author == "Claire Dubois (CNCS)"  # the name, not the login
    assert meta.subject is not None and MARKING in meta.subject
    pages = pages_text(data)
    watermark = re.compile(WATERMARK.format(name="Hélène Préfète"))
    for number, text in enumerate(pages, start=1):
        assert squeezed(text).count(squeezed(MARKING)) >= 2, (number, text)  # top and bottom
        assert watermark.search(text), (number, text)
        assert "Destinataire : Hélène Préfète" in text
        assert f"page {number} / {len(pages)}" in text
    everything = " ".join(pages)
    assert secret["title"] in everything  # the prefect is cleared DR: the entry is in it
    assert "DR — DIFFUSION RESTREINTE" in pages[0]  # the cover says the level too


async def test_an_np_reader_never_sees_a_dr_entry(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    secret = await room.entry("antoine", "Renseignement sur un rassemblement", label=RESTRICTED)
    open_ = await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    for username in ("prefet", "maire"):
        await room(username)

    # The same hours: a DR synthesis (the DR entry is in scope) that the mayor never gets.
    everything = (await room.draft("claire", "Point complet"))["id"]
    await room.sent("claire", "marc", everything, users=["prefet"])
    refused = await client.get(f"/api/v1/syntheses/{everything}/pdf", headers=await room("maire"))
    assert refused.status_code == 404

    # Scoped to traffic, the DR entry is not in it: an NP synthesis the mayor may receive.
    traffic = await room.draft("claire", "Point circulation", hours=24, categories=["traffic"])
    assert traffic["label"]["level"] == "NP" and traffic["entry_ids"] == [open_["id"]]
    await room.sent("claire", "marc", traffic["id"], users=["maire"])
    data = await room.pdf("maire", traffic["id"])
    pages = pages_text(data)
    watermark = re.compile(WATERMARK.format(name="Anne Maire"))
    for text in pages:
        assert secret["title"] not in text
        assert "Renseignement" not in text
        assert squeezed(MARKING) not in squeezed(text)
        assert watermark.search(text)
    assert open_["title"] in " ".join(pages)
    meta = PdfReader(io.BytesIO(data)).metadata
    assert meta is not None and meta.subject is not None and MARKING not in meta.subject
