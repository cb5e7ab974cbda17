"""Per-page assets in the browser: the feed carries no Leaflet, yet an entry with a place opened
beside the feed shows its map (app.js loads Leaflet then); files come from the cache on a
second visit."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.web import SQLITE_ONLY, Web

pytestmark = SQLITE_ONLY

PLACE = {"type": "Point", "coordinates": [2.3601, 48.8984]}
STATIC_FILES = """() => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/static/"))
    .map((e) => [e.name, e.transferSize])"""


async def test_leaflet_loads_only_when_a_map_shows(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    placed = await web.entry("hugo.faure", title="Colis suspect gare du Nord", location=PLACE)
    page = await web.signed_in("hugo.faure")
    leaflet: list[str] = []
    page.on("request", lambda r: leaflet.append(r.url) if "/leaflet/" in r.url else None)
    assert await page.evaluate("typeof window.L") == "undefined"
    assert not await page.locator('script[src*="leaflet"]').count()
    await page.locator(f"#e-{placed['id']} .hv-card__link").click()
    await expect(page.locator("#detail #entree")).to_have_attribute("data-entry", placed["id"])
    await expect(page.locator("#detail .leaflet-container")).to_be_visible()
    shape = page.locator("#detail .leaflet-overlay-pane path, #detail .leaflet-marker-icon")
    await expect(shape.first).to_be_attached()
    assert any(u.endswith("leaflet.js") for u in leaflet) and any(
        u.endswith("leaflet.css") for u in leaflet
    )
    assert web.errors == []


async def test_a_second_visit_takes_the_files_from_the_cache(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.entry("hugo.faure", title="Colis suspect gare du Nord", location=PLACE)
    page = await web.signed_in("hugo.faure")
    await page.wait_for_load_state("networkidle")
    first = await page.evaluate(STATIC_FILES)
    assert first and all(size > 0 for _, size in first), first  # from the network, once
    await page.goto("/main-courante", wait_until="networkidle")
    again = await page.evaluate(STATIC_FILES)
    assert {name for name, _ in again} == {name for name, _ in first}
    assert [name for name, size in again if size > 0] == []  # none asked for again
    assert web.errors == []


async def test_the_reduced_dsfr_keeps_what_its_script_adds(web: Web) -> None:
    """The phone menu opens (``fr-modal--opened``, added by the DSFR's script at run time) and
    its links show: the purge at install keeps those classes."""
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", "/aide")
    await page.set_viewport_size({"width": 390, "height": 844})
    menu = page.locator("#menu-principal")
    link = menu.locator(".fr-nav__link[href='/carte']")
    await expect(link).to_be_hidden()
    await page.locator("#bouton-menu").click()
    await expect(menu).to_have_class(re.compile(r"\bfr-modal--opened\b"))
    await expect(link).to_be_visible()
    # Styled by the reduced sheet: the opened menu covers the page (DSFR's fixed modal).
    assert await menu.evaluate("(e) => getComputedStyle(e).position") == "fixed"
    await menu.locator(".fr-btn--close").click()
    await expect(link).to_be_hidden()
    assert web.errors == []
