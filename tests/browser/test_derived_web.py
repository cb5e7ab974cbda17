"""A data steward creates a derived product from the catalogue with the form, by keyboard and
mouse: the source and name (step 1, sent with Enter), then groups and a figure (step 2); its
page shows the computed rows. Both steps, and a refusal, are axe-clean at 1280 px and on a
phone (390x844), no wider than the phone."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, PHONE, SQLITE_ONLY, Web, screenshot, t, unavailable

pytestmark = SQLITE_ONLY

SCHEMA = {
    "fields": [
        {"name": "hopital", "type": "string", "title": "Hôpital"},
        {"name": "departement", "type": "string", "title": "Département"},
        {"name": "lits", "type": "integer", "title": "Lits disponibles"},
    ],
    "primaryKey": ["hopital"],
}
CSV = "hopital;departement;lits\nBichat;75;40\nAvicenne;93;12\nCochin;75;18\n"


async def fits_a_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


async def test_a_steward_derives_a_product_with_the_form(web: Web) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("SANTE")
    await web.user("claire.martin", "SANTE", roles=[Role.DATA_STEWARD])
    product = await web.api(
        "claire.martin",
        "POST",
        "/products",
        json={"slug": "capacite", "name": "Capacité hospitalière", "table_schema": SCHEMA,
              "label": {"level": "NP", "need_to_know": [], "audience": []}},
    )  # fmt: skip
    pid = product["id"]
    await web.api("claire.martin", "POST", f"/products/{pid}/imports",
                  files={"file": ("lits.csv", CSV.encode(), "text/csv")})  # fmt: skip

    found = {}
    page = await web.signed_in("claire.martin", "/donnees", bypass_csp=True)
    await page.get_by_role("link", name=t("Create a derived product")).click()
    await expect(page.locator("h1")).to_have_text(t("Create a derived product"))
    found["step1-desktop"] = await axe(page)
    # Step 1 by keyboard: the source, then Tab to the name, typed, sent with Enter.
    await page.get_by_label(t("Source product"), exact=True).select_option(
        label="Capacité hospitalière (SANTE)"
    )
    await page.get_by_label(t("Source product"), exact=True).focus()
    await page.keyboard.press("Tab")
    await expect(page.locator("#derive-source2")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#derive-name")).to_be_focused()
    await page.keyboard.type("Lits par département")
    await page.keyboard.press("Enter")
    await expect(page.locator("#derive-formulaire")).to_be_visible()
    await expect(page.locator("#derive-sources")).to_contain_text("Capacité hospitalière")
    found["step2-desktop"] = await axe(page)
    await screenshot(page, "product-derive-desktop")

    # Step 2: "group" chosen with the arrow keys, then the group and one figure.
    await page.locator("#shape-columns").focus()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#shape-groups")).to_be_checked()
    await page.get_by_label(t("Group the rows by")).select_option(label="Département")
    await page.locator("#measure-fn-0").select_option(label=t("Sum"))
    await page.locator("#measure-field-0").select_option(label="Lits disponibles")
    await page.locator("#measure-name-0").fill("Lits")
    await page.get_by_role("button", name=t("Create the derived product")).click()
    await expect(page).to_have_url(re.compile(r"/donnees/[0-9a-f-]{36}$"))
    await expect(page.locator("h1")).to_have_text("Lits par département")
    rows = page.locator("#table-lignes tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("58")  # 75: 40 + 18
    await expect(rows.nth(1)).to_contain_text("12")

    phone = await web.signed_in("claire.martin", "/donnees/deriver", bypass_csp=True,
                                viewport=PHONE)  # fmt: skip
    await fits_a_phone(phone)
    found["step1-phone"] = await axe(phone)
    await phone.locator("#derive-source").select_option(pid)
    await phone.locator("#derive-name").fill("Lits par hôpital")
    await phone.get_by_role("button", name=t("Continue")).click()
    await expect(phone.locator("#derive-formulaire")).to_be_visible()
    await fits_a_phone(phone)
    found["step2-phone"] = await axe(phone)
    await screenshot(phone, "product-derive-phone")
    # A figure without its column's name: refused in words, the control pointed at.
    await phone.locator("label[for=shape-groups]").click()  # DSFR draws the radio on its label
    await phone.locator("#group-0").select_option("a.hopital")
    await phone.locator("#measure-fn-0").select_option("count")
    await phone.get_by_role("button", name=t("Create the derived product")).click()
    await expect(phone.locator("#derive-erreur")).to_contain_text("donnez un nom")
    await expect(phone.locator("#measure-name-0")).to_have_attribute("aria-invalid", "true")
    await expect(phone.locator("#group-0")).to_have_value("a.hopital")  # kept
    await fits_a_phone(phone)
    found["refused-phone"] = await axe(phone)
    assert not any(found.values()), report(found)
