"""Triage by a watch officer on the entry page: validate, qualify the severity, link to a
situation; each step is a new version whose diff the history shows."""

from __future__ import annotations

from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.browser.web import SQLITE_ONLY, Web, t

pytestmark = SQLITE_ONLY  # triage services run on both engines in tests/logbook; this is the UI


async def test_watch_officer_validates_and_qualifies(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    situation = await web.situation("sophie.martin", title="Affluence Stade de France")
    entry = await web.entry("hugo.faure", title="Foule dense porte H", severity="info")

    # An officer has no triage tools.
    officer = await web.signed_in("hugo.faure", f"/entrees/{entry['id']}")
    await expect(officer.locator("#entree-titre")).to_have_text("Foule dense porte H")
    await expect(officer.locator(".hv-triage")).to_have_count(0)

    page = await web.signed_in("sophie.martin", f"/entrees/{entry['id']}")
    history = page.locator("#historique > li")
    await expect(history).to_have_count(1)

    await page.click("#valider")
    await expect(page.locator("#valider")).to_have_count(0)
    await expect(page).to_have_url(f"{web.base}/entrees/{entry['id']}")
    await expect(page.locator("header .fr-badge--success")).to_have_text(
        t("Validated by %(who)s", who="sophie.martin")  # usernames, as the API
    )
    await expect(history).to_have_count(2)
    validated = history.first
    await expect(validated.locator("dt")).to_contain_text([t("Validated by")])
    # The history names people (the API keeps logins in ``author``).
    await expect(validated.locator("dd", has_text="Sophie.Martin").locator("ins")).to_have_text(
        "Sophie.Martin"
    )

    severity_form = page.locator("form", has=page.locator("#t-severity"))
    await expect(page.locator("#t-severity")).to_have_value("info")
    await page.select_option("#t-severity", "critical")
    await severity_form.get_by_role("button", name=t("Qualify")).click()
    await expect(history).to_have_count(3)
    await expect(page.locator("#t-severity")).to_have_value("critical")
    await expect(page.locator("header .hv-sev--critical")).to_have_text(t("Critical"))
    qualified = history.first
    await expect(qualified.locator("dt")).to_have_text([t("Severity")])
    await expect(qualified.locator("dd del")).to_have_text(t("Information"))
    await expect(qualified.locator("dd ins")).to_have_text(t("Critical"))

    link_form = page.locator("form", has=page.locator("#t-situation"))
    await page.select_option("#t-situation", situation["id"])
    await link_form.get_by_role("button", name=t("Link")).click()
    await expect(history).to_have_count(4)
    await expect(page.locator("header a", has_text="Affluence Stade de France")).to_have_attribute(
        "href", f"/situations/{situation['id']}"
    )
    await expect(history.first.locator("dd ins")).to_have_text("Affluence Stade de France")

    stored = await web.api("hugo.faure", "GET", f"/entries/{entry['id']}")
    assert stored["severity"] == "critical"
    assert stored["validated_at"] is not None
    assert stored["situation_id"] == situation["id"]
    assert stored["version"] == 4

    # The officer's page, reloaded, shows the qualified entry.
    await officer.reload()
    await expect(officer.locator("header .hv-sev--critical")).to_be_visible()
