"""Signing in: MFA enrolment then password + TOTP, a wrong password, an expired session."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from playwright.async_api import expect
from sqlalchemy import update

from hypervision.core.deps import SESSION_COOKIE
from hypervision.db import utcnow
from hypervision.identity.models import AuthSession
from tests.browser.test_accessibility import axe
from tests.browser.web import SQLITE_ONLY, Web, t
from tests.factories import PASSWORD, tx

pytestmark = SQLITE_ONLY  # sign-in, MFA and expiry logic run on both engines in tests/identity


async def test_mfa_enrolment_then_sign_in_with_totp(web: Web) -> None:
    await web.org("CNCS", mfa=True)
    await web.user("claire.dubois", "CNCS")

    page = await web.page()
    await page.goto("/connexion")
    await web.sign_in(page, "claire.dubois")
    await expect(page).to_have_url(f"{web.base}/double-authentification")
    secret = (await page.locator("#cle-totp").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    assert await page.locator(".hv-qr svg").count() == 1
    # Until enrolment is confirmed, every other page leads back here.
    await page.goto("/main-courante")
    await expect(page).to_have_url(f"{web.base}/double-authentification")
    # Showing the page again makes a new secret: a pending one is never shown twice (whoever
    # else knows the password could otherwise keep the seed the officer is about to scan).
    again = (await page.locator("#cle-totp").inner_text()).strip()
    assert again != secret and re.fullmatch(r"[A-Z2-7]{16,}", again)
    secret = again

    # A wrong code is said; the secret already scanned stays, no new one is shown.
    await page.fill("#otp", "000000")
    await page.get_by_role("button", name=t("Turn on")).click()
    await expect(page.locator(".fr-alert--error[role=alert]")).to_be_visible()
    await expect(page.locator("#cle-totp")).to_have_count(0)

    totp = pyotp.TOTP(secret)
    enrol_step = totp.timecode(utcnow())
    await page.fill("#otp", totp.generate_otp(enrol_step))
    await page.get_by_role("button", name=t("Turn on")).click()
    codes = page.locator("#codes-secours li code")
    await expect(codes).to_have_count(10)
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in await codes.all_inner_texts())
    await page.get_by_role("link", name=t("Go to the main courante")).click()
    await expect(page).to_have_url(f"{web.base}/main-courante")
    await expect(page.locator("#fil")).to_be_visible()

    # Later, elsewhere: the password alone is not enough. The code is asked on a page of its
    # own (the password is not typed again nor kept in the page).
    later = await web.page(bypass_csp=True)  # axe is injected as a script
    await later.goto("/connexion")
    await expect(later.locator("#otp")).to_have_count(0)  # not asked before the password
    await web.sign_in(later, "claire.dubois")
    code_form = later.locator("form#etape-code")
    await expect(code_form).to_be_visible()
    await expect(later.locator("#otp")).to_be_focused()
    await expect(later.locator("#password")).to_have_count(0)
    assert PASSWORD not in await later.content()
    await expect(code_form).to_contain_text("claire.dubois")
    assert await axe(later) == []  # the code page: no violation at any impact
    # A wrong code: said, and the code page stays (no going back to the password).
    await later.fill("#otp", "000000")
    await code_form.locator("button[type=submit]").click()
    await expect(later.locator(".fr-alert--error[role=alert]")).to_contain_text(
        "Code de vérification incorrect"
    )
    await expect(code_form).to_be_visible()
    await expect(later.locator("#otp")).to_be_focused()
    # A code never used (the one of the enrolment is burnt): the next time step's.
    next_code = totp.generate_otp(max(enrol_step, totp.timecode(utcnow())) + 1)
    await later.fill("#otp", next_code)
    await code_form.locator("button[type=submit]").click()
    await expect(later).to_have_url(f"{web.base}/main-courante")
    await expect(later.locator(".hv-who").first).to_contain_text("Claire.Dubois")


async def test_no_code_field_for_accounts_without_two_factor(web: Web) -> None:
    await web.org("PP")
    await web.user("emilie.blanc", "PP")
    page = await web.page()
    await page.goto("/connexion")
    await expect(page.locator("#password")).to_be_visible()
    await expect(page.locator("#otp")).to_have_count(0)
    await expect(page.get_by_text(t("Verification code"))).to_have_count(0)
    await web.sign_in(page, "emilie.blanc")
    await expect(page).to_have_url(f"{web.base}/main-courante")


async def test_a_forged_or_stale_code_challenge_leads_back_to_the_password(web: Web) -> None:
    await web.org("CNCS", mfa=True)
    await web.user("claire.dubois", "CNCS")
    page = await web.page()
    response = await page.context.request.post(
        "/connexion/code",
        form={"challenge": "forged.0.abc", "otp": "123456", "username": "claire.dubois"},
        max_redirects=0,
    )
    assert response.status == 401
    assert 'id="password"' in await response.text()
    assert not [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]


async def test_wrong_password_shows_an_error(web: Web) -> None:
    await web.org("PP")
    await web.user("emilie.blanc", "PP")
    page = await web.page()
    await page.goto("/main-courante")
    await expect(page).to_have_url(re.compile(r"/connexion\?suite=/main-courante$"))
    await web.sign_in(page, "emilie.blanc", password=PASSWORD + "!")
    alert = page.locator(".fr-alert--error[role=alert]")
    await expect(alert).to_be_visible()
    assert (await alert.inner_text()).strip()
    await expect(page).to_have_url(re.compile(r"/connexion$"))
    await expect(page.locator("#username")).to_have_value("emilie.blanc")
    await expect(page.locator("#password")).to_have_value("")
    assert not [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
    # The right password then works, and leads where the officer was going.
    await web.sign_in(page, "emilie.blanc")
    await expect(page).to_have_url(f"{web.base}/main-courante")


async def test_expired_session_returns_to_the_page_after_sign_in(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", "/recherche?q=colis")
    await expect(page.locator("#q")).to_have_value("colis")

    idle = timedelta(minutes=web.app.state.settings.session_idle_minutes + 1)
    async with tx(web.app) as session:
        await session.execute(update(AuthSession).values(last_seen_at=utcnow() - idle))

    await page.reload()
    await expect(page).to_have_url(re.compile(r"/connexion\?suite=.*&expiree=1$"))
    await expect(page.locator(".fr-alert--info")).to_contain_text(
        t("Your session has ended. Sign in again: you will return to your page.")
    )
    await web.sign_in(page, "hugo.faure")
    await expect(page).to_have_url(f"{web.base}/recherche?q=colis")
    await expect(page.locator("#q")).to_have_value("colis")
