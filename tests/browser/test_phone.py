"""The main courante on a phone (390×844): the entries come first, the filters wait behind one
button with the active ones shown as removable tags, the cards carry their own numbers, and
the menu has no keyboard hints."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, PHONE, SQLITE_ONLY, Web, screenshot, t, unavailable

pytestmark = SQLITE_ONLY


async def top_of_first_card(page: Page) -> tuple[float, float]:
    box = await page.locator("#fil li.hv-card").first.bounding_box()
    assert box is not None
    return box["y"], box["y"] + box["height"]


async def test_first_entry_visible_without_scrolling(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.entry("hugo.faure", title="Colis suspect gare du Nord", severity="critical")
    page = await web.signed_in("hugo.faure", viewport=PHONE)
    top, bottom = await top_of_first_card(page)
    assert bottom <= PHONE["height"], f"the first entry spans {top:.0f}–{bottom:.0f} px"
    assert await page.evaluate("window.scrollY") == 0
    # The filters wait behind their button; the text search stays at hand.
    await expect(page.locator("#f-q")).to_be_visible()
    await expect(page.locator("#f-category")).to_be_hidden()
    await expect(page.locator("#v-name, .hv-views, #vues-titre")).to_be_hidden()
    # Nothing wider than the screen: no number or text cut at the left edge.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    await screenshot(page, "phone-feed")


async def test_filters_behind_one_button_and_active_ones_as_tags(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.entry("hugo.faure", title="Malaise tribune sud", category="health")
    await web.entry("hugo.faure", title="Ralentissement sur l'A1", category="traffic")
    page = await web.signed_in("hugo.faure", viewport=PHONE)

    toggle = page.get_by_role("button", name=t("Filters"), exact=True)
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#f-category")).to_be_visible()
    await page.select_option("#f-category", "health")
    await page.select_option("#f-severity", "info")
    await page.get_by_role("button", name=t("Apply the filters")).click()
    await page.wait_for_url("**category=health*")
    assert parse_qs(urlsplit(page.url).query) == {"category": ["health"], "severity": ["info"]}
    await expect(page.locator("#fil li.hv-card h3")).to_have_text(["Malaise tribune sud"])

    # Collapsed again, the active filters shown as tags; the first entry still in view.
    await expect(page.locator("#f-category")).to_be_hidden()
    tags = page.locator("#filtres-actifs a.fr-tag")
    await expect(tags).to_have_text([t("Health"), t("Information")])
    _, bottom = await top_of_first_card(page)
    assert bottom <= PHONE["height"], f"the first entry ends {bottom:.0f} px down"

    await tags.filter(has_text=t("Health")).click()  # removes that filter only
    await page.wait_for_url("**/main-courante?severity=info")
    await expect(page.locator("#fil li.hv-card")).to_have_count(2)
    await expect(page.locator("#filtres-actifs a.fr-tag")).to_have_text([t("Information")])


async def test_cards_numbered_inside_and_coloured_by_severity(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    for n in range(31):  # one more than a page: the "more" button shows
        await web.entry("hugo.faure", title=f"Point {n}", severity="info")
    await web.entry("hugo.faure", title="Colis suspect", severity="critical")
    page = await web.signed_in("hugo.faure", viewport=PHONE)
    first = page.locator("#fil li.hv-card").first
    await expect(first.locator(".hv-card__title")).to_have_text("Colis suspect")
    number = first.locator(".hv-card__num")
    card, num = await first.bounding_box(), await number.bounding_box()
    assert card is not None and num is not None
    assert card["x"] >= 0 and num["x"] > card["x"], "the number sits inside its card"
    assert num["width"] > 4, "the number is shown (a CSS counter in the card)"
    border = "e => getComputedStyle(e).borderLeftColor"
    assert await first.evaluate(border) == "rgb(206, 5, 0)"  # critical: red, not blue
    assert await page.locator("#fil li.hv-card").nth(1).evaluate(border) != "rgb(206, 5, 0)"
    more = page.locator("#plus")
    await expect(more).to_be_attached()
    for pseudo in ("::before", "::marker"):  # the DSFR numbers list items with either
        marker = f"e => getComputedStyle(e, '{pseudo}').content"
        assert await more.evaluate(marker) in ("none", "normal"), "the button is not numbered"
        last = page.locator("#fil li.hv-card").nth(29)
        assert await last.evaluate(marker) in ("none", "normal"), "no number out of the card"
    counter = "e => getComputedStyle(e, '::before').content"
    assert "counter(hv-card)" in await number.evaluate(counter)


async def test_phone_menu_without_keyboard_hints(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", viewport=PHONE)
    await page.locator("#bouton-menu").click()
    menu = page.locator("#menu-principal")
    await expect(menu.get_by_role("link", name=t("New entry"))).to_be_visible()
    for hint in await menu.locator("kbd").all():
        await expect(hint).to_be_hidden()
    await expect(page.locator("#pied .hv-keys-hint")).to_be_hidden()
    await expect(page.locator("footer.fr-footer .fr-footer__body")).to_be_visible()


async def test_phone_pages_pass_axe(web: Web) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("PP")
    await web.org("SAMU")
    await web.user("hugo.faure", "PP")
    entry = await web.entry("hugo.faure", title="Malaise tribune sud", category="health")
    page = await web.signed_in(
        "hugo.faure", "/main-courante?category=health", viewport=PHONE, bypass_csp=True
    )
    found: dict[str, list[dict[str, Any]]] = {}
    await expect(page.locator("#bouton-filtres")).to_have_text(f"{t('Filters')} (1)")
    await page.locator("#bouton-filtres").click()
    await expect(page.locator("#f-category")).to_be_visible()
    found["feed"] = await axe(page)
    for name, path in (
        ("new entry", "/main-courante/nouvelle"),
        ("entry", f"/entrees/{entry['id']}"),
        ("inbox", "/boite"),
    ):
        await page.goto(path)
        if name == "entry":
            await expect(page.locator("#diffusion-lecteurs")).to_be_visible()
        found[name] = await axe(page)
        await screenshot(page, f"phone-{name.replace(' ', '-')}")
    found = {name: violations for name, violations in found.items() if violations}
    assert not found, report(found)


async def test_map_filters_fold_so_the_map_comes_first(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", "/carte", viewport=PHONE)
    await expect(page.locator("#f-category")).to_be_hidden()
    top = await page.locator("#carte").evaluate("e => e.getBoundingClientRect().top")
    assert top < PHONE["height"], f"the map starts {top:.0f} px down"
    await page.locator("#carte-bouton-filtres").click()
    await expect(page.locator("#f-category")).to_be_visible()
    desktop = await web.signed_in("hugo.faure", "/carte")
    await expect(desktop.locator("#f-category")).to_be_visible()
    await expect(desktop.locator("#carte-bouton-filtres")).to_be_hidden()
