"""Fixtures of the browser tests: one headless Chromium for the whole run (Debian's, never a
downloaded one), and per test a live server on loopback for the test's ``app``.

The server and the browser run in the test session's event loop (async Playwright), so a test
can mix page actions with service calls on the same application."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from playwright.async_api import Browser, async_playwright

from tests.browser.web import CHROMIUM, CHROMIUM_ARGS, Web, unavailable
from tests.live.server import serve


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium): no browser tests")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def web(app: FastAPI, client: AsyncClient, browser: Browser) -> AsyncIterator[Web]:
    """The test's application served on loopback, with the live hub running."""
    await app.state.hub.ensure_started()  # serve() runs without lifespan
    async with serve(app) as base:
        site = Web(app, client, base, browser)
        try:
            yield site
        finally:
            await site.close()  # before the server stops: no stream left to wait for
    assert not site.errors, "errors in the pages:\n" + "\n".join(site.errors)
