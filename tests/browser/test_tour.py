"""The guided tour: shown on the first visit of the feed, stepped through, not shown again once
finished; replayed from the help page."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.web import SQLITE_ONLY, Web, t

pytestmark = SQLITE_ONLY  # the tour is markup and script; its one preference row is plain

STEPS = [  # title, what the step points at
    ("Welcome to Hypervision", None),
    ("The main courante", '[data-tour-step="1"]'),
    ("Write an entry", '[data-tour-step="2"]'),
    ("Search", '[data-tour-step="3"]'),
    ("Follow", '[data-tour-step="4"]'),
    ("Help", '[data-tour-step="5"]'),
]


async def tour_finished(page: Page, button: str) -> None:
    """Click ``button`` ("next" on the last step, or "skip"): the tour closes and says so."""
    async with page.expect_response(lambda r: r.url.endswith("/visite")) as answer:
        await page.click(f'#visite [data-tour="{button}"]')
    assert (await answer.value).status == 204
    await expect(page.locator("#visite")).not_to_have_attribute("open", "")
    await expect(page.locator(".hv-tour-target")).to_have_count(0)


async def test_tour_on_first_visit_then_replayed_from_help(web: Web) -> None:
    await web.org("PP")
    await web.user("manon.andre", "PP", tour_done=False)
    page = await web.signed_in("manon.andre")

    dialog = page.locator("dialog#visite")
    await expect(dialog).to_have_attribute("open", "")
    # not modal and it does not take the focus: the officer may start working at once
    await expect(dialog.locator('[data-tour="next"]')).not_to_be_focused()
    for number, (title, target) in enumerate(STEPS, start=1):
        await expect(dialog).to_have_attribute("data-step", str(number))
        await expect(page.locator("#visite-titre")).to_have_text(t(title))
        assert (await page.locator("#visite-texte").inner_text()).strip()
        if target:
            await expect(page.locator(".hv-tour-target")).to_have_count(1)
            await expect(page.locator(target).first).to_have_class(
                re.compile(r"\bhv-tour-target\b")
            )
        if number < len(STEPS):
            await page.click('#visite [data-tour="next"]')
    await tour_finished(page, "next")

    await page.reload()
    await expect(page.locator("#fil")).to_be_visible()
    await expect(dialog).not_to_have_attribute("open", "")
    assert await page.locator("body").get_attribute("data-tour") is None
    await page.keyboard.press("n")  # nothing modal in the way any more
    await page.wait_for_url("**/main-courante/nouvelle")

    await page.goto("/aide")
    await page.click("#revoir-visite")
    await page.wait_for_url(f"{web.base}/main-courante")
    await expect(dialog).to_have_attribute("open", "")
    await expect(page.locator("#visite-titre")).to_have_text(t(STEPS[0][0]))
    await tour_finished(page, "skip")
    await page.reload()
    await expect(page.locator("#fil")).to_be_visible()
    await expect(dialog).not_to_have_attribute("open", "")
