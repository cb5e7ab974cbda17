"""Sign-in over plain http on an address other than loopback: the browser drops the `Secure`
session cookie; the sign-in page then says why and what the administrator can set, instead of
coming back silently."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.async_api import async_playwright, expect

from hypervision.core.deps import SESSION_COOKIE
from tests.browser.web import CHROMIUM, CHROMIUM_ARGS, SQLITE_ONLY, Web
from tests.factories import PASSWORD

pytestmark = SQLITE_ONLY  # cookies and markup

HOST = "hypervision.lan"  # resolved to loopback by this browser only: not a secure context


async def test_secure_cookie_dropped_over_plain_http_is_explained(web: Web) -> None:
    await web.org("PP")
    await web.user("emilie.blanc", "PP")
    assert web.app.state.settings.cookie_secure
    port = urlsplit(web.base).port
    # A browser of its own: the shared one knows no such address.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"],
            headless=True,
        )
        try:
            context = await browser.new_context(base_url=f"http://{HOST}:{port}", locale="fr-FR")
            page = await context.new_page()
            await page.goto("/connexion")
            await expect(page.locator("#cookie-lost")).to_have_count(0)
            await page.fill("#username", "emilie.blanc")
            await page.fill("#password", PASSWORD)
            await page.locator("main form button[type=submit]").click()
            # Back on the sign-in page (the session cookie never came back), but not silently.
            await expect(page).to_have_url(re.compile(r"/connexion\?suite="))
            notice = page.locator("#cookie-lost[role=alert]")
            await expect(notice).to_contain_text("HTTPS")
            await expect(notice).to_contain_text("HYPERVISION_COOKIE_SECURE=false")
            assert not [c for c in await context.cookies() if c["name"] == SESSION_COOKIE]
        finally:
            await browser.close()
