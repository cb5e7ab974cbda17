"""The address search box of the new-entry form: a keyboard-usable combobox that places the
entry on the map, and "Ma position" through the browser's geolocation."""

from __future__ import annotations

import re

from playwright.async_api import expect

from hypervision.demo.addresses import DEMO_FILE
from hypervision.geo import place_import
from tests.browser.test_accessibility import axe
from tests.browser.web import SQLITE_ONLY, Web, screenshot, t
from tests.factories import ADMIN

pytestmark = SQLITE_ONLY  # the search itself is tested on both engines in tests/geo

NEW = "/main-courante/nouvelle"
REFUSED = (
    "Your browser refused to give your position: allow it in its settings, or pick an address."
)


async def demo_addresses(web: Web) -> None:
    report = await place_import.import_file(
        sessions=web.app.state.system_sessions, actor=ADMIN, path=DEMO_FILE
    )
    assert report.imported > 300


async def test_address_search_with_the_keyboard_places_the_entry(web: Web) -> None:
    await demo_addresses(web)
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", NEW)
    box = page.get_by_role("combobox", name=re.compile(t("Address or venue")))
    await box.click()
    await box.press_sequentially("12 rue jules rimt")  # a typo, a missing letter
    await box.press("Enter")  # at once, before the list: searches, does not send the form
    options = page.locator("#adresse-liste").get_by_role("option")
    await expect(options.first).to_have_text("12 Rue Jules Rimet, 93200 Saint-Denis")
    await expect(box).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("[data-place-search] [role=status]")).to_contain_text("8")

    await box.press("ArrowDown")
    await expect(box).to_have_attribute("aria-activedescendant", "adresse-option-0")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await box.press("ArrowUp")  # wraps to the last option
    await expect(box).to_have_attribute("aria-activedescendant", "adresse-option-7")
    await box.press("ArrowDown")
    await box.press("Enter")  # picks the place, does not send the form
    await expect(page).to_have_url(re.compile(NEW + "$"))
    await expect(box).to_have_value("12 Rue Jules Rimet, 93200 Saint-Denis")
    await expect(box).to_have_attribute("aria-expanded", "false")
    await expect(page.locator("#adresse-liste")).to_be_hidden()
    lat = float(await page.locator("#lat").input_value())
    lon = float(await page.locator("#lon").input_value())
    assert abs(lat - 48.924) < 0.002 and abs(lon - 2.36) < 0.002
    # The entry map listens to the box: its marker and its view move to the place.
    await expect(page.locator("#carte-saisie .leaflet-marker-icon")).to_have_count(1)
    centre = await page.evaluate(
        "() => { const p = document.querySelector('#carte-saisie .leaflet-marker-icon');"
        " const m = document.querySelector('#carte-saisie').getBoundingClientRect();"
        " const r = p.getBoundingClientRect();"
        " return [r.left + r.width / 2 - m.left - m.width / 2, r.bottom - m.top - m.height / 2]; }"
    )
    assert abs(centre[0]) < 5 and abs(centre[1]) < 5, centre  # centred on the place

    # Escape closes the list, a second Escape clears the box.
    await box.fill("")
    await box.press_sequentially("sait-denis")
    await expect(options.first).to_contain_text("Saint-Denis")
    await box.press("Escape")
    await expect(page.locator("#adresse-liste")).to_be_hidden()
    await box.press("Escape")
    await expect(box).to_have_value("")
    assert web.errors == []


async def test_venues_and_nothing_found(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", NEW)
    box = page.get_by_role("combobox", name=re.compile(t("Address or venue")))
    await box.press_sequentially("stade de frnce")
    option = page.locator("#adresse-liste").get_by_role("option").first
    await expect(option).to_have_text("Stade de France")
    await option.click()
    await expect(page.locator("#place")).to_have_value("Stade de France")
    await expect(page.locator("#lat")).to_have_value("48.92450")
    await box.fill("")
    await box.press_sequentially("qxzvw")
    await expect(page.locator("[data-place-search] [role=status]")).to_have_text(
        t("No address found.")
    )
    await expect(page.locator("#adresse-liste").get_by_role("option")).to_have_count(0)
    assert web.errors == []


async def test_my_position_fills_the_coordinates(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", NEW)
    await page.context.grant_permissions(["geolocation"])
    await page.context.set_geolocation({"latitude": 48.8557, "longitude": 2.2986, "accuracy": 12})
    await page.get_by_role("button", name=t("My position")).click()
    await expect(page.locator("#lat")).to_have_value("48.85570")
    await expect(page.locator("#lon")).to_have_value("2.29860")
    await expect(page.locator("[data-place-search] [role=status]")).to_have_text(
        t("Your position, to within %(m)s m.", m=12)
    )
    await expect(page.locator("#carte-saisie .leaflet-marker-icon")).to_have_count(1)
    assert web.errors == []


async def test_refused_position_says_what_to_do(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", NEW)
    await page.context.clear_permissions()  # the browser refuses (headless: no prompt)
    await page.get_by_role("button", name=t("My position")).click()
    await expect(page.locator("[data-place-search] [role=status]")).to_have_text(t(REFUSED))
    await expect(page.locator("#lat")).to_have_value("")


async def test_phone_size_open_list_fits_and_passes_axe(web: Web) -> None:
    await demo_addresses(web)
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", NEW, bypass_csp=True)  # axe is injected
    await page.set_viewport_size({"width": 390, "height": 844})
    box = page.get_by_role("combobox", name=re.compile(t("Address or venue")))
    await box.scroll_into_view_if_needed()
    await box.press_sequentially("avenue president wilsn")
    listbox = page.locator("#adresse-liste")
    await expect(listbox.get_by_role("option").first).to_have_text(
        "Avenue du Président Wilson, 93200 Saint-Denis"
    )
    await box.press("ArrowDown")
    frame = await listbox.bounding_box()
    assert frame is not None and frame["x"] >= 0 and frame["x"] + frame["width"] <= 390
    locate = page.get_by_role("button", name=t("My position"))
    button = await locate.bounding_box()
    assert button is not None and button["x"] + button["width"] <= 390  # not pushed off-screen
    await screenshot(page, "adresse-telephone")
    violations = await axe(page)
    assert violations == [], violations
    await listbox.get_by_role("option").first.click()
    await expect(page.locator("#lat")).not_to_have_value("")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await screenshot(page, "adresse-bureau")
