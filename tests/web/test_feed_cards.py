"""What a feed card says: an excerpt in plain words, the venue's name, the protection level in
words (the lowest one too), the time the feed is ordered by, a border coloured by severity."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.geo.places import find_venue
from hypervision.web.cards import excerpt, place_name
from tests.factories import make_org, make_user, sign_in
from tests.web.pages import browse_as

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


def cards(page: str) -> list[str]:
    return re.findall(r'<li class="hv-card.*?</li>', page, re.S)


async def test_cards_in_feed_order_with_excerpt_place_and_level(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_org(app, "PP")
    await make_user(app, "hugo", "PP", clearance="DR")
    headers = await sign_in(client, "hugo")
    stade = find_venue("Stade de France")
    assert stade is not None
    long_ago = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    first: dict[str, object] = {
        "title": "Bousculade porte H",
        "category": "security",
        "severity": "critical",
        "body": "## Situation\n\nMouvement de foule **maîtrisé** à l'entrée 12.",
        "location": {"type": "Point", "coordinates": [stade.lon, stade.lat]},
        "label": PUBLIC,
    }
    # written after, about something that happened three hours before
    late = {**first, "title": "Malaise signalé tard", "severity": "minor", "body": ""}
    late |= {"occurred_at": long_ago, "location": None, "label": {**PUBLIC, "level": "DR"}}
    for body in (first, late):
        response = await client.post("/api/v1/entries", json=body, headers=headers)
        assert response.status_code == 201, response.text

    await browse_as(client, "hugo")
    page = (await client.get("/main-courante")).text
    newest, older = cards(page)
    assert "Malaise signalé tard" in newest and "hv-card--minor" in newest
    assert "Bousculade porte H" in older and "hv-card--critical" in older
    # the time shown is the one the feed is ordered by (recorded), the occurrence beside it
    shown = [re.findall(r'<time datetime="([^"]+)"', card)[0] for card in (newest, older)]
    assert shown[0] >= shown[1]
    assert "survenue le" in newest and "survenue le" not in older
    assert "Mouvement de foule maîtrisé à l&#39;entrée 12." in older
    assert "##" not in older and "**" not in older
    assert "Stade de France" in older
    assert ">Non protégé<" in older  # the lowest level has its badge, in words
    assert '<abbr title="Diffusion restreinte">DR</abbr>' in newest
    assert page.count('class="hv-card__num"') == 2


def test_excerpt_and_place_name() -> None:
    assert excerpt("# Titre\n\n- un\n- deux [lien](https://x.example)") == "Titre un deux lien"
    cut = excerpt("mot " * 100, limit=20)
    assert cut.endswith("…") and len(cut) <= 21
    assert place_name({"type": "Point", "coordinates": [2.3601, 48.9246]}) == "Stade de France"
    assert place_name({"type": "Point", "coordinates": [2.0, 48.0]}) is None
    assert place_name({"type": "LineString", "coordinates": [[2.36, 48.92], [2.37, 48.93]]}) is None
