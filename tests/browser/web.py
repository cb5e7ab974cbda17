"""What the browser tests share: Chromium, a live server with its test data, signed-in pages,
a counter of user actions, accessibility checks and screenshots."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image, ImageDraw
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    ViewportSize,
    expect,
)

from hypervision.core.deps import SESSION_COOKIE
from hypervision.core.i18n import Translator
from hypervision.follows.models import WebPreference
from hypervision.identity import service
from hypervision.identity.models import User
from hypervision.identity.schemas import OrganisationCreate
from hypervision.policy.roles import Role
from tests.factories import ADMIN, PASSWORD, make_user, sign_in, tx

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 10_000
FR = Translator("fr")  # what the pages show by default
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a common phone, portrait

expect.set_options(timeout=TIMEOUT_MS)

# For modules whose subject does not depend on the database engine (markup, rendering, flows
# already covered on both engines by the server tests): SQLite only, to keep the suite fast.
# Engine-dependent behaviour (live bus, search and filters, the whole journey: on each engine
# once, tests/browser/test_journey.py) runs on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def t(message: str, **values: Any) -> str:
    """A message as the (French) pages show it."""
    return FR.gettext(message, **values)


def unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool, except in CI where the browser tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} — CI is set: the browser tests must run there", pytrace=False)
    pytest.skip(reason)


def make_photo(path: Path, size: tuple[int, int] = (96, 64)) -> Path:
    """A real small picture (a blue rectangle with a red disc), PNG or JPEG after the suffix."""
    image = Image.new("RGB", size, (0, 0, 145))
    ImageDraw.Draw(image).ellipse((20, 10, 60, 50), fill=(206, 5, 0))
    image.save(path)
    return path


class Web:
    """One live server (the test's ``app`` on loopback) and the browser contexts opened on it."""

    def __init__(self, app: FastAPI, client: AsyncClient, base: str, browser: Browser) -> None:
        self.app, self.client, self.base, self.browser = app, client, base, browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []  # uncaught script errors and CSP violations, any page
        self._tokens: dict[str, dict[str, str]] = {}

    # --- test data (through the real services and the API) ---------------------------------

    async def org(
        self, code: str, *, default_category: str | None = None, mfa: bool = False
    ) -> None:
        data = OrganisationCreate(
            code=code,
            name=f"Organisation {code}",
            mfa_required=mfa,
            default_category=default_category,
        )
        async with tx(self.app) as session:
            await service.create_organisation(session=session, actor=ADMIN, data=data)

    async def user(
        self,
        username: str,
        org: str,
        *,
        roles: Sequence[Role] = (Role.OFFICER,),
        clearance: str = "DR",
        tour_done: bool = True,
    ) -> User:
        """An officer; ``tour_done``: they have already seen the guided tour."""
        user = await make_user(self.app, username, org, roles=roles, clearance=clearance)
        if tour_done:
            async with tx(self.app) as session:
                session.add(WebPreference(user_id=user.id, tour_done_at=datetime.now(UTC)))
        return user

    async def headers(self, username: str) -> dict[str, str]:
        if username not in self._tokens:
            self._tokens[username] = await sign_in(self.client, username)
        return self._tokens[username]

    async def api(self, username: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """A call to the API as ``username``; its JSON answer (checked 2xx)."""
        headers = {**await self.headers(username), **kwargs.pop("headers", {})}
        response = await self.client.request(method, f"/api/v1{url}", headers=headers, **kwargs)
        assert response.is_success, response.text
        result: dict[str, Any] = response.json()
        return result

    async def entry(self, username: str, **fields: Any) -> dict[str, Any]:
        body = {"title": "Entrée de test", "category": "security", "severity": "info", **fields}
        return await self.api(username, "POST", "/entries", json=body)

    async def situation(self, username: str, **fields: Any) -> dict[str, Any]:
        return await self.api(
            username, "POST", "/situations", json={"title": "Situation", **fields}
        )

    # --- pages --------------------------------------------------------------------------------

    async def page(
        self, *, bypass_csp: bool = False, viewport: dict[str, int] | None = None
    ) -> Page:
        """A page in a fresh context (its own cookies and storage), on this server; a phone
        when ``viewport`` is ``PHONE`` (touch, mobile layout)."""
        size = viewport or DESKTOP
        phone = size["width"] < 600
        context = await self.browser.new_context(
            base_url=self.base,
            bypass_csp=bypass_csp,
            locale="fr-FR",
            timezone_id="Europe/Paris",
            viewport=cast(ViewportSize, size),
            is_mobile=phone,
            has_touch=phone,
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self._console(page, message))
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        # Error statuses of documents and fetches are logged as "Failed to load resource":
        # the tests check those answers themselves; anything else is a defect of the pages.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"{page.url}: {message.text}")

    async def signed_in(
        self,
        username: str,
        path: str = "/main-courante",
        *,
        bypass_csp: bool = False,
        viewport: dict[str, int] | None = None,
    ) -> Page:
        """A page signed in as ``username`` (the session cookie obtained by sending the sign-in
        form without displaying it: the form itself is tested elsewhere), showing ``path``."""
        page = await self.page(bypass_csp=bypass_csp, viewport=viewport)
        response = await page.context.request.post(
            "/connexion", form={"username": username, "password": PASSWORD}, max_redirects=0
        )
        assert response.status == 303, await response.text()
        assert any(c["name"] == SESSION_COOKIE for c in await page.context.cookies())
        await page.goto(path)
        await expect(page).to_have_url(f"{self.base}{path}")
        return page

    @staticmethod
    async def sign_in(
        page: Page, username: str, *, password: str = PASSWORD, otp: str | None = None
    ) -> None:
        """Fill the sign-in form in front of us and send it."""
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.locator("main form button[type=submit]").click()
        if otp is not None:  # the code page, shown only to accounts with two-factor
            await page.fill("#otp", otp)
            await page.locator("main form#etape-code button[type=submit]").click()

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
        self.contexts.clear()


async def live_stream_open(page: Page) -> None:
    """The page's EventSource is connected (new entries will slide in)."""
    await expect(page.locator("body")).to_have_attribute("data-live", "open")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled")


class Counted:
    """A page whose user actions are counted: every fill, click, key press, file choice,
    option choice and check."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.actions: list[str] = []

    @property
    def count(self) -> int:
        return len(self.actions)

    async def fill(self, selector: str, value: str) -> None:
        self.actions.append(f"fill {selector}")
        await self.page.fill(selector, value)

    async def click(self, selector: str) -> None:
        self.actions.append(f"click {selector}")
        await self.page.click(selector)

    async def press(self, selector: str, key: str) -> None:
        """A key pressed in a given field."""
        self.actions.append(f"press {key} in {selector}")
        await self.page.press(selector, key)

    async def key(self, key: str) -> None:
        """A key pressed wherever the focus is."""
        self.actions.append(f"press {key}")
        await self.page.keyboard.press(key)

    async def set_input_files(self, selector: str, files: Path | Sequence[Path]) -> None:
        self.actions.append(f"choose files {selector}")
        await self.page.set_input_files(selector, files)

    async def select_option(self, selector: str, value: str) -> None:
        self.actions.append(f"select {selector}")
        await self.page.select_option(selector, value)

    async def check(self, selector: str) -> None:
        self.actions.append(f"check {selector}")
        await self.page.check(selector)


async def settled(element: Locator, tries: int = 40) -> None:
    """Waits until ``element`` stays in place for 100 ms (a map's pan or zoom animation)."""
    previous = None
    for _ in range(tries):
        box = await element.bounding_box()
        if box is not None and box == previous:
            return
        previous = box
        await element.page.wait_for_timeout(100)
