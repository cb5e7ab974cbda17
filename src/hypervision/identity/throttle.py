"""Sign-in throttling per account name and per client address (SECURITY.md item 13).

Counters live in the database so that every replica sees the same ones. Keys are taken from
what the client typed, so unknown and existing accounts are throttled alike.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.db import UTCDateTime, utcnow
from hypervision.identity.models import LoginThrottle


def keys_for(username: str, client_address: str | None) -> dict[str, str]:
    keys = {"user": f"user:{username[:128]}"}
    if client_address:
        keys["ip"] = f"ip:{client_address[:64]}"
    return keys


def _limit(settings: Settings, key: str) -> int:
    return settings.login_ip_max_failures if key.startswith("ip:") else settings.login_max_failures


async def retry_after(*, session: AsyncSession, settings: Settings, keys: list[str]) -> int | None:
    """Seconds to wait when any key has used up its failures in the current window."""
    window = timedelta(seconds=settings.login_window_seconds)
    now = utcnow()
    worst: int | None = None
    for row in await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
        ends = row.window_started_at + window
        if ends > now and row.failures >= _limit(settings, row.key):
            wait = int((ends - now).total_seconds()) + 1
            worst = max(worst or 0, wait)
    return worst


async def record_failure(*, session: AsyncSession, settings: Settings, keys: list[str]) -> None:
    """Count one failure per key; a key whose window has passed starts a new window."""
    now = utcnow()
    stale = LoginThrottle.window_started_at < now - timedelta(seconds=settings.login_window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for key in keys:
        stmt = insert(LoginThrottle).values(key=key, failures=1, window_started_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                "window_started_at": case(
                    (stale, literal(now, UTCDateTime())), else_=LoginThrottle.window_started_at
                ),
            },
        )
        await session.execute(stmt)


async def clear(*, session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
