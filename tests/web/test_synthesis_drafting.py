"""Drafting a synthesis in the web app (both engines): the workflow button sends the analysis
typed above it and the draft is saved before the step; the background save answers with the
new version and refuses a stale one; a refused save gives the typed text back."""

from __future__ import annotations

import re
import uuid
from html import unescape

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.records.models import RecordVersion
from hypervision.synthesis.models import Synthesis
from tests.factories import tx
from tests.synthesis.helpers import Room
from tests.web.pages import browse_as

ETAG = re.compile(r'name="etag" value="([^"]+)"')


async def stored(app: FastAPI, synthesis_id: str) -> tuple[Synthesis, list[str]]:
    async with tx(app) as session:
        row = await session.get(Synthesis, uuid.UUID(synthesis_id))
        assert row is not None
        steps = await session.scalars(
            select(RecordVersion.action)
            .where(RecordVersion.resource_id == row.id)
            .order_by(RecordVersion.version)
        )
        return row, list(steps)


async def drafting(app: FastAPI, client: AsyncClient) -> tuple[str, str, str]:
    """A draft by Claire over one entry; her signed-in page's CSRF token and version."""
    room = Room(app, client)
    await room.entry("antoine", "Rixe place du marché")
    sid = str((await room.draft("claire", "Point de 18 h"))["id"])
    csrf = await browse_as(client, "claire")
    page = await client.get(f"/syntheses/{sid}")
    assert page.status_code == 200
    found = ETAG.search(page.text)
    assert found
    return sid, csrf, unescape(found.group(1))


async def test_submit_from_the_drafting_form_keeps_the_typed_analysis(
    app: FastAPI, client: AsyncClient
) -> None:
    sid, csrf, etag = await drafting(app, client)
    page = (await client.get(f"/syntheses/{sid}")).text
    form = page[page.index('id="redaction"') : page.index("</form>", page.index('id="redaction"'))]
    narrative_at = form.index('id="r-narrative"')
    assert narrative_at < form.index('id="etape-submit"')  # the button comes after the analysis
    assert 'formaction="/syntheses/' in form  # and sends this very form
    entry_ids = re.findall(r'name="entry" value="([^"]+)" checked', form)
    typed = "## Situation générale\n\nCalme revenu place du marché."
    response = await client.post(
        f"/syntheses/{sid}/etape",
        data={
            "csrf_token": csrf, "etag": etag, "action": "submit", "title": "Point de 18 h",
            "narrative": typed.replace("\n", "\r\n"), "entry": entry_ids,
        },
    )  # fmt: skip
    assert response.status_code == 303, response.text
    synthesis, steps = await stored(app, sid)
    assert synthesis.status == "submitted"
    assert synthesis.narrative == typed
    assert steps[-2:] == ["update", "submit"]


async def test_background_save_answers_the_new_version_and_refuses_a_stale_one(
    app: FastAPI, client: AsyncClient
) -> None:
    sid, csrf, etag = await drafting(app, client)
    saved = await client.post(
        f"/syntheses/{sid}/brouillon",
        data={"csrf_token": csrf, "etag": etag, "title": "Point de 18 h", "narrative": "Calme."},
        headers={"X-CSRF-Token": csrf},
    )
    assert saved.status_code == 200, saved.text
    answer = saved.json()
    assert re.fullmatch(r"Brouillon enregistré à \d\d:\d\d", answer["message"])
    synthesis, _ = await stored(app, sid)
    assert synthesis.narrative == "Calme." and answer["etag"] == f'"{sid}.{synthesis.version}"'
    stale = await client.post(
        f"/syntheses/{sid}/brouillon",
        data={"csrf_token": csrf, "etag": etag, "title": "Point de 18 h", "narrative": "Autre."},
    )
    assert stale.status_code == 412
    assert stale.json()["message"].startswith("Quelqu'un d'autre a enregistré ce brouillon")
    bad = await client.post(
        f"/syntheses/{sid}/brouillon",
        data={"csrf_token": csrf, "etag": answer["etag"], "narrative": "x", "entry": "pas-un-id"},
    )
    assert bad.status_code == 422
    assert bad.json()["message"] == "Brouillon non enregistré : vérifiez le titre et les entrées."
    synthesis, _ = await stored(app, sid)
    assert synthesis.narrative == "Calme."


async def test_a_refused_save_or_step_gives_the_typed_text_back(
    app: FastAPI, client: AsyncClient
) -> None:
    sid, csrf, etag = await drafting(app, client)
    moved = await client.post(
        f"/syntheses/{sid}/modifier",
        data={"csrf_token": csrf, "etag": etag, "title": "Point", "narrative": "Première."},
    )
    assert moved.status_code == 303
    typed = "Texte long tapé pendant que quelqu'un d'autre enregistrait."
    for path, extra in (("modifier", {}), ("etape", {"action": "submit"})):
        refused = await client.post(
            f"/syntheses/{sid}/{path}",
            data={"csrf_token": csrf, "etag": etag, "title": "Point", "narrative": typed, **extra},
        )
        assert refused.status_code == 412, path
        text = unescape(refused.text)
        assert typed in text and "Quelqu'un d'autre a enregistré ce brouillon" in text
        assert 'id="version-enregistree"' in text and "Première." in text
    synthesis, _ = await stored(app, sid)
    assert synthesis.narrative == "Première." and synthesis.status == "draft"


async def test_a_draft_without_title_is_said_and_the_list_shown_again(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    await room("claire")
    csrf = await browse_as(client, "claire")
    refused = await client.post(
        "/syntheses", data={"csrf_token": csrf, "title": "   ", "hours": "24"}
    )
    assert refused.status_code == 422
    assert "Donnez un titre à la synthèse (au plus 200 caractères)." in unescape(refused.text)
    assert 'id="nouvelle-synthese"' in refused.text
