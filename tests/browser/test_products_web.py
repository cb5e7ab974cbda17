"""A data steward imports a CSV through the product page's form and sees its rows; the page
and the catalogue are axe-clean on a desktop, the page on a phone too (its tables scroll
inside their frames)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, PHONE, SQLITE_ONLY, Web, screenshot, t, unavailable

pytestmark = SQLITE_ONLY

SCHEMA = {
    "fields": [
        {"name": "hopital", "type": "string", "title": "Hôpital"},
        {"name": "service", "type": "string", "title": "Service"},
        {"name": "lits", "type": "integer", "title": "Lits disponibles"},
        {"name": "commentaire", "type": "string", "title": "Commentaire du cadre de santé"},
    ]
}
CSV = (
    "hopital;service;lits;commentaire\n"
    "Bichat;Urgences;40;Tension sur les brancards depuis le début de matinée\n"
    "Avicenne;Réanimation;12;Deux lits supplémentaires ouverts à midi\n"
)


async def capacity(web: Web, **schema: Any) -> str:
    """Claire Martin, steward of SANTE, and her hospital capacity product (no rules); its page."""
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
            "description": "Lits disponibles par hôpital et service",
            "table_schema": {**SCHEMA, **schema},
            "rules": {"rows": [], "rows_default": "allow", "columns": []},
            "label": {"level": "NP", "need_to_know": [], "audience": []},
        },
    )
    return f"/donnees/{product['id']}"


async def test_a_steward_imports_a_csv_and_reads_its_rows(web: Web, tmp_path: Path) -> None:
    path = await capacity(web)
    page = await web.signed_in("claire.martin", "/donnees", bypass_csp=True)
    found = {"catalogue": await axe(page)}
    await screenshot(page, "products-desktop")
    await page.get_by_role("link", name="Capacité hospitalière").click()
    await expect(page).to_have_url(f"{web.base}{path}")
    await expect(page.locator("main")).to_contain_text(t("No data imported yet"))

    source = tmp_path / "capacite.csv"
    source.write_text(CSV, encoding="utf-8")
    await page.set_input_files("#import-fichier", source)
    await page.locator("label[for=mode-append]").click()  # DSFR draws the radio on its label
    await expect(page.get_by_label(t("Add the rows"))).to_be_checked()
    await page.get_by_role("button", name=t("Preview the import")).click()
    await expect(page.locator("#import-apercu tbody tr")).to_have_count(2)
    await expect(page.locator("#colonne-2")).to_have_value("lits")  # matched by name
    found["preview"] = await axe(page)
    # Each step of the import reaches this page through its live stream while the answer is
    # awaited (docs/adr/0029): the bar moves and says which step runs.
    seen: list[tuple[str, float, str]] = []
    await page.expose_function("importNote", lambda *note: seen.append(tuple(note)))
    await page.evaluate(
        """document.addEventListener("hv:import", (e) => window.importNote(e.detail.step,
        document.getElementById("import-barre").value,
        document.getElementById("import-etape").textContent))"""
    )
    await expect(page.locator("body[data-live=open]")).to_have_count(1)
    await page.get_by_role("button", name=t("Import"), exact=True).click()
    await page.wait_for_url(f"**{path}?importee=1#import")
    await expect(page.locator("#import-fait")).to_be_visible()
    # The last note ("quality", sent just before the answer) races the answer's redirect: a
    # note never delays its sender (live.notes), so under load the page may have left first.
    steps = [("read", 10), ("check", 40), ("write", 60), ("quality", 85)]
    assert [(step, value) for step, value, _ in seen] in (steps[:3], steps), seen
    assert seen[2][2] == t("Import under way: writing the rows…"), seen
    rows = page.locator("#table-lignes tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Bichat")
    await expect(page.locator("#table-versions tbody tr")).to_have_count(1)
    found["desktop"] = await axe(page)
    await screenshot(page, "product-desktop")

    phone = await web.signed_in("claire.martin", path, bypass_csp=True, viewport=PHONE)
    await expect(phone.locator("#table-lignes tbody tr")).to_have_count(2)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    found["phone"] = await axe(phone)
    await screenshot(phone, "product-phone")
    assert not any(found.values()), report(found)
    assert web.errors == []


async def test_a_product_with_places_shows_on_the_map(web: Web) -> None:
    await web.org("SPORTS")
    await web.user("celine.dumont", "SPORTS", roles=[Role.DATA_STEWARD])
    schema = {
        "fields": [
            {"name": "porte", "type": "string"},
            {"name": "entrees", "type": "integer"},
            {"name": "geometry", "type": "geojson"},
        ]
    }
    product = await web.api(
        "celine.dumont",
        "POST",
        "/products",
        json={"slug": "portes", "name": "Affluence aux portes", "table_schema": schema},
    )
    gates = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [2.3601, 48.9245]},
                "properties": {"porte": f"Porte {name}", "entrees": count},
            }
            for name, count in (("A", 850), ("D", 420))
        ],
    }
    await web.api(
        "celine.dumont",
        "POST",
        f"/products/{product['id']}/imports",
        files={"file": ("portes.geojson", json.dumps(gates), "application/geo+json")},
    )
    page = await web.signed_in("celine.dumont", "/carte?lat=48.9245&lon=2.3601&z=15")
    box = page.locator(f"[data-product='{product['id']}']")
    await page.locator(f"label[for='produit-{product['id']}']").click()
    await expect(box).to_have_attribute("data-features", "2")
    await expect(page.locator("#carte path.leaflet-interactive")).to_have_count(2)


async def test_a_steward_declares_a_quality_rule_with_the_keyboard(web: Web) -> None:
    """The stewards' form (no code) works with the keyboard alone; the rule's state and its
    failing rows show on the product page; both pages are axe-clean on a desktop and a phone."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("SANTE")
    await web.user("claire.martin", "SANTE", roles=[Role.DATA_STEWARD])
    product = await web.api(
        "claire.martin",
        "POST",
        "/products",
        json={"slug": "capacite", "name": "Capacité hospitalière", "table_schema": SCHEMA},
    )
    await web.api(
        "claire.martin",
        "POST",
        f"/products/{product['id']}/imports",
        files={"file": ("capacite.csv", CSV, "text/csv")},
    )
    path = f"/donnees/{product['id']}/qualite"
    page = await web.signed_in("claire.martin", path, bypass_csp=True)
    await page.locator("#regle-type").focus()
    await page.locator("#regle-type").select_option("range")
    await page.keyboard.press("Tab")
    await page.locator("#regle-champ").select_option("lits")
    await page.locator("#regle-max").fill("20")
    found = {"form": await axe(page)}
    await page.locator("#regle-note").focus()
    await page.keyboard.type("Au-delà de 20 lits, vérifier la saisie")
    await page.keyboard.press("Enter")  # submits the form
    await page.wait_for_url(f"**/donnees/{product['id']}#qualite")
    table = page.locator("#table-qualite tbody tr")
    await expect(table).to_have_count(1)
    await expect(table.first).to_contain_text(t("fails"))
    found["section"] = await axe(page)
    await screenshot(page, "product-quality-desktop")
    await table.first.get_by_role("link").click()
    await expect(page.locator("#table-echecs tbody tr")).to_have_count(1)
    await expect(page.locator("#table-echecs")).to_contain_text("Bichat")
    found["failures"] = await axe(page)

    phone = await web.signed_in("claire.martin", path, bypass_csp=True, viewport=PHONE)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the form is {width} px wide"
    found["phone form"] = await axe(phone)
    await phone.goto(f"{web.base}/donnees/{product['id']}#qualite")
    await expect(phone.locator("#table-qualite")).to_be_visible()
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    found["phone section"] = await axe(phone)
    await screenshot(phone, "product-quality-phone")
    assert not any(found.values()), report(found)
    assert web.errors == []


