"""A synthesis of the demo scenario, drafted, validated and sent through the API as the crisis
room would, then rendered for its recipient: test-artifacts/synthesis/demo-synthesis.pdf and
one PNG per page (demo-synthesis-<n>.png, pdftoppm at 60 dpi) for review."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pypdf import PdfReader
from sqlalchemy import select

from hypervision.demo import events, scenario
from hypervision.identity import mfa
from hypervision.identity.models import User
from tests.factories import sign_in, tx
from tests.synthesis.helpers import MARKING, pages_text, squeezed

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "synthesis"
NARRATIVE = """## Situation générale

Activité soutenue autour des sites olympiques sur les dernières 24 heures. Aucun événement
non maîtrisé ; les points de filtrage absorbent l'affluence avec des attentes ponctuelles.

## Points d'attention

- **Stade de France** : affluence en fin de soirée, renfort de la DOPC maintenu.
- **Champ-de-Mars** : chaleur, points d'eau renforcés avec la BSPP.
- **Cyber** : tentatives de hameçonnage visant la billetterie, suivies par le CNCS.

## Prochain point

Demain 7 h, ou avant en cas d'événement majeur.
"""


async def signed_in(app: FastAPI, client: AsyncClient, name: str) -> dict[str, str]:
    """A demo account with its one-time code (the crisis-room accounts have MFA)."""
    username = scenario.username_of(name)
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        otp = mfa.current_otp(app.state.settings, user) if user.mfa_enabled else None
    return await sign_in(client, username, scenario.DEMO_PASSWORD, otp)


# SQLite only: loading the demo (320 entries, their triage and comments) takes about 15 s; the
# workflow, labels, recipients and PDF are tested on both engines by the other modules.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_demo_synthesis_pdf(app: FastAPI, client: AsyncClient) -> None:
    settings = app.state.settings
    async with tx(app) as session:
        await scenario.load(session, settings)
    async with tx(app) as session:
        await events.load(session, settings)  # may itself send a demo synthesis: not counted

    # The national centre: Marc Lefebvre drafts, Claire Dubois validates, the authority of the
    # same centre (same clearance and group as the author) receives it.
    marc = await signed_in(app, client, "Marc Lefebvre")
    claire = await signed_in(app, client, "Claire Dubois")
    authority = "Hélène Rousseau"
    helene = await signed_in(app, client, authority)
    drafted = await client.post(
        "/api/v1/syntheses",
        json={"title": "Point de situation — dernières 24 heures", "scope": {"hours": 24}},
        headers=marc,
    )
    assert drafted.status_code == 201, drafted.text
    synthesis = drafted.json()
    sid = synthesis["id"]
    assert synthesis["figures"]["total"] == len(synthesis["entry_ids"]) >= 20
    edited = await client.patch(
        f"/api/v1/syntheses/{sid}", json={"narrative": NARRATIVE}, headers=marc
    )
    assert edited.status_code == 200, edited.text
    for headers, action, body in (
        (marc, "submit", None),
        (claire, "validate", None),
        (claire, "send", {"users": [scenario.username_of(authority)]}),
    ):
        response = await client.post(
            f"/api/v1/syntheses/{sid}/{action}", json=body, headers=headers
        )
        assert response.status_code == 200, (action, response.text)
    inbox = (await client.get("/api/v1/inbox", headers=helene)).json()
    assert sid in [item["synthesis"]["id"] for item in inbox]

    response = await client.get(f"/api/v1/syntheses/{sid}/pdf", headers=helene)
    assert response.status_code == 200, response.text
    data = response.content
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "demo-synthesis.pdf"
    target.write_bytes(data)

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    assert reader.metadata is not None
    assert reader.metadata.title == "Point de situation — dernières 24 heures"
    pages = pages_text(data)
    for text in pages:
        assert f"{authority} —" in text  # the watermark
        if synthesis["label"]["level"] == "DR":
            assert squeezed(text).count(squeezed(MARKING)) >= 2
    if synthesis["label"]["level"] == "DR":
        assert synthesis["marking"] == MARKING

    to_png(target)


def to_png(pdf: Path) -> None:
    """demo-synthesis-<n>.png next to the PDF (pdftoppm numbers the pages from 1)."""
    for old in pdf.parent.glob(f"{pdf.stem}-*.png"):
        old.unlink()
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        reason = f"pdftoppm (poppler-utils) is not installed: {pdf} was written, not its PNGs"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} — CI is set: the review images must be made there")
        pytest.skip(reason)
    subprocess.run(  # a fixed local tool on a file the test wrote
        [pdftoppm, "-png", "-r", "60", str(pdf), str(pdf.with_suffix(""))],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pngs = sorted(pdf.parent.glob(f"{pdf.stem}-*.png"))
    assert len(pngs) == len(PdfReader(pdf).pages)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
