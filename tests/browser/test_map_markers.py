"""The map's defects, in the browser: the shipped boundaries drawn once (not twice, offset),
close entries grouped into one marker that zooms in when clicked, a marker's popup giving the
title, time and severity with a link to the entry, and staying open when the map pans."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.web import SQLITE_ONLY, Web, screenshot, settled
from tests.factories import PASSWORD

CONCORDE = (2.3212, 48.8656)


def point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [lon, lat]}


async def map_page(web: Web, path: str = "/carte") -> Page:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", path)
    return page


@SQLITE_ONLY  # markup and script
async def test_boundaries_are_drawn_once(web: Web) -> None:
    page = await map_page(web, "/carte?lat=48.86&lon=2.35&z=12")
    carte = page.locator("#carte")
    await expect(carte).to_have_attribute("data-base", "boundaries")
    await expect(carte).to_have_attribute("data-boundaries-departements", "96")
    # Zoomed in: each department once, the Paris area's from the finer file, no region on top.
    await expect(carte).to_have_attribute("data-boundaries-drawn", "96")
    await expect(carte.locator(".leaflet-overlay-pane path")).to_have_count(96)
    await page.goto("/carte?lat=46.6&lon=2.4&z=5")
    await expect(carte).to_have_attribute("data-boundaries-regions", "22")
    await expect(carte).to_have_attribute("data-boundaries-drawn", "22")
    await expect(carte.locator(".leaflet-overlay-pane path")).to_have_count(22)


@SQLITE_ONLY
async def test_the_entry_form_map_is_not_a_grey_box(web: Web) -> None:
    page = await map_page(web, "/main-courante/nouvelle")
    picker = page.locator("#carte-saisie")
    await expect(picker).to_have_attribute("data-base", "boundaries")
    await expect(picker).to_have_attribute("data-boundaries-drawn", "96")
    await expect(picker.locator(".leaflet-overlay-pane path[stroke='#9a9aca']")).to_have_count(96)


@SQLITE_ONLY
async def test_close_entries_make_one_marker_that_zooms_in(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    lon, lat = CONCORDE
    for i, severity in enumerate(("minor", "critical", "info")):
        await web.entry(
            "antoine.roux",
            title=f"Foule {i}",
            severity=severity,
            location=point(lon + i * 0.002, lat),
        )
    page = await web.signed_in("antoine.roux", f"/carte?lat={lat}&lon={lon}&z=12")
    carte = page.locator("#carte")
    await expect(carte).to_have_attribute("data-total", "3")
    group = carte.locator(".hv-marker--cluster")
    await expect(group).to_have_count(1)
    await expect(group).to_have_class(re.compile("hv-marker--critical"))  # the gravest
    await expect(group).to_have_text("3")
    await expect(carte).to_have_attribute("data-markers", "1")
    await group.click()
    await expect(carte.locator(".hv-marker:not(.hv-marker--cluster)")).to_have_count(3)
    await expect(carte).to_have_attribute("data-markers", "3")


@SQLITE_ONLY
async def test_entries_at_one_place_are_listed_in_the_popup(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    lon, lat = CONCORDE
    await web.entry("antoine.roux", title="Malaise tribune", location=point(lon, lat))
    await web.entry("antoine.roux", title="Objet perdu", location=point(lon, lat))
    page = await web.signed_in("antoine.roux", f"/carte?lat={lat}&lon={lon}&z=17")
    group = page.locator("#carte .hv-marker--cluster")
    await expect(group).to_have_text("2")
    await group.click()
    popup = page.locator(".leaflet-popup-content")
    await expect(popup.locator("a")).to_have_count(2)
    await expect(popup).to_contain_text("Malaise tribune")
    await expect(popup).to_contain_text("Objet perdu")


@SQLITE_ONLY
async def test_a_marker_opens_its_popup_and_it_stays_open(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    lon, lat = CONCORDE
    entry = await web.entry(
        "antoine.roux",
        title="Colis suspect",
        severity="major",
        location=point(lon, lat),
        occurred_at="2026-06-14T16:05:00+02:00",
    )
    # The marker near the top edge: opening the popup pans the map (which reloads the markers).
    page = await web.signed_in("antoine.roux", f"/carte?lat={lat - 0.012}&lon={lon}&z=14")
    marker = page.locator("#carte .hv-marker--major")
    await marker.click()
    popup = page.locator(".leaflet-popup-content")
    await expect(popup.locator("a")).to_have_text("Colis suspect")
    await expect(popup.locator("a")).to_have_attribute("href", f"/entrees/{entry['id']}")
    await expect(popup).to_contain_text("Majeure")
    await expect(popup.locator("time")).to_have_attribute(
        "datetime", re.compile("2026-06-14T14:05")
    )
    await expect(popup.locator("time")).to_contain_text("16:05")
    await page.wait_for_timeout(1500)  # the refresh after the pan has come and gone
    await expect(popup).to_be_visible()
    await popup.locator("a").click()
    await expect(page.locator("#entree-titre")).to_have_text("Colis suspect")


@SQLITE_ONLY
async def test_on_a_phone_a_group_zooms_in_and_a_popup_leads_to_the_entry(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    lon, lat = CONCORDE
    await web.entry("antoine.roux", title="Rixe", severity="major", location=point(lon, lat))
    await web.entry("antoine.roux", title="Malaise", location=point(lon + 0.003, lat))
    page = await web.page()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.context.request.post(
        "/connexion", form={"username": "antoine.roux", "password": PASSWORD}
    )
    await page.goto(f"/carte?lat={lat}&lon={lon}&z=12")
    carte = page.locator("#carte")
    group = carte.locator(".hv-marker--cluster")
    await expect(group).to_have_text("2")
    await group.click()
    await expect(carte.locator(".hv-marker:not(.hv-marker--cluster)")).to_have_count(2)
    await carte.locator(".hv-marker--major").click()
    link = page.locator(".leaflet-popup-content a")
    await expect(link).to_have_text("Rixe")
    await screenshot(page, "carte-telephone-popup")
    await settled(link)  # the popup pans the map into view: click once it stands still
    await link.click()
    await expect(page.locator("#entree-titre")).to_have_text("Rixe")
