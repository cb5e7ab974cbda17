"""Sign-in throttling per account name and per client address (SECURITY.md item 13).

Counters live in the database so that every replica sees the same ones. Keys are taken from
what the client typed, so unknown and existing accounts are throttled alike. An attempt is
counted *before* the password is checked (one atomic upsert), so parallel guesses cannot slip
past the limit; a successful sign-in gives its attempt back.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.db import UTCDateTime, utcnow
from hypervision.identity.models import LoginThrottle


def keys_for(username: str, client_address: str | None) -> list[str]:
    keys = [f"user:{username[:128]}"]
    if client_address:
        keys.append(f"ip:{client_address[:64]}")
    return keys


def _limit(settings: Settings, key: str) -> int:
    return settings.login_ip_max_failures if key.startswith("ip:") else settings.login_max_failures


async def reserve(*, session: AsyncSession, settings: Settings, keys: list[str]) -> int | None:
    """Count one attempt on every key; returns seconds to wait when a key is over its limit
    (the attempt must then be refused), else None."""
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    stale = LoginThrottle.window_started_at < now - window
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    wait: int | None = None
    for key in keys:
        upsert = insert(LoginThrottle).values(key=key, failures=1, window_started_at=now)
        stmt = upsert.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                "window_started_at": case(
                    (stale, literal(now, UTCDateTime())), else_=LoginThrottle.window_started_at
                ),
            },
        ).returning(LoginThrottle.failures, LoginThrottle.window_started_at)
        failures, started = (await session.execute(stmt)).one()
        if failures > _limit(settings, key):
            seconds = int((started + window - now).total_seconds()) + 1
            wait = max(wait or 0, seconds)
    return wait


async def give_back(*, session: AsyncSession, keys: list[str]) -> None:
    """After a successful sign-in: the account's counter restarts, the address's attempt is
    returned."""
    for key in keys:
        if key.startswith("user:"):
            await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
        else:
            await session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key, LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )
