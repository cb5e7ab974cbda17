"""Plain words instead of jargon: no "Markdown" hint, the synthesis analysis shown as rendered
headings, a duplicate picked among recent entries by title (no identifier to paste), no
keyboard hints on a phone."""

from __future__ import annotations

from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.web import SQLITE_ONLY, Web, t

pytestmark = SQLITE_ONLY  # markup and script; the services run on both engines elsewhere

PUBLIC = {"level": "NP", "audience": []}


async def test_analysis_shown_as_rendered_headings_and_no_markdown_jargon(web: Web) -> None:
    await web.org("CNCS")
    await web.user("claire", "CNCS", roles=[Role.WATCH_OFFICER])
    synthesis = await web.api(
        "claire", "POST", "/syntheses", json={"title": "Point de 18 h", "scope": {"hours": 24}}
    )
    page = await web.signed_in("claire", f"/syntheses/{synthesis['id']}")
    preview = page.locator("#apercu-analyse [data-preview]")
    # The skeleton's "## Situation générale" reads as a heading, not as two hashes.
    await expect(preview.locator("h2").first).to_have_text("Situation générale")
    await expect(preview).not_to_contain_text("##")
    await expect(page.locator("main")).not_to_contain_text("Markdown")
    # Typed, saved in the background: the preview follows.
    await page.fill("#r-narrative", "## Bilan de la soirée\n\n- calme revenu\n")
    await expect(page.locator("#brouillon-etat")).to_contain_text("Brouillon enregistré")
    await expect(preview.locator("h2")).to_have_text("Bilan de la soirée")
    await expect(preview.locator("li")).to_have_text("calme revenu")

    new_entry = await web.signed_in("claire", "/main-courante/nouvelle")
    await expect(new_entry.locator("main")).not_to_contain_text("Markdown")
    assert not web.errors, web.errors


async def test_duplicate_picked_among_recent_entries_by_title(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    first = await web.entry("hugo.faure", title="Fumée rue de Rivoli", label=PUBLIC)
    await web.entry("hugo.faure", title="Colis place de la Concorde", label=PUBLIC)
    again = await web.entry("hugo.faure", title="Incendie rue de Rivoli", label=PUBLIC)

    page = await web.signed_in("sophie.martin", f"/entrees/{again['id']}")
    picker = page.locator("select#t-duplicate")
    await expect(picker).to_be_visible()
    options = picker.locator("option:not([disabled])")
    await expect(options).to_have_count(2)  # the others, not the entry itself
    await expect(options.first).to_contain_text("Colis place de la Concorde")  # newest first
    await expect(options.nth(1)).to_contain_text("Fumée rue de Rivoli")
    await picker.select_option(label=(await options.nth(1).inner_text()).strip())
    await page.get_by_role("button", name=t("Mark as duplicate")).click()
    await expect(page).to_have_url(f"{web.base}/entrees/{again['id']}")
    link = page.get_by_role("link", name=t("another entry"))
    await expect(link).to_have_attribute("href", f"/entrees/{first['id']}")


async def test_no_keyboard_hints_on_a_phone(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", "/main-courante")
    shortcut = page.locator("#menu-principal a[aria-keyshortcuts=n] kbd")
    hint = page.locator("footer .hv-kbd-hint")
    await expect(shortcut).to_be_visible()  # a desktop: the keys are worth saying
    await expect(hint).to_be_visible()

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#bouton-menu").click()
    menu_link = page.locator("#menu-principal a[aria-keyshortcuts=n]")
    await expect(menu_link).to_be_visible()
    await expect(shortcut).to_be_hidden()
    await expect(hint).to_be_hidden()
