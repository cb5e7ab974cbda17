"""The hub in a browser (docs/adr/0042), at a desktop size (1280 px) and on a phone (390 px):
reached from the header's "Hypervision" link, it shows the CNCS's announcements, who is on
duty in each room and the next shift, the shared documents and the spaces section; axe finds
no violation on it nor on its directory, documents and announcements pages (forms open). A new
announcement is offered on an open hub through the live stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import (
    AXE,
    DESKTOP,
    PHONE,
    SQLITE_ONLY,
    Web,
    live_stream_open,
    screenshot,
    unavailable,
)

pytestmark = SQLITE_ONLY  # markup: the same HTML on both engines

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
VIEWPORTS = {"desktop": {**DESKTOP, "width": 1280}, "phone": PHONE}


def at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def world(web: Web) -> None:
    await web.org("MININT-CNCS")
    await web.org("PP")
    await web.user("claire.dubois", "MININT-CNCS", roles=(Role.WATCH_OFFICER,))
    await web.user("antoine.roux", "PP")
    await web.user("nadia.benali", "PP", roles=(Role.WATCH_OFFICER,))
    shifts = [
        ("antoine.roux", "PC Stade de France", -2, 6),
        ("nadia.benali", "Salle CNCS", -1, 8),
        (None, "Salle CNCS", 7, 12),
    ]
    for username, room, start, end in shifts:
        body: dict[str, Any] = {
            "organisation": "PP",
            "room": room,
            "function": "Officier de liaison",
            "phone": "01 53 71 40 02",
            "radio": "TPH 3",
            "email": "liaison@pp.example.gouv.fr",
            "starts_at": at(start),
            "ends_at": at(end),
        }
        body |= {"username": username} if username else {"person_name": "Cdt Martin (SDIS 93)"}
        await web.api("claire.dubois", "POST", "/hub/duty", json=body)
    await web.api(
        "claire.dubois",
        "POST",
        "/hub/announcements",
        json={
            "title": "Orages prévus en soirée",
            "body": "Vigilance **orange** de 19 h à minuit.",
            "importance": "urgent",
            "label": PUBLIC,
        },
    )
    headers = await web.headers("antoine.roux")
    shared = await web.client.post(
        "/api/v1/hub/documents",
        params={"title": "Numéros utiles des salles", "level": "NP"},
        files={"file": ("numeros.csv", b"salle;standard\nSalle CNCS;01 49 27 40 00\n")},
        headers=headers,
    )
    assert shared.status_code == 201, shared.text


async def checked(page: Page, name: str, ready: str) -> list[dict[str, Any]]:
    await expect(page.locator(ready).first).to_be_visible()
    await screenshot(page, name)
    return await axe(page)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_the_hub_has_no_violation(web: Web, viewport: str) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await world(web)
    size = VIEWPORTS[viewport]
    found: dict[str, list[dict[str, Any]]] = {}
    page = await web.signed_in("claire.dubois", "/main-courante", bypass_csp=True, viewport=size)
    home = page.locator(".fr-header__service a[href='/accueil']")
    await home.focus()  # by the keyboard: on a phone the menu button lies over the brand
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{web.base}/accueil")
    await expect(page.locator("h1")).to_have_text("Accueil")
    await expect(page.locator("#annonces")).to_contain_text("Orages prévus en soirée")
    rooms = page.locator("#annuaire h3")
    await expect(rooms).to_have_text(["PC Stade de France", "Salle CNCS"])
    await expect(page.locator("#annuaire")).to_contain_text("Relève : Cdt Martin (SDIS 93)")
    await expect(page.locator("#documents")).to_contain_text("Numéros utiles des salles")
    await expect(page.locator("#espaces")).to_contain_text("Aucun espace pour l’instant")
    found[f"hub-{viewport}"] = await checked(page, f"hub-{viewport}", "#annuaire h3")
    for name, path, panel in (
        ("hub-directory", "/accueil/annuaire", "#nouvelle-permanence"),
        ("hub-announcements", "/accueil/annonces", "details"),
    ):
        await page.goto(path)
        await page.locator(f"{panel} > summary").first.click()
        found[f"{name}-{viewport}"] = await checked(page, f"{name}-{viewport}", "main form button")
    officer = await web.signed_in(
        "antoine.roux", "/accueil/documents", bypass_csp=True, viewport=size
    )
    await officer.locator("#partager > summary").click()
    found[f"hub-documents-{viewport}"] = await checked(
        officer, f"hub-documents-{viewport}", "#document-form"
    )
    violations = {k: v for k, v in found.items() if v}
    assert not violations, report(violations)


async def test_a_new_announcement_is_offered_live(web: Web) -> None:
    await world(web)
    page = await web.signed_in("antoine.roux", "/accueil")
    await live_stream_open(page)
    link = page.locator("#annonces-nouvelles a")
    await expect(link).to_be_hidden()
    await web.api(
        "claire.dubois",
        "POST",
        "/hub/announcements",
        json={"title": "Point presse à 18 h", "label": PUBLIC},
    )
    await expect(link).to_be_visible(timeout=15_000)
    await link.click()
    await expect(page.locator("#annonces")).to_contain_text("Point presse à 18 h")
