"""The zone list of the map page: each zone's protection level in words (never an empty
badge), and saving a zone is confirmed."""

from __future__ import annotations

import json

from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.web import SQLITE_ONLY, Web

pytestmark = SQLITE_ONLY  # markup; zones are tested on both engines in tests/geo

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.32, 48.86], [2.33, 48.86], [2.33, 48.87], [2.32, 48.87], [2.32, 48.86]]],
}


async def test_zone_list_says_each_protection_level_in_words(web: Web) -> None:
    await web.org("PP")
    await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,), clearance="DR")
    for name, level in (("Fan zone", "NP"), ("Périmètre sécurité", "DR")):
        await web.api(
            "sophie.martin",
            "POST",
            "/zones",
            json={"name": name, "geometry": SQUARE, "label": {"level": level, "audience": []}},
        )
    page = await web.signed_in("sophie.martin", "/carte")
    items = page.locator("#zones-titre + .hv-follows > li")
    await expect(items).to_have_count(2)
    open_zone = items.filter(has_text="Fan zone").locator(".hv-level")
    await expect(open_zone).to_have_text("Non protégé")
    restricted = items.filter(has_text="Périmètre sécurité").locator(".hv-level")
    await expect(restricted).to_have_text("Diffusion restreinte")
    for badge in await page.locator(".hv-level").all():
        assert (await badge.inner_text()).strip(), "an empty protection badge"


async def test_saving_a_zone_is_confirmed(web: Web) -> None:
    await web.org("PP")
    await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    page = await web.signed_in("sophie.martin", "/carte")
    await expect(page.locator("#zone-enregistree")).to_have_count(0)
    await page.click("#dessin summary")
    # The drawing itself is tested in test_map.py: here the outline is given as drawn.
    await page.locator("#zone-geometrie").evaluate(
        "(input, shape) => { input.value = shape; }", json.dumps(SQUARE)
    )
    await page.fill("#zone-nom", "Périmètre fan zone")
    await page.locator("#zone-form button[type=submit]").click()
    notice = page.locator("#zone-enregistree.fr-alert--success")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("Périmètre fan zone")
    await expect(page.locator(".hv-follows")).to_contain_text("Périmètre fan zone")
    # Only right after saving: the page shown again later does not say it again.
    await page.goto("/carte")
    await expect(page.locator("#zone-enregistree")).to_have_count(0)
