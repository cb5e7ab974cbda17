"""Fixtures shared by the web page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

Browser = Callable[[], Awaitable[AsyncClient]]


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[Browser]:
    """Opens independent cookie jars (one per person) on the same application."""
    opened: list[AsyncClient] = []

    async def open_one() -> AsyncClient:
        transport = ASGITransport(app=app, client=("203.0.113.8", 50001))
        http = AsyncClient(transport=transport, base_url="https://testserver")
        opened.append(http)
        return http

    yield open_one
    for http in opened:
        await http.aclose()
