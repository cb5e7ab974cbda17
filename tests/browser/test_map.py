"""The map in the browser: entries arrive live on the map of a cleared reader only; a watch
officer draws a zone; with no reachable tile server the shipped boundaries are drawn."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from hypervision.config import Settings
from hypervision.policy.roles import Role
from tests.browser.web import SQLITE_ONLY, Web, live_stream_open, screenshot, settled
from tests.conftest import make_settings

NEAR_CONCORDE = {"type": "Point", "coordinates": [2.3212, 48.8656]}


async def map_of(web: Web, username: str) -> Page:
    page = await web.signed_in(username, "/carte")
    await expect(page.locator("#carte")).to_have_attribute("data-total", "0")
    await live_stream_open(page)
    return page


async def test_entries_reach_the_map_of_cleared_readers_only(web: Web) -> None:
    await web.org("PP")
    await web.org("SAMU")
    await web.user("antoine.roux", "PP", clearance="DR")
    await web.user("karim.haddad", "SAMU", clearance="DR")
    await web.user("laura.dupuis", "SAMU", clearance="NP")
    cleared, uncleared = await asyncio.gather(
        map_of(web, "karim.haddad"), map_of(web, "laura.dupuis")
    )
    await expect(cleared.locator("#carte")).to_have_attribute("data-base", "boundaries")
    await web.entry(
        "antoine.roux",
        title="Colis suspect Concorde",
        severity="critical",
        location=NEAR_CONCORDE,
        label={"level": "DR", "audience": []},
    )
    await expect(cleared.locator("#carte")).to_have_attribute("data-total", "1")
    marker = cleared.locator(".hv-marker--critical")
    await expect(marker).to_have_count(1)
    await asyncio.sleep(2)
    await expect(uncleared.locator("#carte")).to_have_attribute("data-total", "0")
    await expect(uncleared.locator(".hv-marker")).to_have_count(0)

    await web.entry(
        "antoine.roux",
        title="Point presse",
        location=NEAR_CONCORDE,
        label={"level": "NP", "audience": []},
    )
    await expect(uncleared.locator("#carte")).to_have_attribute("data-total", "1")
    await expect(cleared.locator("#carte")).to_have_attribute("data-total", "2")
    await marker.click()  # both at one place: one marker, its popup lists them
    link = cleared.locator(".leaflet-popup-content a", has_text="Colis suspect Concorde")
    await expect(link).to_have_text("Colis suspect Concorde")
    await settled(link)  # the popup pans the map into view: click once it stands still
    await link.click()
    await expect(cleared.locator("#entree-titre")).to_have_text("Colis suspect Concorde")


@SQLITE_ONLY  # drawing is markup and script; zones are tested on both engines in tests/geo
async def test_watch_officer_draws_a_zone(web: Web) -> None:
    await web.org("PP")
    await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    page = await web.signed_in("sophie.martin", "/carte")
    carte = page.locator("#carte")
    await expect(carte).to_have_class(re.compile("leaflet-container"))  # map.js has run
    await page.click("#dessin summary")
    await page.click("#dessin-debut")
    await expect(carte).to_have_class(re.compile("hv-map--drawing"))
    box = await carte.bounding_box()
    assert box is not None
    # Clicks relative to the map itself: Playwright scrolls it into view and checks that the
    # point is on the map (a click at page coordinates is lost when the map is off-screen).
    for dx, dy in ((0.3, 0.3), (0.6, 0.3), (0.6, 0.6), (0.3, 0.6)):
        await carte.click(position={"x": box["width"] * dx, "y": box["height"] * dy})
    # The outline being drawn (an SVG path in the drawing colour) shows the clicks were taken.
    await expect(carte.locator("path[stroke='#ce0500']")).to_have_count(1)
    await page.click("#dessin-fin")
    await expect(page.locator("#zone-geometrie")).to_have_value(re.compile('"Polygon"'))
    await page.fill("#zone-nom", "Périmètre fan zone")
    await page.locator("#zone-form button[type=submit]").click()
    await expect(page.locator("#zones-titre")).to_be_visible()
    await expect(page.locator(".hv-follows")).to_contain_text("Périmètre fan zone")
    await expect(page.locator("#carte")).to_have_attribute("data-zones", "1")
    zones = await web.api("sophie.martin", "GET", "/zones")
    assert [z["name"] for z in zones] == ["Périmètre fan zone"]  # type: ignore[index]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A tile server that never answers (this machine has no internet either).
    return make_settings(
        tmp_path, database_url, map_tiles_url="http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
    )


@SQLITE_ONLY  # the base map does not depend on the engine
async def test_unreachable_tiles_fall_back_to_the_shipped_boundaries(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", "/carte")
    element = page.locator("#carte")
    await expect(element).to_have_attribute("data-base", "boundaries")
    await expect(element).to_have_attribute("data-boundaries-departements", "96")
    await expect(element).to_have_attribute("data-boundaries-paris", "4")
    assert await page.locator("#carte path.leaflet-interactive, #carte svg path").count() > 90
    await screenshot(page, "carte-hors-ligne")
