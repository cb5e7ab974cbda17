"""A steward compares two versions of a product and follows its lineage to the product
derived from it; the comparison and the lineage are axe-clean at 1280x800 and on a phone
(390x844)."""

from __future__ import annotations

from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, PHONE, SQLITE_ONLY, Web, screenshot, t, unavailable

pytestmark = SQLITE_ONLY

LAPTOP = {"width": 1280, "height": 800}
SCHEMA = {
    "fields": [
        {"name": "hopital", "type": "string", "title": "Hôpital"},
        {"name": "departement", "type": "string", "title": "Département"},
        {"name": "lits", "type": "integer", "title": "Lits disponibles"},
    ],
    "primaryKey": ["hopital"],
}


async def test_compare_versions_and_follow_the_lineage(web: Web) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("SANTE")
    await web.user("claire.martin", "SANTE", roles=[Role.DATA_STEWARD])
    product = await web.api(
        "claire.martin",
        "POST",
        "/products",
        json={
            "slug": "capacite",
            "name": "Capacité hospitalière",
            "table_schema": SCHEMA,
            "label": {"level": "NP", "need_to_know": [], "audience": []},
        },
    )
    pid = product["id"]
    for data in (
        "hopital;departement;lits\nBichat;75;40\nAvicenne;93;12\nCochin;75;18\n",
        "hopital;departement;lits\nBichat;75;35\nAvicenne;93;12\nBeaujon;92;22\n",
    ):
        await web.api("claire.martin", "POST", f"/products/{pid}/imports",
                      files={"file": ("lits.csv", data.encode(), "text/csv")})  # fmt: skip
    await web.api(
        "claire.martin",
        "POST",
        "/products/derived",
        json={
            "slug": "lits-departement",
            "name": "Lits par département",
            "definition": {
                "sources": [{"product": pid}],
                "group_by": ["departement"],
                "measures": [{"fn": "sum", "field": "lits", "name": "lits"}],
            },
        },
    )
    found = {}
    page = await web.signed_in("claire.martin", f"/donnees/{pid}", bypass_csp=True,
                               viewport=LAPTOP)  # fmt: skip
    await page.get_by_role("link", name=t("Compare with the previous one")).click()
    await expect(page.locator("h1")).to_contain_text("2")
    changes = page.locator("#table-differences tbody tr")
    await expect(changes).to_have_count(3)  # Beaujon added, Bichat changed, Cochin removed
    await expect(changes.nth(1)).to_contain_text("40")
    found["diff-desktop"] = await axe(page)
    await screenshot(page, "product-diff-desktop")
    await page.get_by_role("link", name=t("Back to the product")).click()
    lineage = page.locator("#lignage-liste")
    await lineage.get_by_role("link", name="Lits par département").click()
    await expect(page.locator("h1")).to_have_text("Lits par département")
    await expect(page.locator("#lignage-liste")).to_contain_text("Capacité hospitalière")
    found["lineage-desktop"] = await axe(page)

    phone = await web.signed_in("claire.martin", f"/donnees/{pid}/comparer?de=1&a=2",
                                bypass_csp=True, viewport=PHONE)  # fmt: skip
    await expect(phone.locator("#table-differences tbody tr")).to_have_count(3)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    found["diff-phone"] = await axe(phone)
    await screenshot(phone, "product-diff-phone")
    assert not any(found.values()), report(found)