async def test_a_steward_writes_a_rule_without_code(web: Web) -> None:
    """Adds a row rule with the keyboard and the mouse, saves it, reads it back in words; the
    rules page is axe-clean on a desktop and on a phone."""
    path = await capacity(web)
    page = await web.signed_in("claire.martin", path, bypass_csp=True)
    await page.locator("#lien-regles").click()
    await expect(page).to_have_url(f"{web.base}{path}/regles")
    await page.get_by_role("button", name=t("Add a row rule")).click()
    await expect(page.locator("#r0-legende")).to_be_visible()
    await page.select_option("#r0-effect", "deny")
    await page.select_option("#r0-a0-left", "rec:service")
    await page.select_option("#r0-a0-op", "eq")
    await page.fill("#r0-a0-value", "Réanimation")
    await page.press("#r0-a0-value", "Enter")  # Enter saves (never removes)
    await page.wait_for_url(f"**{path}/regles?fait=applied*")
    await expect(page.locator("#regles-fait")).to_be_visible()
    words = t("Hide the rows when: %(c)s") % {"c": "« Service » " + t("is") + " Réanimation"}
    await expect(page.locator("#en-vigueur + ol")).to_contain_text(words)
    found = {"desktop": await axe(page)}
    await screenshot(page, "product-rules-desktop")

    phone = await web.signed_in("claire.martin", f"{path}/regles", bypass_csp=True, viewport=PHONE)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    found["phone"] = await axe(phone)
    await screenshot(phone, "product-rules-phone")
    assert not any(found.values()), report(found)


