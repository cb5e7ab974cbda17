"""Correcting an entry's category, severity and place in the browser, on a phone (390×844):
the form fits, "Ma position" fills the coordinates, the history shows the changes, and the
form and the entry page pass axe at both sizes (with the follow-this-entry button). The
correction form's map, at 1280×800 and 390×844: it opens on the entry's place, a click
moves it, and the new version has the new place."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import VIEWPORTS, axe, report
from tests.browser.web import (
    AXE,
    PHONE,
    SQLITE_ONLY,
    Web,
    screenshot,
    t,
    unavailable,
)

pytestmark = SQLITE_ONLY
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


async def test_a_watch_officer_corrects_category_severity_and_place_on_a_phone(
    web: Web,
) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.user("chef", "PP", roles=[Role.WATCH_OFFICER])
    entry = await web.entry("hugo.faure", title="Attroupement porte H", label=PUBLIC)
    found = {}
    page = await web.signed_in("chef", f"/entrees/{entry['id']}", bypass_csp=True)
    await expect(page.locator("#suivre-entree")).to_have_text(t("Follow this entry"))
    found["entry-desktop"] = await axe(page)
    await page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    await page.goto(f"/entrees/{entry['id']}/corriger")
    await page.context.grant_permissions(["geolocation"])
    await page.context.set_geolocation({"latitude": 48.9245, "longitude": 2.3602, "accuracy": 5})
    found["correction-phone"] = await axe(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the form is {width} px wide"

    await page.select_option("#c-category", "public_order")
    await page.select_option("#c-severity", "critical")
    await page.fill("#c-tags", "foule, porte h")
    await page.get_by_role("button", name=t("My position")).click()
    await expect(page.locator("#lat")).to_have_value("48.92450")
    await screenshot(page, "phone-correction")
    await page.click("#enregistrer-correction")

    await expect(page).to_have_url(re.compile(rf"/entrees/{entry['id']}#historique$"))
    history = page.locator("#historique")
    await expect(history).to_contain_text(t("Critical"))
    await expect(history).to_contain_text("48.92450, 2.36020")
    stored = await web.api("chef", "GET", f"/entries/{entry['id']}")
    assert stored["category"] == "public_order" and stored["severity"] == "critical"
    assert stored["tags"] == ["foule", "porte h"] and stored["version"] == 3
    assert stored["location"] == {"type": "Point", "coordinates": [2.3602, 48.9245]}
    assert not {k: v for k, v in found.items() if v}, report(found)
    assert web.errors == []


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_an_officer_moves_the_entry_by_clicking_the_correction_map(
    web: Web, viewport: str
) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    size = VIEWPORTS[viewport]  # 1280×800, 390×844
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    entry = await web.entry(
        "hugo.faure",
        title="Barrière renversée parvis nord",
        label=PUBLIC,
        location={"type": "Point", "coordinates": [2.3601, 48.9245]},
    )
    page = await web.signed_in(
        "hugo.faure", f"/entrees/{entry['id']}/corriger", bypass_csp=True, viewport=size
    )
    # The picker opens on the entry's place: one pin, the fields filled, no second map.
    picker = page.locator("#carte-correction")
    await expect(picker).to_have_attribute("role", "application")
    await expect(picker.locator(".leaflet-marker-icon")).to_have_count(1)
    await expect(page.locator("#lat")).to_have_value("48.92450")
    await expect(page.locator("#lon")).to_have_value("2.36010")
    await expect(page.locator("[data-map=show]")).to_have_count(0)
    found = {f"correction-map-{viewport}": await axe(page)}
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], f"the form is {width} px wide"

    # A click up and to the right of the pin (clear of the venues' dots) moves it there.
    await picker.scroll_into_view_if_needed()
    box = await picker.bounding_box()
    assert box is not None
    await picker.click(position={"x": box["width"] / 2 + 80, "y": box["height"] / 2 - 60})
    await expect(page.locator("#lat")).not_to_have_value("48.92450")
    lat = float(await page.locator("#lat").input_value())
    lon = float(await page.locator("#lon").input_value())
    assert 48.9245 < lat < 48.9275 and 2.3601 < lon < 2.3650, (lat, lon)
    await expect(picker.locator(".leaflet-marker-icon")).to_have_count(1)
    await expect(page.locator("#place")).to_have_value("")
    await screenshot(page, f"{viewport}-correction-map")
    await page.click("#enregistrer-correction")

    await expect(page).to_have_url(re.compile(rf"/entrees/{entry['id']}#historique$"))
    await expect(page.locator("#historique > li").first).to_contain_text(f"{lat:.5f}, {lon:.5f}")
    stored = await web.api("hugo.faure", "GET", f"/entries/{entry['id']}")
    assert stored["version"] == 2
    assert stored["location"] == {"type": "Point", "coordinates": [lon, lat]}
    assert not {k: v for k, v in found.items() if v}, report(found)
    assert web.errors == []
