"""Single sign-on in a real browser (docs/adr/0033): the provider's button on the sign-in page,
the provider's own page (``oidc-provider-mock`` on another site: ``localhost``, where the
application is ``127.0.0.1``), the way back, and the session — whose cookie is
``SameSite=Strict`` — really sent on the first page after the provider's redirect. The pages
with the buttons and a refusal are axe-clean and fit a phone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from hypervision.config import Settings
from hypervision.core.deps import SESSION_COOKIE
from tests.browser.test_accessibility import axe
from tests.browser.web import PHONE, SQLITE_ONLY, Web
from tests.identity.test_oidc import (
    ALICE,
    CLAIMS,
    TITLE,
    cleared_config,
    provider_config,
    provider_running,
)

pytestmark = [
    SQLITE_ONLY,  # cookies, redirects and markup
    pytest.mark.filterwarnings(r"ignore:get_jwt_config\(self, grant\) is deprecated"),
]


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with provider_running() as running:
        yield running


def configure(web: Web, issuer: str) -> None:
    """The providers, with this server's own address as the public one (known only now)."""
    settings: Settings = web.app.state.settings
    web.app.state.settings = Settings.model_validate(
        settings.model_dump()
        | {
            "oidc_providers": [provider_config(issuer), cleared_config(issuer)],
            "public_url": web.base,
        }
    )


async def fits_and_is_accessible(page: Page) -> None:
    assert await axe(page) == []
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


async def test_sign_in_through_the_provider_in_a_browser(web: Web, issuer: str) -> None:
    configure(web, issuer)
    await web.org("PREF75")
    page = await web.page(bypass_csp=True, viewport=PHONE)
    await page.goto("/connexion?suite=/aide")
    button = page.get_by_role("link", name=f"Se connecter avec {TITLE}")
    await expect(button).to_be_visible()
    await expect(
        page.get_by_role("link", name="Se connecter avec Keycloak (habilitations)")
    ).to_be_visible()
    await fits_and_is_accessible(page)

    await button.click()
    await expect(page).to_have_url(re.compile(re.escape(issuer) + r"/oauth2/authorize\?"))
    await page.locator("form button[name=sub][value='" + ALICE + "']").click()
    # Back on our site, through the page that carries the Strict session cookie on.
    await expect(page).to_have_url(f"{web.base}/aide")
    await expect(page.locator("form[action='/deconnexion']").first).to_be_attached()
    assert [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
    answer = await page.context.request.get("/api/v1/auth/me")
    me = await answer.json()
    assert (me["username"], me["roles"], me["clearance"]) == ("alice.martin", ["officer"], "NP")


async def test_a_refusal_is_a_french_page_that_fits(web: Web, issuer: str) -> None:
    configure(web, issuer)  # no organisation PREF75 here: the rules map to nothing known
    page = await web.page(bypass_csp=True, viewport=PHONE)
    await page.goto("/connexion")
    await page.get_by_role("link", name=f"Se connecter avec {TITLE}").click()
    await page.locator("form button[name=sub][value='" + ALICE + "']").click()
    alert = page.locator("[role=alert]")
    await expect(alert).to_contain_text(
        "Votre compte n'est rattaché à aucune organisation de la plateforme"
    )
    await fits_and_is_accessible(page)
    assert not [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert CLAIMS["org"] == "prefecture-75"
