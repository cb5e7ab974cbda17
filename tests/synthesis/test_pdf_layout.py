"""What an authority reads first: page 1 of the synthesis PDF holds the Marianne block, the
title, a summary of the figures and the analysis; the figures, the map and the entries come
after. Read with poppler's pdftotext, page by page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.synthesis.helpers import Room

ANALYSIS = (
    "## Situation générale\n\nLe calme est revenu aux abords du Stade de France après la "
    "bousculade de la tribune nord ; deux blessés légers évacués.\n\n## Prochain point\n\n"
    "À 20 h, avec la préfecture de police."
)


def page_text(pdf: Path, number: int) -> str:
    """One page's text in the order it was drawn (the rotated watermark kept apart)."""
    tool = shutil.which("pdftotext")
    assert tool is not None
    out = subprocess.run(
        [tool, "-raw", "-f", str(number), "-l", str(number), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return re.sub(r"\s+", " ", out)


async def test_the_analysis_is_on_page_one_and_the_figures_after(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")
    room = Room(app, client)
    stade = {"type": "Point", "coordinates": [2.3601, 48.9245]}
    for n in range(8):  # crowded in one place, as on a match evening
        await room.entry("antoine", f"Incident tribune {n}", location=stade, severity="major")
    await room.entry("antoine", "Malaise entrée 12", severity="critical")
    sid = (await room.draft("claire", "Point de situation de 19 h"))["id"]
    await room.patch("claire", sid, {"narrative": ANALYSIS})
    await room.sent("claire", "marc", sid, users=["prefet"])
    pdf = tmp_path / "synthese.pdf"
    pdf.write_bytes(await room.pdf("prefet", sid))

    first = page_text(pdf, 1)
    assert "RÉPUBLIQUE FRANÇAISE" in first.upper()
    assert "Liberté Égalité Fraternité" in first
    assert "Point de situation de 19 h" in first
    assert "9 entrées retenues · 1 critique · 8 majeures" in first
    assert "Le calme est revenu aux abords du Stade de France" in first
    assert "À 20 h, avec la préfecture de police." in first
    assert "Chiffres clés" not in first and "Entrées retenues" not in first
    second = page_text(pdf, 2)
    assert "Chiffres clés" in second and "Carte" in second
    assert "Analyse" not in second
