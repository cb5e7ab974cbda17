"""Where a source still shows through a synthesis (ADR 0012, SECURITY.md 31): every form a
reader gets of one synthesis — the API read, the list, the inbox, the PDF, the synthesis page,
the list page and the inbox page — searched, raw, for markers of a source (its id, its title,
a word only it holds).

For the leak matrix: after raising the label of an entry that a sent synthesis contains,

    found = await synthesis_traces(
        app, client, username=person.name, headers=world.headers[person.name],
        synthesis_id=sid, markers=[entry_id, entry_word],
    )

``found`` maps each surface to the markers its body holds: empty everywhere for a reader who
may no longer see the entry; for a reader still cleared (and allowed the synthesis), the id
and the word are in the JSON surfaces (``entry_ids``, ``entries``, the critical entries of the
figures) and on the synthesis page, and the word (a title, never an id) in the PDF.
A surface the reader is refused (404 or 403) is searched too: its body must hold nothing
either. The PDF is read with pypdf, or as the printed HTML when the matrix stands in for
WeasyPrint (``%PDF-stub``)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.factories import PASSWORD
from tests.synthesis.helpers import pages_text
from tests.web.pages import browse_as

API_SURFACES = ("api.synthesis", "api.syntheses", "api.inbox", "api.pdf")
WEB_SURFACES = ("web.synthesis", "web.syntheses", "web.inbox")


def pdf_text(content: bytes) -> str:
    """The text a PDF shows (or the HTML the matrix prints instead of it)."""
    if content.startswith(b"%PDF-stub"):
        return content.decode()
    if content.startswith(b"%PDF"):
        return " ".join(pages_text(content))
    return content.decode(errors="replace")  # an error body


async def synthesis_traces(
    app: FastAPI,
    client: AsyncClient,
    *,
    username: str,
    headers: dict[str, str],
    synthesis_id: str,
    markers: Iterable[str],
    password: str = PASSWORD,
    web: bool = True,
) -> dict[str, set[str]]:
    """``{surface: markers found in its raw body}`` for ``username`` (``headers``: their
    bearer headers; ``web``: also sign in through the form and read the pages)."""
    wanted = [m for m in markers if m]
    one = f"/api/v1/syntheses/{synthesis_id}"
    bodies: dict[str, str] = {
        "api.synthesis": (await client.get(one, headers=headers)).text,
        "api.syntheses": (await client.get("/api/v1/syntheses", headers=headers)).text,
        "api.inbox": (await client.get("/api/v1/inbox", headers=headers)).text,
        "api.pdf": pdf_text((await client.get(f"{one}/pdf", headers=headers)).content),
    }
    if web:
        transport = ASGITransport(app=app, client=("203.0.113.9", 50001))
        async with AsyncClient(transport=transport, base_url="https://testserver") as browser:
            await browse_as(browser, username, password)
            bodies["web.synthesis"] = (await browser.get(f"/syntheses/{synthesis_id}")).text
            bodies["web.syntheses"] = (await browser.get("/syntheses")).text
            bodies["web.inbox"] = (await browser.get("/boite")).text
    return {surface: {m for m in wanted if m in body} for surface, body in bodies.items()}