async def test_a_steward_edits_a_cell_on_a_phone(web: Web) -> None:
    """A small product with a key: the steward opens a row's form from the table, changes a
    cell, saves, and the table shows the new value as version 2; axe-clean form, both sizes."""
    path = await capacity(web, primaryKey=["hopital", "service"])
    await web.api(
        "claire.martin",
        "POST",
        f"/products/{path.rsplit('/', 1)[1]}/imports",
        files={"file": ("capacite.csv", CSV.encode(), "text/csv")},
    )
    page = await web.signed_in("claire.martin", path, bypass_csp=True, viewport=PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    first = page.locator("#table-lignes tbody tr").first
    await first.get_by_role("link", name=t("Edit")).click()
    await expect(page.locator("h1")).to_have_text(t("Edit a row"))
    found = {"phone": await axe(page)}
    lits = page.get_by_label(SCHEMA["fields"][2]["title"])
    await expect(lits).to_have_value("40")
    await lits.fill("44")
    await page.get_by_role("button", name=t("Save the row")).click()
    await page.wait_for_url(f"**{path}?importee=2*")
    await expect(page.locator("#table-lignes tbody tr").first).to_contain_text("44")
    await page.wait_for_load_state("load")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"

    desktop = await web.signed_in("claire.martin", f"{path}/ligne?nouvelle=1", bypass_csp=True)
    found["desktop"] = await axe(desktop)
    await screenshot(desktop, "product-row-desktop")


PASTED = (
    "Hôpital\tService\tLits disponibles\tCommentaire du cadre de santé\n"
    "Bichat\tUrgences\t40\tTension sur les brancards\n"
    "Avicenne\tRéanimation\t12\tDeux lits ouverts à midi\n"
    "Cochin\tChirurgie\t31\t\n"
)


async def test_a_steward_pastes_cells_previews_and_imports(web: Web) -> None:
    """Cells as a spreadsheet copies them (tabs, headers by their titles) go in the paste
    box; the preview shows them under the schema's titles; the import makes version 1. The
    section is axe-clean on a desktop and on a phone (its tables scroll in their frames)."""
    path = await capacity(web)
    found = {}
    phone = await web.signed_in("claire.martin", path, bypass_csp=True, viewport=PHONE)
    await phone.locator("#coller-cellules").fill(PASTED)
    await phone.get_by_role("button", name=t("Preview"), exact=True).click()
    await expect(phone.locator("#coller-apercu tbody tr")).to_have_count(3)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    found["phone"] = await axe(phone)
    await screenshot(phone, "product-paste-phone")

    page = await web.signed_in("claire.martin", path, bypass_csp=True)
    await page.locator("#coller-cellules").fill(PASTED)
    await page.get_by_role("button", name=t("Preview"), exact=True).click()
    preview = page.locator("#coller-apercu")
    await expect(preview).to_contain_text("3 lignes lues")
    await expect(preview.locator("thead")).to_contain_text("Lits disponibles")
    await expect(preview.locator("tbody tr").nth(1)).to_contain_text("Avicenne")
    await expect(page.locator("#coller-cellules")).to_have_value(PASTED.rstrip("\n"))
    found["desktop"] = await axe(page)
    await screenshot(page, "product-paste-desktop")
    await page.get_by_role("button", name=t("Import the pasted rows")).click()
    await page.wait_for_url(f"**{path}?importee=1#import-fait")
    await expect(page.locator("#import-fait")).to_be_visible()
    await expect(page.locator("#table-lignes tbody tr")).to_have_count(3)
    await expect(page.locator("#table-versions tbody tr")).to_contain_text("collage.tsv")
    assert not any(found.values()), report(found)
