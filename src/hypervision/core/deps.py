"""Request-scoped dependencies: settings and the transaction (the acting principal is
``identity.deps``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.cookies import SESSION_COOKIE

__all__ = ["SESSION_COOKIE"]  # and what follows; kept here for its importers


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request. ``scope="function"`` (below) runs the commit after the
    endpoint returns and before the response is sent, so a 2xx always means committed."""
    async with request.app.state.sessions() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]
