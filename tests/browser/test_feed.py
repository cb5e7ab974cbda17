"""The feed's filters live in the address; a filtered feed saved as a view and reopened; moving
through the cards with the keyboard."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from tests.browser.web import SQLITE_ONLY, Web, t

ENTRIES = [  # title, category, severity
    ("Point météo de 14 h", "weather", "info"),
    ("Ralentissement sur l'A1", "traffic", "minor"),
    ("Colis suspect gare du Nord", "security", "critical"),
    ("Malaise d'un spectateur tribune sud", "health", "major"),
]


def filters(page: Page) -> dict[str, list[str]]:
    """The non-empty parameters of the page's address."""
    return parse_qs(urlsplit(page.url).query)


async def titles(page: Page) -> list[str]:
    return [s.strip() for s in await page.locator("#fil li.hv-card h3").all_inner_texts()]


async def test_filters_and_saved_views(web: Web) -> None:
    await web.org("PP")
    await web.org("SAMU")
    await web.user("hugo.faure", "PP")
    await web.user("mehdi.kaci", "SAMU")
    for title, category, severity in ENTRIES:
        await web.entry("hugo.faure", title=title, category=category, severity=severity)
    await web.entry(
        "mehdi.kaci",
        title="Évacuation sanitaire porte A",
        category="health",
        severity="minor",
        label={"level": "NP", "audience": []},
    )
    page = await web.signed_in("hugo.faure")
    everything = [
        "Évacuation sanitaire porte A",
        *reversed([title for title, _, _ in ENTRIES]),
    ]
    assert await titles(page) == everything  # newest first
    await expect(page.locator(".hv-views")).to_have_count(0)  # no saved view yet

    filter_button = page.locator("#filtres").get_by_role("button", name=t("Filter"))
    await page.select_option("#f-category", "health")
    await filter_button.click()
    await page.wait_for_url("**/main-courante?*category=health*")
    assert filters(page) == {"category": ["health"]}
    assert await titles(page) == [
        "Évacuation sanitaire porte A",
        "Malaise d'un spectateur tribune sud",
    ]

    await page.select_option("#f-organisation", "PP")
    await filter_button.click()
    await page.wait_for_url("**organisation=PP*")
    assert filters(page) == {"category": ["health"], "organisation": ["PP"]}
    assert await titles(page) == ["Malaise d'un spectateur tribune sud"]

    await page.fill("#v-name", "Santé PP")
    await page.get_by_role("button", name=t("Save the view")).click()
    await page.wait_for_url("**/main-courante?category=health&organisation=PP")
    view = page.locator(".hv-views a", has_text="Santé PP")
    await expect(view).to_have_count(1)

    await page.get_by_role("link", name=t("Clear")).click()
    await page.wait_for_url(f"{web.base}/main-courante")
    assert await titles(page) == everything
    await expect(page.locator("#f-category")).to_have_value("")

    await view.click()
    await page.wait_for_url("**/main-courante?category=health&organisation=PP")
    assert await titles(page) == ["Malaise d'un spectateur tribune sud"]
    await expect(page.locator("#f-category")).to_have_value("health")
    await expect(page.locator("#f-organisation")).to_have_value("PP")

    # Text and severity, from a clean feed; the `/` key goes to the text box.
    await page.goto("/main-courante")
    await page.keyboard.press("/")
    await expect(page.locator("#f-q")).to_be_focused()
    await page.keyboard.type("colis")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**q=colis*")
    assert filters(page) == {"q": ["colis"]}
    assert await titles(page) == ["Colis suspect gare du Nord"]
    await page.goto("/main-courante?severity=minor&severity=info")
    assert await titles(page) == [
        "Évacuation sanitaire porte A",
        "Ralentissement sur l'A1",
        "Point météo de 14 h",
    ]
    await page.goto("/main-courante?severity=gravissime")
    await expect(page.locator(".fr-alert--warning")).to_contain_text("gravissime")
    assert await titles(page) == everything


@SQLITE_ONLY  # keys and focus in the page: the same on both engines
async def test_keyboard_moves_through_the_feed(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    ids = [(await web.entry("hugo.faure", title=title))["id"] for title, _, _ in ENTRIES[:3]]
    page = await web.signed_in("hugo.faure")
    links = [page.locator(f"#e-{i} .hv-card__link") for i in reversed(ids)]
    await page.keyboard.press("j")
    await expect(links[0]).to_be_focused()
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await expect(links[2]).to_be_focused()
    await page.keyboard.press("j")  # stays on the last one
    await expect(links[2]).to_be_focused()
    await page.keyboard.press("k")
    await expect(links[1]).to_be_focused()
    await page.keyboard.press("Enter")  # opens it beside the feed (HTMX)
    await expect(page.locator("#detail #entree")).to_have_attribute("data-entry", ids[1])
    await page.wait_for_url(f"**/main-courante?entree={ids[1]}")
    await page.keyboard.press("?")
    await page.wait_for_url("**/aide")
    await page.keyboard.press("n")
    await page.wait_for_url("**/main-courante/nouvelle")
    await expect(page.locator("#title")).to_be_focused()
